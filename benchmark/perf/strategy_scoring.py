"""Scoring one image with every built-in strategy: the streaming path against a float64 reference.

    python -m benchmark.perf.strategy_scoring [--height 512 --width 1024 --classes 19
        --mc-samples 20 --repeats 3 --memory-m 5,40 --threads N --device cpu] [--tiny]

- streaming: the m MC samples (float32 [C, H, W], as the MC-dropout heads produce them) are fed
  to ``PosteriorAccumulator`` one at a time, each generated just before it is added and dropped
  after; then ``finalize()`` and ``strategy.score(post)``.
- reference: all m samples stacked into ``[m, C, H, W]``, converted to float64, and the method's
  formulas applied plainly to the full tensor (written out in ``scoring_reference.py``,
  independent of ``strategies/``): mean, unbiased variance, H and E, then the strategy's score.

Time: best of ``--repeats``; generating the samples is not timed. Peak memory: the growth of the
peak resident set (VmHWM, reset through /proc/self/clear_refs) over the resident set before the
samples are generated, in a fresh interpreter per measurement; it includes the samples held (one
at a time for streaming, all m for the reference). On CUDA: ``torch.cuda.max_memory_allocated``.
``max rel. diff`` compares the two paths' finite scores (float32 accumulation against float64);
near-zero scores (margin ties, tiny BALD under pbald's log) make it large without changing the
ranking, so ``top-1% overlap`` gives the share of the reference's top 1% of pixels that the
streaming path also ranks in its top 1%: what matters for selection.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import sys
import tempfile
from pathlib import Path

import torch

from benchmark.perf.scoring_measure import measure, measure_in_fresh_process, worker
from benchmark.perf.scoring_reference import REFERENCED

BUILTIN = list(REFERENCED)  # the strategies with an independent float64 reference
MIB = 2.0 ** 20
GOAL_SPEEDUP = 3.0


def max_relative_difference(a: torch.Tensor, b: torch.Tensor) -> float:
    """Largest |a - b| / |b| over pixels finite in both (inf when finiteness differs)."""
    a, b = a.double(), b.double()
    if not torch.equal(torch.isfinite(a), torch.isfinite(b)):
        return math.inf
    finite = torch.isfinite(b)
    if not bool(finite.any()):
        return 0.0
    diff = (a[finite] - b[finite]).abs() / b[finite].abs().clamp(min=1e-300)
    return float(diff.max())


def top_share_overlap(a: torch.Tensor, b: torch.Tensor, share: float = 0.01) -> float:
    """Share of ``b``'s top ``share`` of pixels that are also in ``a``'s (non-finite ranked last)."""
    def top(scores: torch.Tensor) -> set:
        flat = scores.double().reshape(-1)
        flat = torch.where(torch.isfinite(flat), flat, torch.full_like(flat, -math.inf))
        k = max(1, int(flat.numel() * share))
        return set(torch.topk(flat, k).indices.tolist())

    ref = top(b)
    return len(top(a) & ref) / len(ref)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m benchmark.perf.strategy_scoring",
                                     description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--height", type=int, default=512)
    parser.add_argument("--width", type=int, default=1024)
    parser.add_argument("--classes", type=int, default=19)
    parser.add_argument("--mc-samples", type=int, default=20, help="m for the timed comparison")
    parser.add_argument("--memory-m", default="5,40",
                        help="two values of m at which the streaming peak memory is compared")
    parser.add_argument("--repeats", type=int, default=3, help="timed runs per measurement (best)")
    parser.add_argument("--strategies", default=",".join(BUILTIN))
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: torch default)")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--in-process", action="store_true",
                        help="measure in this process (faster; peak memory only indicative)")
    parser.add_argument("--tiny", action="store_true",
                        help="smoke run: 32x48, C=5, m=4, memory at m=2,6, one repeat, in-process")
    parser.add_argument("--json", default=None, help="also write the figures to this JSON file")
    parser.add_argument("--check", action="store_true",
                        help="exit 1 unless streaming is >= 3x faster for every strategy")
    parser.add_argument("--worker", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.tiny:
        args.height, args.width, args.classes, args.mc_samples = 32, 48, 5, 4
        args.memory_m, args.repeats, args.in_process = "2,6", 1, True
    args.memory_m = [int(v) for v in args.memory_m.split(",")]
    args.strategies = [s.strip() for s in args.strategies.split(",") if s.strip()]
    if len(args.memory_m) != 2 or min(args.memory_m) < 1 or args.mc_samples < 2:
        parser.error("--memory-m takes two values >= 1 and --mc-samples must be >= 2")
    unknown = sorted(set(args.strategies) - set(BUILTIN))
    if unknown:
        parser.error(f"no float64 reference for {', '.join(unknown)}; choose from {BUILTIN}")
    return args


def run_all(args: argparse.Namespace, console) -> list[dict]:
    """Every measurement the table needs, one row of figures per strategy."""
    cfg = dict(height=args.height, width=args.width, classes=args.classes, device=args.device,
               repeats=args.repeats, threads=args.threads)
    rows = []
    with tempfile.TemporaryDirectory(prefix="strategy_scoring_") as tmp:
        def run(path, name, m, repeats=None):
            one = dict(cfg, repeats=repeats or cfg["repeats"])
            if args.in_process:
                return measure(path, name, m, one)
            return measure_in_fresh_process(path, name, m, one, Path(tmp))

        for name in args.strategies:
            console.log(f"measuring {name}")
            stream = run("streaming", name, args.mc_samples)
            ref = run("reference", name, args.mc_samples)
            low, high = (run("streaming", name, m, repeats=1) for m in args.memory_m)
            rows.append(dict(strategy=name, streaming_s=stream["seconds"],
                             reference_s=ref["seconds"], speedup=ref["seconds"] / stream["seconds"],
                             streaming_peak_mib=stream["peak_bytes"] / MIB,
                             reference_peak_mib=ref["peak_bytes"] / MIB,
                             peak_low_m_mib=low["peak_bytes"] / MIB,
                             peak_high_m_mib=high["peak_bytes"] / MIB,
                             max_rel_diff=max_relative_difference(stream["scores"], ref["scores"]),
                             top_overlap=top_share_overlap(stream["scores"], ref["scores"]),
                             streaming_times=stream["times"], reference_times=ref["times"]))
    return rows


def _mib(value: float) -> str:
    return f"{value:.1f}" if abs(value) < 10 else f"{value:.0f}"


def print_report(rows: list[dict], args: argparse.Namespace, console) -> bool:
    """The table and the verdict; True when both goals are met."""
    from rich import box
    from rich.table import Table

    low, high = args.memory_m
    table = Table(box=box.SIMPLE_HEAD, title=f"Scoring one {args.height}x{args.width} image, C = {args.classes}, "
                        f"m = {args.mc_samples} ({args.device}, {torch.get_num_threads()} threads, "
                        f"best of {args.repeats})")
    for column in ["strategy", "stream\ns", "ref\ns", "speed-\nup", "stream\npeak MiB",
                   "ref\npeak MiB", f"stream MiB\nm={low}", f"stream MiB\nm={high}",
                   "max rel\ndiff", "top-1%\noverlap"]:
        table.add_column(column, justify="left" if column == "strategy" else "right")
    for r in rows:
        table.add_row(r["strategy"], f"{r['streaming_s']:.3f}", f"{r['reference_s']:.3f}",
                      f"{r['speedup']:.1f}x", _mib(r["streaming_peak_mib"]),
                      _mib(r["reference_peak_mib"]), _mib(r["peak_low_m_mib"]),
                      _mib(r["peak_high_m_mib"]), f"{r['max_rel_diff']:.1e}",
                      f"{100 * r['top_overlap']:.1f}%")
    console.print(table)
    slow = [r["strategy"] for r in rows if r["speedup"] < GOAL_SPEEDUP]
    spread = max(abs(r["peak_high_m_mib"] - r["peak_low_m_mib"]) for r in rows)
    sample_mib = 4 * args.classes * args.height * args.width / MIB
    console.print(f"speed-up >= {GOAL_SPEEDUP:g}x: "
                  + (f"met for every strategy (min {min(r['speedup'] for r in rows):.1f}x)"
                     if not slow else f"NOT met for {', '.join(slow)}"))
    console.print(f"streaming peak memory, m={low} vs m={high}: largest difference "
                  f"{spread:.0f} MiB (one float32 sample is {sample_mib:.0f} MiB)")
    return not slow and spread < sample_mib


def _load_average() -> str:
    try:
        return " ".join(Path("/proc/loadavg").read_text().split()[:3])
    except OSError:
        return "n/a"


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.worker is not None:
        return worker(args.worker)
    from rich.console import Console

    console = Console() if sys.stdout.isatty() else Console(width=110)
    if args.threads:
        torch.set_num_threads(args.threads)
    console.print(f"torch {torch.__version__}, {os.cpu_count()} CPUs, load average "
                  f"{_load_average()} before")
    rows = run_all(args, console)
    console.print(f"load average {_load_average()} after")
    ok = print_report(rows, args, console)
    if args.json:
        Path(args.json).write_text(json.dumps(dict(args=vars(args), rows=rows), indent=1))
    return 1 if args.check and not ok else 0


if __name__ == "__main__":
    sys.exit(main())
