"""Command line: `python -m benchmark <command>`. A UsageError becomes one line and exit 2."""
from __future__ import annotations

import argparse
import os
import sys

from benchmark.config.arguments import OneLineParser, add_launch_flags, add_run_flags
from benchmark.errors import RunFailed, UsageError


def cmd_run(args, console) -> int:
    from benchmark.execution.run_command import run_from_flags

    return run_from_flags(args, console)


def cmd_launch(args, console) -> int:
    try:
        from benchmark.execution.launch import launch
    except ModuleNotFoundError as err:
        if err.name != "submitit":
            raise
        raise UsageError("launch needs submitit, which is not installed: pip install "
                         "'al-seg-benchmark[cluster]' (or pip install submitit)") from None
    return launch(args, console)


def cmd_list(args, console) -> int:
    from rich.table import Table

    from benchmark.config.plan import import_plugin_modules
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

    from benchmark.reports.display import print_aggregate, print_leaderboard
    from benchmark.reports.tables import rebuild_aggregate, rebuild_leaderboard, run_settings, sync_tables

    results = Path(args.results)
    sync_tables(results)  # runs/ -> cycles.csv, keeping rows of runs merged from elsewhere
    print_leaderboard(rebuild_leaderboard(results), console, run_settings(results))
    written = [results / "leaderboard.csv", results / "pairwise.csv"]
    if args.aggregate:
        print_aggregate(rebuild_aggregate(results), console)
        written.append(results / "aggregate.csv")
    console.print(f"written: {', '.join(map(str, written))}")
    return 0


def cmd_status(args, console) -> int:
    from benchmark.execution.status import run_states
    from benchmark.reports.display import print_status

    print_status(run_states(args.results), console)
    return 0


def cmd_plot(args, console) -> int:
    from pathlib import Path

    from benchmark.reports.figures import make_figures

    for path in make_figures(Path(args.results), cycle=args.cycle):
        console.print(str(path))
    return 0


def cmd_export(args, console) -> int:
    from pathlib import Path

    from benchmark.cycle.annotator_files import export_queries

    path = export_queries(Path(args.results), args.run, args.cycle,
                          Path(args.out) if args.out else None)
    console.print(f"queries written to {path}")
    return 0


def cmd_import(args, console) -> int:
    from pathlib import Path

    from benchmark.cycle.annotator_files import import_labels

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
    from benchmark.studies.mc_dropout import main as study_main

    if args.study != "mc-dropout":
        raise UsageError(f"unknown study {args.study!r}: the one study is mc-dropout")
    return study_main(args.study_args)


def cmd_perf(args, console) -> int:
    from benchmark.perf.suite import main as perf_main

    return perf_main(args.perf_args)


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineParser(prog="python -m benchmark", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("run", help="run strategies through the active-learning schedule")
    add_run_flags(p)
    p.set_defaults(func=cmd_run)
    p = sub.add_parser("launch", help="submit the runs of `run` as jobs (Slurm, local background, debug)")
    add_launch_flags(p)
    p.set_defaults(func=cmd_launch)
    p = sub.add_parser("list", help="list the registered strategies")
    p.add_argument("--plugins", default=None,
                   help="comma-separated Python modules that register extra strategies on import")
    p.set_defaults(func=cmd_list)
    p = sub.add_parser("leaderboard", help="rebuild and print the leaderboard")
    p.add_argument("--results", default="results")
    p.add_argument("--aggregate", action="store_true",
                   help="also rank the arms across the (dataset, model) tasks of RESULTS: aggregate.csv")
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
    p = sub.add_parser("study", help="a grid of runs and its summary: `study mc-dropout` (see benchmark/studies/mc_dropout.py)")
    p.add_argument("study", help="mc-dropout")
    p.set_defaults(func=cmd_study)
    # its own flags are parsed by benchmark.perf.suite (`python -m benchmark perf --help`)
    p = sub.add_parser("perf", help="performance suite (see benchmark/perf)", add_help=False)
    p.set_defaults(func=cmd_perf)
    return parser


def main(argv: list[str] | None = None) -> int:
    from rich.console import Console

    from benchmark.runtime.known_warnings import silence_known_warnings

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
    except KeyboardInterrupt as err:
        from benchmark.runtime.interruption import EXIT_TERMINATED, Terminated

        why = f" ({err})" if isinstance(err, Terminated) else ""
        print(f"interrupted{why}: completed cycles are saved; continue with --resume", file=sys.stderr)
        return EXIT_TERMINATED if isinstance(err, Terminated) else 130
