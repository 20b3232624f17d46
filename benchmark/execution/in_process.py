"""Runs a plan: prepares each run's folder, drives the cycle loop under a rich progress display,
and rewrites the tidy tables and the leaderboard after every completed cycle."""
from __future__ import annotations

import json
import shutil
import traceback
from pathlib import Path

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from benchmark.config.run_spec import RunSpec
from benchmark.cycle.loop import AwaitingAnswers, run_experiment
from benchmark.cycle.supervised import run_supervised
from benchmark.errors import RunFailed
from benchmark.execution.run_state import AWAITING, BUSY_GRACE_SECONDS, FAILED, FINISHED, FollowerClaim, RunClaim
from benchmark.model.training import Reporter
from benchmark.records.run_folder import FollowerFolder, RunFolder
from benchmark.reports.tables import rebuild_leaderboard, write_tables
from benchmark.runtime import distributed
from benchmark.runtime.environment import environment


def prepare_run_folder(run: RunSpec, preset, data, overwrite: bool) -> RunFolder:
    """Create (or, with --overwrite, recreate) the run folder with its config and pool files."""
    folder = RunFolder(run.run_dir)
    if overwrite and run.run_dir.exists():
        shutil.rmtree(run.run_dir)
    if not folder.exists():
        config = dict(run=run.as_dict(), dataset=run.dataset, model=run.model, strategy=run.strategy,
                      seed=run.seed, classes=list(data.classes), preset=preset.to_dict(),
                      effective_batch_size=run.effective_batch_size, environment=environment(run.device))
        folder.write_images(data.images_frame())
        folder.write_config(json.loads(json.dumps(config, default=str)))
    return folder


def _progress(console: Console) -> Progress:
    return Progress(TextColumn("{task.description:<44}"), BarColumn(), MofNCompleteColumn(),
                    TimeElapsedColumn(), console=console, transient=False)


def runner_for(run: RunSpec):
    """The generator of a run's records: the supervised reference's or the active-learning loop's."""
    return run_supervised if run.is_supervised else run_experiment


def execute(runs: list[RunSpec], resources, overwrite: bool, console: Console,
            lock_wait: float | None = BUSY_GRACE_SECONDS, leaderboard: bool = True):
    """Run every planned run in order; returns (exit status: 0, or 3 when awaiting labels;
    the leaderboard frame or None). A run that fails raises RunFailed (one line: what failed,
    what was kept, how to continue; the traceback goes to the run's error.log).

    Each run is executed under its lock (``benchmark.execution.run_state``): a run another process holds is
    waited for ``lock_wait`` seconds (None: as long as it takes), then a UsageError names the holder.
    With several ranks (``--gpus-per-run``) every rank executes the runs and only rank 0 writes.
    """
    out = Path(runs[0].out)
    main = distributed.is_main()
    with _progress(console) as progress:
        all_runs = progress.add_task("runs", total=len(runs))
        cycles = progress.add_task("cycles", total=1)
        iters = progress.add_task("training iterations", total=1)

        def start_cycle(cycle, total):
            progress.reset(iters, total=total, description=f"  training cycle {cycle}")
            progress.update(cycles, completed=cycle)

        reporter = Reporter(start_cycle=start_cycle, advance_iter=lambda: progress.advance(iters))
        for run in runs:
            with RunClaim(run, wait=lock_wait, on_wait=console.print) if main else FollowerClaim() as claim:
                status = _execute_one(run, resources, overwrite, claim, progress, cycles, reporter, console)
            if status:
                return status, None
            progress.advance(all_runs)
    if not main:
        return 0, None
    write_tables(out)
    return 0, rebuild_leaderboard(out) if leaderboard else None


def _execute_one(run, resources, overwrite, claim, progress, cycles, reporter, console) -> int:
    """One run, its lock held: 0 when it completed, 3 when it waits for an annotator's labels."""
    main = distributed.is_main()
    tables = (lambda: write_tables(Path(run.out))) if main else (lambda: None)
    preset, data = resources.preset(run), resources.data(run)
    folder = prepare_run_folder(run, preset, data, overwrite) if main else FollowerFolder(run.run_dir)
    distributed.barrier()  # the other ranks read the run folder once rank 0 has prepared it
    claim.start(folder)
    progress.reset(cycles, total=run.planned_cycles, completed=folder.completed_cycles(),
                   description=f"{run.run_id}")
    try:
        for record in runner_for(run)(run, preset, data, folder, reporter):
            progress.update(cycles, completed=record.cycle + 1)
            claim.progress(record.cycle + 1)
            tables()
    except AwaitingAnswers as waiting:
        claim.end(AWAITING)
        tables()
        console.print(f"[yellow]{waiting}[/yellow]")
        return 3
    except Exception as err:
        log = folder.write_error(traceback.format_exc())
        reason = f"{type(err).__name__}: {' '.join(str(err).split())[:300]}"
        claim.end(FAILED, error=reason)
        tables()
        done = folder.completed_cycles()
        raise RunFailed(f"run {run.run_id} failed in cycle {done}: {reason}; its {done} completed cycle(s) are "
                        f"saved (traceback in {log}); fix the cause and rerun the same command with "
                        f"--resume") from None
    claim.end(FINISHED)
    return 0
