"""Studies: a grid of runs that answers one question, run with one command and summarised.

``python -m benchmark study mc-dropout [--out studies/mc_dropout] [run flags]`` answers "which
MC dropout makes BalEnt run in the regime the paper describes, and what does it change in the
ranking?": on the embedded default, dropout rates 0.1, 0.3, 0.5 x masks channel, element, three
seeds, strategies balent, bald, entropy, random; each configuration is an ordinary ``run`` into its
own folder (``<out>/rate<r>_<mask>/``, resumable: rerun the command to continue), then
``summary.csv`` (one row per configuration and strategy: leaderboard figures and the regime shares
averaged over cycles) and two figures (learning curves and regime shares, one panel per
configuration) are written to ``<out>``. Extra flags go to every run (``--cycles 3`` for a
shorter look); ``--configs 0.1:channel,0.5:element`` picks a subset. ``--launch`` submits each
configuration's runs through ``benchmark launch`` (Slurm, local or debug executor) instead.
"""
from __future__ import annotations

import argparse
from pathlib import Path

import pandas as pd

from benchmark.config.modes import MC_DROPOUT_MASKS as MASKS
from benchmark.errors import UsageError
from benchmark.records.schema import REGIME_COLUMNS as REGIME

RATES = (0.1, 0.3, 0.5)
STRATEGIES = "balent,bald,entropy,random"  # the study's question: BalEnt beside its nearest kin and random
SEEDS = "0,1,2"


def configurations(text: str | None) -> list[tuple[float, str]]:
    """``rate:mask,...`` -> [(rate, mask)]; None -> the full grid."""
    if not text:
        return [(rate, mask) for mask in MASKS for rate in RATES]
    configs = []
    for part in text.split(","):
        rate, _, mask = part.partition(":")
        try:
            configs.append((float(rate), mask.strip()))
        except ValueError:
            raise UsageError(f"--configs takes RATE:MASK pairs such as 0.1:channel,0.5:element; got {part!r}") from None
        if mask.strip() not in MASKS:
            raise UsageError(f"--configs: mask {mask!r} is not one of {', '.join(MASKS)}")
    return configs


def folder(out: Path, rate: float, mask: str) -> Path:
    return out / f"rate{rate:g}_{mask}"


def run_configurations(out: Path, configs, extra: list[str], command: str = "run") -> None:
    """One ordinary ``run`` per configuration (resumed when its folder already holds runs); with
    ``command="launch"`` each configuration's runs are submitted as jobs instead (the extra flags
    then carry the executor's, e.g. ``--executor slurm --slurm-time 4:00:00``)."""
    from rich.console import Console

    from benchmark.config.arguments import parse_plan_flags
    from benchmark.execution.launch import launch
    from benchmark.execution.run_command import run_from_flags

    execute = run_from_flags if command == "run" else launch
    for rate, mask in configs:
        target = folder(out, rate, mask)
        resume = ["--resume"] if (target / "runs").is_dir() else []
        argv = [command, "--strategy", STRATEGIES, "--seeds", SEEDS, "--no-supervised", "--mc-dropout-rate",
                str(rate), "--mc-dropout-mask", mask, "--out", str(target), *resume, *extra]
        status = execute(parse_plan_flags(command, argv[1:]), Console())
        if status != 0:
            raise UsageError(f"the {command} of configuration rate {rate:g}, {mask} masks stopped with status "
                             f"{status}: fix the cause and rerun the study command to continue")


def summary(out: Path, configs) -> pd.DataFrame:
    """One row per (configuration, strategy): the leaderboard's figures, the regime shares averaged
    over the cycles and seeds, and the mIoU curve's endpoints."""
    from benchmark.reports.leaderboard import leaderboard
    from benchmark.reports.tables import read_cycles_csv

    rows = []
    for rate, mask in configs:
        cycles = read_cycles_csv(folder(out, rate, mask) / "cycles.csv")
        board = leaderboard(cycles).set_index("strategy")
        for strategy, block in cycles.groupby("strategy"):
            row = dict(mc_dropout_rate=rate, mc_dropout_mask=mask, strategy=strategy)
            row.update({k: board.loc[strategy, k] for k in ("n_seeds", "aulc_mean", "aulc_ci95", "final_miou_mean",
                                                             "final_miou_ci95", "rank", "tied_with_best", "p_holm")})
            row.update({k: float(block[k].mean()) for k in REGIME if k in block})
            rows.append(row)
    return pd.DataFrame(rows)


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmark study mc-dropout")
    parser.add_argument("--out", default="studies/mc_dropout")
    parser.add_argument("--configs", default=None, help="RATE:MASK[,RATE:MASK] (default: the 3 x 2 grid)")
    parser.add_argument("--summarise-only", action="store_true", help="only rebuild the summary and figures")
    parser.add_argument("--launch", action="store_true",
                        help="submit each configuration's runs with `benchmark launch` (give its flags too) "
                             "and return; summarise with --summarise-only once the jobs have ended")
    args, extra = parser.parse_known_args(argv)
    out, configs = Path(args.out), configurations(args.configs)
    if args.launch and not args.summarise_only:
        run_configurations(out, configs, extra, command="launch")
        print(f"submitted; once the jobs have ended: python -m benchmark study mc-dropout --out {out} "
              f"--summarise-only{' --configs ' + args.configs if args.configs else ''}")
        return 0
    if not args.summarise_only:
        run_configurations(out, configs, extra)
    from benchmark.records.fileio import write_csv_atomic
    from benchmark.reports.tables import read_cycles_csv
    from benchmark.studies.mc_dropout_figures import study_figures

    frame = summary(out, configs)
    write_csv_atomic(frame, out / "summary.csv")
    cycles = {config: read_cycles_csv(folder(out, *config) / "cycles.csv") for config in configs}
    for path in [out / "summary.csv", *study_figures(out, cycles)]:
        print(path)
    return 0
