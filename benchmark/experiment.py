"""Runs a plan: prepares each run's folder, drives the cycle loop under a rich progress display,
and rewrites the tidy tables and the leaderboard after every completed cycle."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from benchmark.loop import AwaitingAnswers, Reporter, run_experiment
from benchmark.plan import RunSpec, load_preset
from benchmark.records import RunFolder, write_tables


def _environment() -> dict:
    import platform

    import mmcv
    import mmengine
    import mmseg
    import torch

    return dict(python=platform.python_version(), torch=torch.__version__, mmcv=mmcv.__version__,
                mmengine=mmengine.__version__, mmseg=mmseg.__version__, machine=platform.machine())


def prepare_run_folder(run: RunSpec, preset, data, overwrite: bool) -> RunFolder:
    """Create (or, with --overwrite, recreate) the run folder with its config and pool files."""
    folder = RunFolder(run.run_dir)
    if overwrite and run.run_dir.exists():
        shutil.rmtree(run.run_dir)
    if not folder.exists():
        config = dict(run=run.as_dict(), dataset=run.dataset, model=run.model, strategy=run.strategy,
                      seed=run.seed, classes=list(data.classes), preset=preset.to_dict(),
                      environment=_environment())
        folder.write_images(data.images_frame())
        folder.write_config(json.loads(json.dumps(config, default=str)))
    return folder


class RunDataCache:
    """One RunData per (dataset, data root, preset): datasets are indexed once per process."""

    def __init__(self):
        self._cache = {}

    def get(self, run: RunSpec, preset):
        from benchmark.data import get_dataset
        from benchmark.loaders import RunData

        key = (run.dataset, run.data_root, run.preset)
        if key not in self._cache:
            self._cache[key] = RunData(get_dataset(run.dataset), run.data_root, preset)
        return self._cache[key]


def _progress(console: Console) -> Progress:
    return Progress(TextColumn("{task.description:<44}"), BarColumn(), MofNCompleteColumn(),
                    TimeElapsedColumn(), console=console, transient=False)


def execute(runs: list[RunSpec], overwrite: bool, console: Console) -> int:
    """Run every planned run in order; returns the exit status (0, or 3 when awaiting labels)."""
    from benchmark.leaderboard import print_leaderboard, rebuild_leaderboard
    import mmseg.utils

    mmseg.utils.register_all_modules(init_default_scope=True)
    out = Path(runs[0].out)
    datasets = RunDataCache()
    with _progress(console) as progress:
        all_runs = progress.add_task("runs", total=len(runs))
        cycles = progress.add_task("cycles", total=1)
        iters = progress.add_task("training iterations", total=1)

        def start_cycle(cycle, total):
            progress.reset(iters, total=total, description=f"  training cycle {cycle}")
            progress.update(cycles, completed=cycle)

        reporter = Reporter(start_cycle=start_cycle, advance_iter=lambda: progress.advance(iters))
        for run in runs:
            preset = load_preset(Path(run.preset))
            data = datasets.get(run, preset)
            folder = prepare_run_folder(run, preset, data, overwrite)
            total = 1 if run.is_supervised else run.cycles
            progress.reset(cycles, total=total, completed=folder.completed_cycles(),
                           description=f"{run.run_id}")
            try:
                for record in run_experiment(run, preset, data, folder, reporter):
                    progress.update(cycles, completed=record.cycle + 1)
                    write_tables(out)
            except AwaitingAnswers as waiting:
                write_tables(out)
                console.print(f"[yellow]{waiting}[/yellow]")
                return 3
            progress.advance(all_runs)
    write_tables(out)
    frame = rebuild_leaderboard(out)
    print_leaderboard(frame, console)
    console.print(f"tables: {out / 'cycles.csv'}, {out / 'class_iou.csv'}, {out / 'leaderboard.csv'}")
    return 0
