"""The jobs `benchmark launch` submits through submitit: picklable, requeueable callables.

Each job is one step that already exists in the harness, run in the job's own process:

    CycleZeroJob   trains cycle 0 of one (dataset, model, seed) into the shared cache
    RunJob         one run with resume semantics (what `run --resume` does for that run)
    TablesJob      rebuilds cycles.csv, class_iou.csv, leaderboard.csv and pairwise.csv from the run
                   folders, and writes the figures (unless --no-plot)

They are ``submitit.helpers.Checkpointable``: on a timeout or preemption signal submitit pickles
the job again and requeues it, and the requeued job resumes from the run's last completed cycle
(nothing else needs saving: the run folder is the checkpoint). A job killed outright is just as
safe to rerun.

Dependencies are Slurm's on a cluster. The local executor has none, so there a job waits for
the results of the jobs it depends on (``Dependency``) before it starts, and ``Slots`` caps how
many jobs train at once (``--max-parallel``) and hands each its GPUs.
"""
from __future__ import annotations

import contextlib
import os
import pickle
import time
from dataclasses import dataclass, replace
from pathlib import Path

from submitit.helpers import Checkpointable

from benchmark.records.locks import FileLock, lock_path

POLL_SECONDS = 1.0


class DependencyFailed(RuntimeError):
    """A job this job needed ended without success."""


@dataclass(frozen=True)
class Dependency:
    """A local job to wait for: its result file, its controller process, what it was."""

    job_id: str
    name: str
    result: str
    stdout: str
    need_success: bool = True

    def _alive(self) -> bool:
        try:
            os.kill(int(self.job_id), 0)
        except ProcessLookupError:
            return False
        except (PermissionError, ValueError):
            return True
        return True

    def wait(self) -> None:
        """Return once the job has ended; DependencyFailed if it had to succeed and did not."""
        path = Path(self.result)
        while not path.exists() and self._alive():
            time.sleep(POLL_SECONDS)
        time.sleep(0 if path.exists() else POLL_SECONDS)  # a result written just before the exit
        outcome = "missing"
        if path.exists():
            with open(path, "rb") as handle:
                outcome = pickle.load(handle)[0]
        if self.need_success and outcome != "success":
            why = "failed" if outcome == "error" else "ended without a result (killed?)"
            raise DependencyFailed(f"job {self.job_id} ({self.name}) {why}: see {self.stdout} and the .err "
                                   f"file beside it; fix the cause and launch again with --resume")


@dataclass(frozen=True)
class Slots:
    """At most ``count`` local jobs train at once; slot k owns GPUs [k*per_run, (k+1)*per_run)."""

    out: str
    count: int
    gpus: tuple = ()  # the GPU ids visible to the launcher (empty: CPU runs)
    per_run: int = 1

    @contextlib.contextmanager
    def take(self):
        while True:
            for k in range(self.count):
                lock = FileLock(lock_path(self.out, "slots", f"slot_{k}"))
                if lock.acquire(timeout=0):
                    try:
                        if self.gpus:
                            mine = self.gpus[k * self.per_run:(k + 1) * self.per_run]
                            os.environ["CUDA_VISIBLE_DEVICES"] = ",".join(map(str, mine))
                        yield k
                    finally:
                        lock.release()
                    return
            time.sleep(POLL_SECONDS)


def _prepare_process(plugins: str | None) -> None:
    """What the CLI does before a run, done in the job's own process."""
    import warnings

    import mmseg.utils

    from benchmark.config.plan import import_plugin_modules

    warnings.filterwarnings("ignore", message=".*build_loss.*deprecated")
    warnings.filterwarnings("ignore", message="pkg_resources is deprecated")
    mmseg.utils.register_all_modules(init_default_scope=True)
    import_plugin_modules(plugins)


def _device_here(run):
    """The run with its device resolved on the machine the job runs on (``auto``, ``cuda``)."""
    from benchmark.config.plan import check_device

    return replace(run, device=check_device(run.device))


def _console():
    from rich.console import Console

    from benchmark.runtime import distributed

    return Console(width=120, force_terminal=False, log_path=False, quiet=not distributed.is_main())


@contextlib.contextmanager
def _ranks(run):
    """The run's process group when the job has several tasks (``--gpus-per-run`` on Slurm: one
    task per GPU, the ranks of one DDP run); nothing for a single task."""
    from benchmark.runtime import distributed

    if run.gpus_per_run > 1:
        distributed.export_submitit_env()
    distributed.check_world_size(run.gpus_per_run)
    distributed.init_from_env(run.device)
    try:
        yield
    finally:
        distributed.shutdown()


def _stop_on_sigterm() -> None:
    """In a job's own process (Slurm or local): SIGTERM stops the job at once, its run marked
    interrupted (``benchmark.runtime.interruption``), where submitit would only log it and train on
    until the SIGKILL. A local job also stops once its controller process is gone."""
    from benchmark.runtime import interruption

    executor = os.environ.get("SUBMITIT_EXECUTOR")
    if executor not in ("slurm", "local"):
        return  # the debug executor: the launcher's own process
    from submitit.core.job_environment import JobEnvironment

    interruption.stop_on_sigterm()
    interruption.count_as_stop(JobEnvironment._usr_sig())  # submitit's requeue on USR2
    if executor == "local" and not os.environ.get("SUBMITIT_LOCAL_WITH_SHELL"):
        interruption.watch_parent(int(os.environ["SUBMITIT_LOCAL_JOB_ID"]))  # the controller's pid


def _log_termination(job) -> None:
    from submitit.core import logger

    logger.get_logger().warning(
        f"Caught signal SIGTERM: {job.name} stopped where it was; its completed cycles are kept and its "
        f"status.json says interrupted. Slurm starts the job again if it is requeuing it (the run resumes); "
        f"otherwise continue with `launch ... --resume`")


class BenchmarkJob(Checkpointable):
    """Waits for its dependencies, takes a slot (local executor), then ``work()``.

    SIGTERM is a checkpoint too (Slurm's requeue, a preemption, ``scancel``, a time limit, a local
    ``kill``): the job stops at once and exits with 143. Slurm then requeues it when it was requeuing
    it (the requeued job resumes from the run folder) and otherwise ends it; submitit's USR2
    (a time limit near, or ``scancel --signal=USR2``) still requeues through ``checkpoint``.
    """

    after: tuple = ()
    slots: Slots | None = None

    def __call__(self):
        from benchmark.runtime.interruption import EXIT_TERMINATED, Terminated, busy

        with busy():
            try:
                _stop_on_sigterm()
                for dependency in self.after:
                    dependency.wait()
                with self.slots.take() if self.slots is not None else contextlib.nullcontext():
                    return self.work()
            except Terminated:
                _log_termination(self)
                raise SystemExit(EXIT_TERMINATED) from None  # no result: the job did not end its work

    def work(self):
        raise NotImplementedError


class RunJob(BenchmarkJob):
    """One run, resumed from its last completed cycle (the run folder is the checkpoint)."""

    kind = "run"

    def __init__(self, run, plugins: str | None = None):
        self.run, self.plugins = run, plugins

    @property
    def name(self) -> str:
        return self.run.run_id

    def work(self) -> dict:
        from benchmark.execution.in_process import execute
        from benchmark.execution.preflight import PlanResources
        from benchmark.records.run_folder import RunFolder

        _prepare_process(self.plugins)
        run = _device_here(self.run)
        with _ranks(run):
            console = _console()
            status, _ = execute([run], PlanResources(), overwrite=False, console=console, lock_wait=None,
                                leaderboard=False)
            done = RunFolder(run.run_dir).completed_cycles()
            console.print(f"{run.run_id}: {done} of {run.planned_cycles} cycles done")
        return dict(run=run.run_id, cycles_done=done, awaiting_labels=status == 3)


class CycleZeroJob(BenchmarkJob):
    """Cycle 0 of one (dataset, model, seed), trained into the shared cache unless it is there."""

    kind = "cycle0"

    def __init__(self, run, plugins: str | None = None):
        self.run, self.plugins = run, plugins  # any strategy run of the seed: cycle 0 ignores the strategy

    @property
    def name(self) -> str:
        return f"cycle0:{self.run.dataset}__{self.run.model}__seed{self.run.seed}"

    def work(self) -> dict:
        from benchmark.config.run_spec import cycle0_key
        from benchmark.cycle.cycle0_cache import CycleZeroCache
        from benchmark.cycle.loop import cycle0_store, train_cycle_zero
        from benchmark.data.label_store import GroundTruthOracle
        from benchmark.execution.preflight import PlanResources
        from benchmark.model.training import Reporter
        from benchmark.runtime import distributed

        _prepare_process(self.plugins)
        run = _device_here(self.run)
        cache = CycleZeroCache(run.out, cycle0_key(run))
        with _ranks(run):
            if not distributed.broadcast(cache.exists()):  # the ranks decide together, as rank 0 sees it
                resources = PlanResources()
                preset, data = resources.preset(run), resources.data(run)
                store = cycle0_store(run, data, GroundTruthOracle(data.ground_truth))
                train_cycle_zero(run, preset, data, store, cache.log_dir, Reporter())
            _console().print(f"{self.name}: cached in {cache.path}")
        return dict(cycle0=str(cache.path))


class TablesJob(BenchmarkJob):
    """The union tables and the leaderboard, rebuilt once every run job has ended; the figures."""

    kind = "tables"
    name = "tables"

    def __init__(self, out: str, plot: bool = True):
        self.out, self.plot = out, plot

    def work(self) -> dict:
        from benchmark.errors import UsageError
        from benchmark.execution.run_command import write_figures
        from benchmark.execution.status import run_states
        from benchmark.reports.tables import rebuild_leaderboard, sync_tables

        out, console = Path(self.out), _console()
        sync_tables(out)
        if (out / "cycles.csv").is_file():
            rebuild_leaderboard(out)
        try:
            states = run_states(out)["state"].value_counts().to_dict()
        except UsageError:  # every job failed before its run had a folder
            states = {}
        console.print(f"tables and leaderboard rebuilt in {out}; runs: {states}")
        if getattr(self, "plot", True) and (out / "cycles.csv").is_file():
            write_figures(out, console)
        return dict(states=states)
