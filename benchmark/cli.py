"""Command line: `python -m benchmark <command>`. A UsageError becomes one line and exit 2."""
from __future__ import annotations

import argparse
import os
import sys

from benchmark.errors import RunFailed, UsageError


def _add_run(sub) -> None:
    p = sub.add_parser("run", help="run strategies through the active-learning schedule")
    add_run_arguments(p)
    p.add_argument("--workers", default=None, metavar="N|auto",
                   help="runs trained at once in local processes, the CPU cores shared among them "
                        "(default auto: one per core with --device cpu, else 1)")


def _add_launch(sub) -> None:
    p = sub.add_parser("launch", help="submit the runs of `run` as jobs (Slurm, local background, debug)")
    add_run_arguments(p)
    p.add_argument("--executor", choices=["slurm", "local", "debug"], default="slurm",
                   help="slurm: job arrays with dependencies; local: background processes here; debug: in-process")
    p.add_argument("--slurm-partition", default=None, help="Slurm partition of the jobs")
    p.add_argument("--slurm-time", default=None,
                   help="time limit of each job (MINUTES, HH:MM:SS or D-HH:MM:SS); required for slurm; a job "
                        "that reaches it is requeued and resumes")
    p.add_argument("--max-parallel", type=int, default=None,
                   help="jobs of one array running at once (slurm); jobs training at once (local, default 1)")
    p.add_argument("--slurm-option", action="append", default=[], metavar="KEY=VALUE",
                   help="any other sbatch option, e.g. account=proj, mem=64G, qos=high (repeatable)")
    p.set_defaults(func=cmd_launch)


def add_run_arguments(p) -> None:
    """The flags of `run`, shared by `launch` (which plans the same runs)."""
    p.add_argument("--strategy", default="all", help="all, or NAME[,NAME] (see `list`)")
    p.add_argument("--plugins", default=None,
                   help="comma-separated Python modules that register extra strategies on import")
    p.add_argument("--model", default="deeplabv3plus", help="deeplabv3plus, fpn or all")
    p.add_argument("--dataset", default="synthetic",
                   help="synthetic (embedded default), cityscapes, camvid, ade20k or voc2012")
    p.add_argument("--data-root", default=None, help="the dataset's folder in its native layout")
    p.add_argument("--preset", default=None,
                   help="settings preset: a dataset name (default: --dataset) or a config .py path")
    p.add_argument("--seeds", default=None, help="comma-separated seeds (default: the preset's)")
    p.add_argument("--cycles", type=int, default=None, help="training cycles per run")
    p.add_argument("--pixels-per-image", type=int, default=None, help="clicks per image per cycle")
    p.add_argument("--mc-samples", type=int, default=None, help="MC dropout samples m")
    p.add_argument("--mc-dropout-rate", type=float, default=None,
                   help="dropout rate of the head's last layer, at training and MC inference (default: preset's)")
    p.add_argument("--mc-dropout-mask", choices=["channel", "element"], default=None,
                   help="channel: one mask per feature channel (mmseg's Dropout2d); element: per channel and "
                        "pixel (default: preset's)")
    p.add_argument("--record-pixels", type=int, default=None,
                   help="pixels per image the uncertainty record samples (0: every pixel; default: preset's)")
    p.add_argument("--selection", default=None,
                   help="selector(s) turning scores into clicks, NAME[,NAME] (topn, pixelpick, spread; "
                        "default: preset's, topn); runs the cross product with --strategy")
    p.add_argument("--void-clicks", choices=["spend", "skip"], default=None,
                   help="spend: a click on a void pixel costs budget (default); skip: void pixels are passed "
                        "over at no cost (an idealised annotator)")
    p.add_argument("--train-iters", type=int, default=None, help="training iterations per cycle")
    p.add_argument("--batch-size", type=int, default=None, help="images per training step and per GPU (rank)")
    p.add_argument("--gpus-per-run", type=int, default=1,
                   help="GPUs (DDP ranks) training one run; with run, start that many processes with torchrun")
    p.add_argument("--device", default="cpu", help="cpu, cuda, cuda:N or auto")
    p.add_argument("--amp", action="store_true", help="mixed precision training (CUDA)")
    p.add_argument("--retrain", choices=["scratch", "finetune"], default="scratch")
    p.add_argument("--oracle", choices=["ground-truth", "file"], default="ground-truth",
                   help="file: stop after each selection for an annotator (export-queries/import-labels)")
    p.add_argument("--pretrained", default=None, help="local backbone checkpoint (.pth)")
    p.add_argument("--map-images", type=int, default=None,
                   help="validation images whose uncertainty maps are saved each cycle")
    p.add_argument("--map-strategies", default=None,
                   help="strategies whose score maps are saved (NAME[,NAME] or all; default: the preset's)")
    p.add_argument("--no-supervised", dest="supervised", action="store_false",
                   help="skip the fully supervised reference run")
    p.add_argument("--out", default="results", help="output folder")
    mode = p.add_mutually_exclusive_group()
    mode.add_argument("--resume", action="store_true", help="continue runs found in --out")
    mode.add_argument("--overwrite", action="store_true", help="recompute runs found in --out")


def cmd_run(args, console) -> int:
    """Every process of a run started by torchrun (--gpus-per-run G) runs this; rank 0 writes."""
    from benchmark import distributed

    distributed.check_world_size(args.gpus_per_run)
    distributed.init_from_env(args.device)
    try:
        return _run(args, console if distributed.is_main() else type(console)(quiet=True))
    finally:
        distributed.shutdown()


def _run(args, console) -> int:
    import mmseg.utils

    from benchmark import distributed
    from benchmark.display import print_leaderboard
    from benchmark.experiment import execute
    from benchmark.parallel import execute_parallel, resolve_workers
    from benchmark.plan import check_existing, import_plugin_modules, make_plan
    from benchmark.preflight import preflight
    from benchmark.run_state import check_not_running
    from benchmark.tables import run_settings

    mmseg.utils.register_all_modules(init_default_scope=True)
    import_plugin_modules(args.plugins)
    with distributed.main_first():  # the embedded dataset is generated once, by rank 0
        runs = make_plan(args)
    workers = resolve_workers(args.workers, runs, args.device, args.oracle, args.gpus_per_run)
    check_existing(runs, args.resume, args.overwrite)
    if distributed.is_main():
        check_not_running(runs)
    resources = preflight(runs)
    if workers > 1:
        status, board = execute_parallel(runs, workers, args.overwrite, args.plugins, console)
    else:
        status, board = execute(runs, resources, args.overwrite, console)
    if board is not None:
        out = runs[0].out
        print_leaderboard(board, console, run_settings(out))
        console.print(f"tables: {out}/cycles.csv, {out}/class_iou.csv, {out}/leaderboard.csv")
    return status


def cmd_launch(args, console) -> int:
    try:
        from benchmark.launch import launch
    except ModuleNotFoundError as err:
        if err.name != "submitit":
            raise
        raise UsageError("launch needs submitit, which is not installed: pip install "
                         "'al-seg-benchmark[cluster]' (or pip install submitit)") from None
    return launch(args, console)


def cmd_list(args, console) -> int:
    from rich.table import Table

    from benchmark.plan import import_plugin_modules
    from strategies import describe_selectors, describe_strategies, load_all_entry_points

    import_plugin_modules(args.plugins)
    load_all_entry_points()
    for title, rows in (("Registered acquisition strategies", describe_strategies()),
                        ("Registered selectors (how each image's clicks are chosen)",
                         describe_selectors())):
        table = Table(title=title)
        for column in ("name", "description", "package"):
            table.add_column(column)
        for name, description, package in rows:
            table.add_row(name, description, package)
        console.print(table)
    return 0


def cmd_leaderboard(args, console) -> int:
    from pathlib import Path

    from benchmark.display import print_leaderboard
    from benchmark.tables import rebuild_leaderboard, run_settings, sync_tables

    sync_tables(Path(args.results))  # runs/ -> cycles.csv, keeping rows of runs merged from elsewhere
    print_leaderboard(rebuild_leaderboard(Path(args.results)), console, run_settings(Path(args.results)))
    console.print(f"written: {Path(args.results) / 'leaderboard.csv'}")
    return 0


def cmd_status(args, console) -> int:
    from benchmark.display import print_status
    from benchmark.status import run_states

    print_status(run_states(args.results), console)
    return 0


def cmd_plot(args, console) -> int:
    from pathlib import Path

    from benchmark.figures import make_figures

    for path in make_figures(Path(args.results), cycle=args.cycle):
        console.print(str(path))
    return 0


def cmd_export(args, console) -> int:
    from pathlib import Path

    from benchmark.queries import export_queries

    path = export_queries(Path(args.results), args.run, args.cycle,
                          Path(args.out) if args.out else None)
    console.print(f"queries written to {path}")
    return 0


def cmd_import(args, console) -> int:
    from pathlib import Path

    from benchmark.queries import import_labels

    result = import_labels(Path(args.results), args.run, Path(args.file))
    left = (f"{result.pending} clicks still have no label: answer them too, then" if result.pending
            else "nothing is pending any more:")
    console.print(f"{result.imported} labels imported into run {args.run}; {left} continue with `run ... --resume` "
                  "(same flags as the first run)")
    return 0


def cmd_datasets_check(args, console) -> int:
    from benchmark.data import get_dataset
    from benchmark.data.check import print_report

    report = get_dataset(args.dataset).check(args.data_root, max_label_files=args.max_label_files)
    print_report(report, console)
    return 0


def cmd_study(args, console) -> int:
    from benchmark.study import main as study_main

    if args.study != "mc-dropout":
        raise UsageError(f"unknown study {args.study!r}: the one study is mc-dropout")
    return study_main(args.study_args)


def cmd_perf(args, console) -> int:
    from benchmark.perf.suite import main as perf_main

    return perf_main(args.perf_args)


class OneLineParser(argparse.ArgumentParser):
    """argparse, but a bad command line is one ``error:`` line (exit 2) like every other mistake."""

    def error(self, message: str):
        raise UsageError(f"{self.prog}: {message} (see `{self.prog} --help`)")


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineParser(prog="python -m benchmark", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    _add_run(sub)
    _add_launch(sub)
    p = sub.add_parser("list", help="list the registered strategies")
    p.add_argument("--plugins", default=None,
                   help="comma-separated Python modules that register extra strategies on import")
    p.set_defaults(func=cmd_list)
    p = sub.add_parser("leaderboard", help="rebuild and print the leaderboard")
    p.add_argument("--results", default="results")
    p.set_defaults(func=cmd_leaderboard)
    p = sub.add_parser("status", help="per run: cycles done of planned, running/finished/failed, last error")
    p.add_argument("--results", default="results")
    p.set_defaults(func=cmd_status)
    p = sub.add_parser("plot", help="write figures under RESULTS/figures")
    p.add_argument("--results", default="results")
    p.add_argument("--cycle", type=int, default=None, help="cycle of the uncertainty maps")
    p.set_defaults(func=cmd_plot)
    p = sub.add_parser("export-queries", help="write a run's requested pixels for an annotator")
    p.add_argument("--results", default="results")
    p.add_argument("--run", required=True)
    p.add_argument("--cycle", type=int, required=True)
    p.add_argument("--out", default=None)
    p.set_defaults(func=cmd_export)
    p = sub.add_parser("import-labels", help="read an annotator's answers into a run")
    p.add_argument("--results", default="results")
    p.add_argument("--run", required=True)
    p.add_argument("--file", required=True)
    p.set_defaults(func=cmd_import)
    datasets = sub.add_parser("datasets", help="dataset tools").add_subparsers(dest="action", required=True)
    p = datasets.add_parser("check", help="verify a dataset's native layout and summarise it")
    p.add_argument("--dataset", required=True)
    p.add_argument("--data-root", required=True)
    p.add_argument("--max-label-files", type=int, default=None,
                   help="read at most this many label files per split for the histogram")
    p.set_defaults(func=cmd_datasets_check)
    p = sub.add_parser("study", help="a grid of runs and its summary: `study mc-dropout` (see benchmark/study.py)")
    p.add_argument("study", help="mc-dropout")
    p.set_defaults(func=cmd_study)
    # its own flags are parsed by benchmark.perf.suite (`python -m benchmark perf --help`)
    p = sub.add_parser("perf", help="performance suite (see benchmark/perf)", add_help=False)
    p.set_defaults(func=cmd_perf)
    return parser


def main(argv: list[str] | None = None) -> int:
    from rich.console import Console

    from benchmark.known_warnings import silence_known_warnings

    silence_known_warnings()
    parser = build_parser()
    try:
        args, extra = parser.parse_known_args(argv)
        if args.command == "perf":
            args.perf_args = extra
        elif args.command == "study":
            args.study_args = extra
        elif extra:
            parser.error(f"unrecognized arguments: {' '.join(extra)}")
    except UsageError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    if args.command == "run":
        args.func = cmd_run
    console = Console()
    rank = int(os.environ.get("RANK", "0"))  # under torchrun: a mistake is told once, by rank 0
    try:
        return args.func(args, console)
    except UsageError as err:
        if rank == 0:
            print(f"error: {err}", file=sys.stderr)
        return 2
    except RunFailed as err:
        print(f"error: {f'[rank {rank}] ' if rank else ''}{err}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("interrupted: completed cycles are saved; continue with --resume", file=sys.stderr)
        return 130
