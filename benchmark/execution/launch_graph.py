"""The job graph of a launch: which jobs, in which submission stages, waiting for which others.

Per (dataset, model, seed): one job trains cycle 0 into the shared cache; the strategy runs of
that seed wait for it (they load cycle 0 from the cache). The supervised reference runs
independently. A last job rebuilds the tables (and writes the figures) once every other job has ended, however it ended.

Finished runs are skipped, and so are runs another process executes now (their lock is held).
A run whose cycle 0 is already recorded, or whose seed's cycle 0 is already cached, needs no
cycle-0 job and waits for nothing. Pure planning: nothing is submitted or written here.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from benchmark.config.run_spec import cycle0_key
from benchmark.cycle.cycle0_cache import CycleZeroCache
from benchmark.execution.jobs import CycleZeroJob, RunJob, TablesJob
from benchmark.execution.run_state import run_lock_path
from benchmark.records.locks import is_locked
from benchmark.records.run_folder import RunFolder


@dataclass
class Stage:
    """Jobs submitted together (one Slurm array) that wait for the same jobs (by name)."""

    kind: str                 # "cycle0", "run" or "tables": what the stage's jobs do (its job name)
    jobs: list
    after: list = field(default_factory=list)
    need_success: bool = True  # afterok (a failed dependency cancels the stage) or afterany


@dataclass
class LaunchGraph:
    stages: list
    finished: list = field(default_factory=list)  # run ids skipped: every cycle done
    running: list = field(default_factory=list)   # run ids skipped: another process holds them

    @property
    def jobs(self) -> list:
        return [job for stage in self.stages for job in stage.jobs]


def _groups(runs) -> dict:
    """Runs grouped by the cycle 0 they share, in plan order."""
    groups: dict = {}
    for run in runs:
        groups.setdefault(cycle0_key(run), []).append(run)
    return groups


def plan_jobs(runs, plugins: str | None = None, plot: bool = True) -> LaunchGraph:
    """The stages to submit for ``runs``, in submission order (see the module docstring); ``plot``:
    the tables job writes the figures too."""
    graph = LaunchGraph(stages=[])
    independent, waiting = [], []
    for key, group in _groups(runs).items():
        todo = []
        for run in group:
            if RunFolder(run.run_dir).completed_cycles() >= run.planned_cycles:
                graph.finished.append(run.run_id)
            elif is_locked(run_lock_path(run)):
                graph.running.append(run.run_id)
            else:
                todo.append(run)
        reference = [run for run in todo if run.is_supervised]
        strategies = [run for run in todo if not run.is_supervised]
        need_cycle0 = [run for run in strategies if RunFolder(run.run_dir).completed_cycles() == 0]
        if need_cycle0 and not CycleZeroCache(strategies[0].out, key).exists():
            cycle0 = CycleZeroJob(need_cycle0[0], plugins)
            independent.append(cycle0)
            waiting.append(Stage("run", [RunJob(run, plugins) for run in need_cycle0], after=[cycle0.name]))
            strategies = [run for run in strategies if run not in need_cycle0]
        independent += [RunJob(run, plugins) for run in reference + strategies]
    if independent:
        kind = "cycle0" if all(isinstance(job, CycleZeroJob) for job in independent) else "run"
        graph.stages.append(Stage(kind, independent))
    graph.stages += waiting
    if graph.stages:
        names = [job.name for job in graph.jobs]
        graph.stages.append(Stage("tables", [TablesJob(runs[0].out, plot)], after=names, need_success=False))
    return graph
