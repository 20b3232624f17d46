"""The command-line flags that plan runs (`run`, `launch`, and the studies that run or launch
grids of them): defined once here, read by ``benchmark.config.plan``."""
from __future__ import annotations

import argparse

from benchmark.config.modes import (
    AGGREGATIONS,
    EXECUTORS,
    MC_DROPOUT_MASKS,
    ORACLE_GROUND_TRUTH,
    ORACLES,
    RETRAIN_MODES,
    RETRAIN_SCRATCH,
    VOID_CLICK_MODES,
)
from benchmark.errors import UsageError


def add_run_flags(p) -> None:
    """The flags of `run`: the plan's, the report's, and how many local processes execute it."""
    add_plan_flags(p)
    add_report_flags(p)
    p.add_argument("--workers", default=None, metavar="N|auto",
                   help="runs trained at once in local processes, the CPU cores shared among them "
                        "(default auto: one per core with --device cpu; with cuda as many as fit the GPU's "
                        "free memory, from one run's measured peak; else 1)")


def add_launch_flags(p) -> None:
    """The flags of `launch`: the plan's, the report's, and the executor's."""
    add_plan_flags(p)
    add_report_flags(p)
    p.add_argument("--executor", choices=EXECUTORS, default="slurm",
                   help="slurm: job arrays with dependencies; local: background processes here; debug: in-process")
    p.add_argument("--slurm-partition", default=None, help="Slurm partition of the jobs")
    p.add_argument("--slurm-time", default=None,
                   help="time limit of each job (MINUTES, HH:MM:SS or D-HH:MM:SS); required for slurm; a job "
                        "that reaches it is requeued and resumes")
    p.add_argument("--max-parallel", type=int, default=None,
                   help="jobs of one array running at once (slurm); jobs training at once (local, default 1)")
    p.add_argument("--slurm-option", action="append", default=[], metavar="KEY=VALUE",
                   help="any other sbatch option, e.g. account=proj, mem=64G, qos=high (repeatable)")


def add_report_flags(p) -> None:
    """What `run` (and `launch`'s tables job) writes once the runs are done, beside the tables."""
    p.add_argument("--no-plot", dest="plot", action="store_false",
                   help="do not write the figures (RESULTS/figures, as `python -m benchmark plot` does) at the end")


def add_plan_flags(p) -> None:
    """The flags that plan the runs, shared by `run` and `launch` (which plans the same runs)."""
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
    p.add_argument("--mc-dropout-mask", choices=MC_DROPOUT_MASKS, default=None,
                   help="channel: one mask per feature channel (mmseg's Dropout2d); element: per channel and "
                        "pixel (default: preset's)")
    p.add_argument("--record-pixels", type=int, default=None,
                   help="pixels per image the uncertainty record samples (0: every pixel; default: preset's)")
    p.add_argument("--selection", default=None,
                   help="selector(s) turning scores into clicks, NAME[,NAME] (topn, pixelpick, spread; "
                        "default: preset's, topn); runs the cross product with --strategy")
    p.add_argument("--unit", default=None,
                   help="what a query asks for: pixel (a click), superpixel (a region's dominant class) or "
                        "pixel,superpixel (both, as separate leaderboard rows; default: preset's, pixel)")
    p.add_argument("--region-aggregation", choices=AGGREGATIONS, default=None,
                   help="pixel scores -> a superpixel's score: mean (default), max or topk_mean")
    p.add_argument("--budget", type=float, default=None,
                   help="cost units per image per cycle, for every unit (default: --pixels-per-image clicks)")
    p.add_argument("--void-clicks", choices=VOID_CLICK_MODES, default=None,
                   help="spend: a click on a void pixel costs budget (default); skip: void pixels are passed "
                        "over at no cost (an idealised annotator)")
    p.add_argument("--train-iters", type=int, default=None, help="training iterations per cycle")
    p.add_argument("--batch-size", type=int, default=None, help="images per training step and per GPU (rank)")
    p.add_argument("--gpus-per-run", type=int, default=1,
                   help="GPUs (DDP ranks) training one run; with run, start that many processes with torchrun")
    p.add_argument("--device", default="cpu", help="cpu, cuda, cuda:N or auto")
    p.add_argument("--amp", action="store_true", help="mixed precision training (CUDA)")
    p.add_argument("--retrain", choices=RETRAIN_MODES, default=RETRAIN_SCRATCH)
    p.add_argument("--oracle", choices=ORACLES, default=ORACLE_GROUND_TRUTH,
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


class OneLineParser(argparse.ArgumentParser):
    """argparse, but a bad command line is one ``error:`` line (exit 2) like every other mistake."""

    def error(self, message: str):
        raise UsageError(f"{self.prog}: {message} (see `{self.prog} --help`)")


def parse_plan_flags(command: str, argv: list[str]) -> argparse.Namespace:
    """The namespace `python -m benchmark COMMAND ARGV` gives (COMMAND: run or launch)."""
    parser = OneLineParser(prog=f"python -m benchmark {command}")
    {"run": add_run_flags, "launch": add_launch_flags}[command](parser)
    return parser.parse_args(argv)
