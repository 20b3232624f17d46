"""`run --workers N`: the plan's runs in N local processes at once, each with its share of the
CPU threads.

On a CPU machine one training uses its cores poorly (a small model's operations are too short for
OpenMP to split well), so N single-threaded processes train more images per second than one
process with N threads (measured in `benchmark perf --sections 5`). The runs coordinate through
the locks they already use when several commands share an ``--out`` (``benchmark.execution.run_state``,
``benchmark.cycle.cycle0_cache``, ``benchmark.reports.tables``): a run's lock, each seed's cycle-0 cache entry,
the tables. The parent process plans and checks everything first, then hands each worker one run
at a time and shows the progress it reads from the run folders.

Stopping: Ctrl-C reaches every process of the group, and a SIGTERM to the main process is passed on
to the workers; either way each worker stops its run at once, marked interrupted
(``benchmark.runtime.interruption``), and no queued run begins. A worker whose main process is
killed outright notices within a second and does the same, then exits: nothing outlives the command.
"""
from __future__ import annotations

import contextlib
import os
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from dataclasses import dataclass
from multiprocessing import get_context
from pathlib import Path

from benchmark.config.modes import ORACLE_GROUND_TRUTH
from benchmark.errors import RunFailed, UsageError


def available_cores() -> int:
    """The cores this process may run on (the affinity mask, e.g. a Slurm or taskset allocation)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


@dataclass(frozen=True)
class WorkerPlan:
    """How many worker processes, and on a GPU the share of its memory each may allocate."""

    count: int
    memory_fraction: float | None = None


def plan_workers(value: str | None, runs, device: str, oracle: str, gpus_per_run: int,
                 console=None) -> WorkerPlan:
    """``--workers`` as a plan: the count (``resolve_workers``) and, with several workers on one
    GPU, each one's memory fraction (``benchmark.execution.gpu_sharing``)."""
    from benchmark.execution import gpu_sharing

    value = "auto" if value is None else str(value).strip()
    if value == "auto" and _on_cuda(device) and not _serial_only(device, oracle, gpus_per_run):
        count, fraction = gpu_sharing.auto_workers(runs, device, available_cores(), console)
        return WorkerPlan(count, fraction)
    count = resolve_workers(value, runs, device, oracle, gpus_per_run)
    if count > 1 and _on_cuda(device):  # an explicit N: an equal share of the device each
        return WorkerPlan(count, gpu_sharing.memory_fraction(count, 1, 1))
    return WorkerPlan(count)


def _on_cuda(device: str) -> bool:
    return str(device).split(":")[0] == "cuda"


def _serial_only(device: str, oracle: str, gpus_per_run: int) -> bool:
    return (not (device == "cpu" or _on_cuda(device)) or oracle != ORACLE_GROUND_TRUTH or gpus_per_run > 1)


def resolve_workers(value: str | None, runs, device: str, oracle: str, gpus_per_run: int) -> int:
    """``--workers``: a count, or ``auto`` (the default): one per core on the CPU; on a GPU as
    many as fit its memory (``plan_workers``, which probes; 1 here); one elsewhere."""
    value = "auto" if value is None else str(value).strip()
    serial_only = _serial_only(device, oracle, gpus_per_run)
    if value == "auto":
        return 1 if serial_only or _on_cuda(device) else max(1, min(available_cores(), len(runs)))
    try:
        workers = int(value)
    except ValueError:
        raise UsageError(f"--workers {value!r} is not a count: give a whole number >= 1, or auto") from None
    if workers < 1:
        raise UsageError(f"--workers {workers} is below 1: give a whole number >= 1, or auto")
    workers = min(workers, len(runs))  # more processes than runs would only split the cores thinner
    if workers > 1 and serial_only:
        why = (f"runs share a {device} device in separate processes only on cuda" if device != "cpu"
               and not _on_cuda(device) else
               "answers from a file pause the runs one at a time" if oracle != ORACLE_GROUND_TRUTH else
               "a run on several GPUs already uses every process")
        raise UsageError(f"--workers {workers} with --device {device}, --oracle {oracle}, --gpus-per-run "
                         f"{gpus_per_run}: {why}; use --workers 1 (or `benchmark launch` to spread runs "
                         "over machines)")
    return workers


def interleave_seeds(runs) -> list:
    """The runs in an order where runs started together rarely need the same seed's cycle 0:
    the first run of every seed, then the second of every seed, ... (the supervised references
    have no cycle 0 and come last)."""
    learning = [r for r in runs if not r.is_supervised]
    seen: dict = {}
    keys = []  # (how many runs of its seed came before it, seed, position in the plan)
    for index, run in enumerate(learning):
        keys.append((seen.get(run.seed, 0), run.seed, index))
        seen[run.seed] = seen.get(run.seed, 0) + 1
    ordered = [learning[index] for *_, index in sorted(keys)]
    return ordered + [r for r in runs if r.is_supervised]


_STOP = None  # in a worker: the pool's stop event (set: runs handed over from now on are skipped)


def _start_worker(threads: int, plugins: str | None, stop, parent_pid: int, device: str = "cpu",
                  memory_fraction: float | None = None) -> None:
    import warnings

    from benchmark.runtime import interruption

    # first, before the slow imports: a worker whose parent is gone (killed, even before this
    # line ran) stops its run at once, marked interrupted, and exits; SIGINT (Ctrl-C reaches the
    # whole process group) and SIGTERM (a `kill`, Slurm's requeue or cancel, the parent passing
    # its own on) stop it alike, once
    interruption.stop_on_sigterm(also_sigint=True, quiet_when_idle=True)
    interruption.watch_parent(parent_pid)
    import torch

    from benchmark.runtime.known_warnings import silence_known_warnings

    silence_known_warnings()
    # mmengine's Runner sets the start method of the worker's own DataLoaders to fork and warns
    # that it differs from the spawn this pool started the worker with: expected, harmless
    warnings.filterwarnings("ignore", message="Multi-processing start method")
    torch.set_num_threads(threads)
    from benchmark.execution.gpu_sharing import limit_this_process

    limit_this_process(device, memory_fraction)  # on a shared GPU: this worker's share of its memory
    import mmseg.utils

    from benchmark.config.plan import import_plugin_modules

    mmseg.utils.register_all_modules(init_default_scope=True)
    import_plugin_modules(plugins)
    global _STOP
    _STOP = stop


def _execute_in_worker(run, overwrite: bool) -> int | None:
    """Execute one run here; None when the pool was stopped before it began. (The pool queues a
    run ahead of the free workers, which ``Future.cancel`` cannot take back: this check can.)"""
    from rich.console import Console

    from benchmark.execution.in_process import execute
    from benchmark.execution.preflight import PlanResources
    from benchmark.runtime import interruption

    if (_STOP is not None and _STOP.is_set()) or interruption.stopping():
        return None
    try:
        with interruption.busy():
            status, _ = execute([run], PlanResources(), overwrite, Console(quiet=True), leaderboard=False)
    except BaseException:  # Ctrl-C reaches every worker: the next queued run must not start, even
        if _STOP is not None:  # before the parent has heard of it
            _STOP.set()
        raise
    return status


def _completed_cycles(run) -> int:
    from benchmark.records.run_folder import RunFolder

    try:
        return RunFolder(run.run_dir).completed_cycles()
    except Exception:  # a folder being written right now: read again at the next poll
        return 0


def execute_parallel(runs, workers: int, overwrite: bool, plugins: str | None, console,
                     memory_fraction: float | None = None):
    """Every run of the plan in ``workers`` processes; returns (0, leaderboard frame) like
    ``experiment.execute``. The first run that fails stops the runs not yet started, lets the
    running ones finish their current run, and is raised (a RunFailed, one line)."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from benchmark.reports.tables import rebuild_leaderboard, write_tables

    threads = max(1, available_cores() // workers)
    ordered = interleave_seeds(runs)
    total_cycles = sum(r.planned_cycles for r in ordered)
    device = ordered[0].device
    shared = f", sharing {device}" + (f" ({memory_fraction:.0%} of its memory each)" if memory_fraction else "") \
        if _on_cuda(device) else ""
    console.print(f"{len(ordered)} runs in {workers} worker processes, {threads} thread(s) each{shared}")
    context = get_context("spawn")
    stop = context.Event()
    with Progress(TextColumn("{task.description:<44}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                  console=console, transient=False) as progress, \
            ProcessPoolExecutor(workers, mp_context=context, initializer=_start_worker,
                                initargs=(threads, plugins, stop, os.getpid(), device, memory_fraction)) as pool:
        all_runs = progress.add_task("runs", total=len(ordered))
        cycles = progress.add_task("cycles (all runs)", total=total_cycles)
        pending = {pool.submit(_execute_in_worker, run, overwrite): run for run in ordered}
        try:
            failure = _wait_for_runs(pending, progress, all_runs, cycles, ordered, console, stop)
        except BaseException:  # Ctrl-C, SIGTERM or an error here: start nothing more, stop what runs
            stop.set()
            for future in list(pending):  # the pool would otherwise still run every queued run
                future.cancel()
            _stop_workers(pool)
            raise
    if failure is not None:
        write_tables(Path(ordered[0].out))
        if isinstance(failure, (RunFailed, UsageError)):
            raise failure
        raise RunFailed(f"a worker process failed: {type(failure).__name__}: {failure}; completed cycles are "
                        "saved; rerun the same command with --resume (or --workers 1 to see it in this "
                        "process)") from None
    out = Path(ordered[0].out)
    write_tables(out)
    return 0, rebuild_leaderboard(out)


def _stop_workers(pool) -> None:
    """SIGTERM to every worker: each stops its run at once, marked interrupted (a worker that had the
    signal already, as Ctrl-C gives it to the whole process group, ignores the second). Otherwise
    leaving the pool would wait for the runs in progress to end."""
    import signal

    for process in list((getattr(pool, "_processes", None) or {}).values()):
        with contextlib.suppress(OSError, ValueError):
            os.kill(process.pid, signal.SIGTERM)


def _wait_for_runs(pending: dict, progress, all_runs, cycles, ordered, console, stop):
    """Follow the runs until every one has ended or been cancelled (``pending``, future -> run, is
    emptied as they end); returns the first failure (an exception) or None. A failure cancels the
    runs not yet started."""
    failure = None
    while pending:
        done, _ = wait(pending, timeout=1.0, return_when=FIRST_COMPLETED)
        for future in done:
            run = pending.pop(future)
            progress.advance(all_runs)
            error = future.exception()
            if error is not None and failure is None:
                failure = error
                stop.set()
                for other in pending:
                    other.cancel()
                console.print(f"[red]run {run.run_id} failed; the runs not yet started are cancelled[/red]")
        for future in [f for f in pending if f.cancelled()]:
            del pending[future]
        progress.update(cycles, completed=sum(_completed_cycles(r) for r in ordered))
    return failure
