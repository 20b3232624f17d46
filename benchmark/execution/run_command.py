"""`run`: from the flags to executed runs and the printed leaderboard, the one path every caller
takes (the command line, the studies)."""
from __future__ import annotations


def run_from_flags(args, console) -> int:
    """`run`: plan the runs of ``args`` (the flags of ``benchmark.config.arguments.add_run_flags``),
    check them, execute them here or in ``--workers`` processes, print the leaderboard; returns the
    exit status. Every process of a run started by torchrun (--gpus-per-run G) runs this; rank 0
    writes."""
    import threading

    from benchmark.runtime import distributed, interruption

    if threading.current_thread() is threading.main_thread():
        interruption.stop_on_sigterm()  # a `kill` or Slurm's requeue/cancel: runs end interrupted, resumable
    distributed.check_world_size(args.gpus_per_run)
    distributed.init_from_env(args.device)
    try:
        return _run(args, console if distributed.is_main() else type(console)(quiet=True))
    finally:
        distributed.shutdown()


def _run(args, console) -> int:
    import mmseg.utils

    from benchmark.config.plan import check_existing, import_plugin_modules, make_plan
    from benchmark.execution.in_process import execute
    from benchmark.execution.preflight import preflight
    from benchmark.execution.run_state import check_not_running
    from benchmark.execution.workers import execute_parallel, plan_workers, resolve_workers
    from benchmark.reports.display import print_leaderboard
    from benchmark.reports.tables import run_settings
    from benchmark.runtime import distributed

    mmseg.utils.register_all_modules(init_default_scope=True)
    import_plugin_modules(args.plugins)
    with distributed.main_first():  # the embedded dataset is generated once, by rank 0
        runs = make_plan(args)
    resolve_workers(args.workers, runs, args.device, args.oracle, args.gpus_per_run)  # a wrong count: one line, first
    check_existing(runs, args.resume, args.overwrite)
    if distributed.is_main():
        check_not_running(runs)
    resources = preflight(runs)
    # on a GPU, auto probes one run's peak memory (a few iterations in a process of its own)
    workers = plan_workers(args.workers, runs, args.device, args.oracle, args.gpus_per_run, console)
    if workers.count > 1:
        status, board = execute_parallel(runs, workers.count, args.overwrite, args.plugins, console,
                                         workers.memory_fraction)
    else:
        status, board = execute(runs, resources, args.overwrite, console)
    if board is not None:
        out = runs[0].out
        print_leaderboard(board, console, run_settings(out))
        console.print(f"tables: {out}/cycles.csv, {out}/class_iou.csv, {out}/leaderboard.csv, {out}/pairwise.csv")
        if getattr(args, "plot", True):
            write_figures(out, console)
    return status


def write_figures(out, console) -> None:
    """What `python -m benchmark plot` writes, written at the end of `run` (and of `launch`'s tables
    job), then where it is; a results folder the figures cannot be drawn from is said in one line."""
    from pathlib import Path

    from benchmark.errors import UsageError
    from benchmark.reports.figures import make_figures

    try:
        paths = make_figures(Path(out))
    except UsageError as err:
        console.print(f"figures not written: {err}")
        return
    console.print(f"figures: {len(paths)} PNG(s) in {Path(out) / 'figures'} (`--no-plot` skips them; "
                  f"`python -m benchmark plot --results {out}` redraws them)")
