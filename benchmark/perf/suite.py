"""The performance suite: `python -m benchmark perf [--tiny] [--device cpu|cuda] ...`.

Prints, in one run and on one machine:
  1. last-layer MC dropout vs full-network MC dropout (time, speed-up; 1b: one MC sample's stages
     against the copy bandwidth),
  2. pool scoring throughput per strategy (pixels/s; bytes read as a share of copy bandwidth),
  3. peak memory of a pool acquisition for two pool sizes and two m (fresh process each),
  4. the time breakdown of one default cycle through the harness's own functions,
  5. training throughput: the harness's iteration against a plain mmengine Runner's, its stages,
     and the levers that change it,
  6. one cycle's acquisition on a CamVid-sized pool per strategy,
  7. BADGE's gradient embeddings factorised against explicit (memory, time, same picks), and the
     per-image cost of the feature-based strategies.
Timings are medians of --repeats runs; nothing here asserts a timing. A cost derived by subtracting
two timings (a per-iteration time, "the rest" of an iteration) prints "too fast to estimate" when
the difference is not positive (``benchmark.perf.estimates``). ``--json FILE`` also writes every
measured number (such an estimate as null): what the tests check.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

import torch
from rich.console import Console
from rich.table import Table

from benchmark.errors import UsageError

TINY = dict(repeats=1, mc_samples=4, batch_size=2, height=32, width=32, score_size=32, score_images=4,
            score_distinct=2, memory_pools="2,6", memory_m="2,4", cycle_iters=2, cycle_mc_samples=2,
            bandwidth_mib=32, models="deeplabv3plus_tiny", threads=1, badge_size="512,5,16", badge_k=8,
            diversity_image=32, diversity_dim=8, diversity_labelled=64)
FULL = dict(repeats=5, mc_samples=20, batch_size=8, height=96, width=128, score_size=256, score_images=32,
            score_distinct=8, memory_pools="10,200", memory_m="5,40", cycle_iters=0, cycle_mc_samples=0,
            bandwidth_mib=512, models="deeplabv3plus_tiny,fpn_tiny", threads=0, badge_size="20000,19,256",
            badge_k=32, diversity_image=512, diversity_dim=128, diversity_labelled=20000)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m benchmark perf", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--device", default="cpu", help="cpu or cuda[:N]")
    p.add_argument("--tiny", action="store_true", help="tiny sizes: a smoke test in well under a minute")
    p.add_argument("--sections", default="1,2,3,4,5,6,7", help="which sections to run, e.g. 1,3")
    p.add_argument("--threads", type=int, help="torch intra-op threads (default: torch's; 1 with --tiny)")
    p.add_argument("--repeats", type=int, help="timed repetitions per measurement (median reported)")
    p.add_argument("--mc-samples", type=int, help="m for sections 1-3")
    p.add_argument("--models", help="mmseg_configs/models names for section 1, comma-separated")
    p.add_argument("--classes", type=int, default=11, help="classes (11 = the embedded dataset)")
    p.add_argument("--batch-size", type=int, help="images per batch in sections 1 and 3")
    p.add_argument("--height", type=int, help="image height in sections 1 and 3")
    p.add_argument("--width", type=int, help="image width in sections 1 and 3")
    p.add_argument("--score-size", type=int, help="posterior side in section 2")
    p.add_argument("--score-images", type=int, help="pool size scored in section 2")
    p.add_argument("--score-distinct", type=int, help="distinct posteriors cycled through in section 2")
    p.add_argument("--pixels-per-image", type=int, default=5, help="n picked per image")
    p.add_argument("--memory-pools", help="two pool sizes for section 3, e.g. 10,200")
    p.add_argument("--memory-m", help="two m for section 3, e.g. 5,40")
    p.add_argument("--memory-strategy", default="balent")
    p.add_argument("--cycle-iters", type=int, help="training iterations in section 4 (0: the preset's)")
    p.add_argument("--cycle-mc-samples", type=int, help="m in section 4 (0: the preset's)")
    p.add_argument("--strategy", default="balent", help="strategy of section 4's cycle")
    p.add_argument("--pool-mc-samples", type=int, help="m in section 6 (default 10, 3 with --tiny)")
    p.add_argument("--pool-record-pixels", type=int, default=4096,
                   help="pixels per image the sampled uncertainty record draws in section 6")
    p.add_argument("--bandwidth-mib", type=int, help="size of the copy that measures bandwidth")
    p.add_argument("--badge-size", help="n,C,d of section 7's BADGE comparison, e.g. 20000,19,256")
    p.add_argument("--badge-k", type=int, help="k-means++ picks in section 7")
    p.add_argument("--diversity-image", type=int, help="image side of section 7b")
    p.add_argument("--diversity-dim", type=int, help="feature dimension d of section 7b")
    p.add_argument("--diversity-labelled", type=int, help="labelled feature vectors of section 7b's pool")
    p.add_argument("--gpu-check", action="store_true",
                   help="on one GPU, under 5 minutes: a paper-scale cycle's pieces with and without AMP, every "
                        "strategy's scoring, peak memory, CUDA-vs-CPU agreement (see benchmark/perf/gpu_check.py)")
    p.add_argument("--gpu-check-device", default="cuda", help=argparse.SUPPRESS)  # cpu: the tests' tiny run
    p.add_argument("--profile", action="store_true", help="also print torch.profiler's top operators "
                   "of the last-layer MC path and of each strategy's scoring")
    p.add_argument("--json", metavar="PATH", help="also write every measured number to PATH (JSON; an "
                   "estimate too fast to make is null)")
    return p


def parse_args(argv) -> argparse.Namespace:
    if argv[:1] == ["--"]:  # `python -m benchmark perf -- --tiny`
        argv = argv[1:]
    args = build_parser().parse_args(argv)
    for key, value in (TINY if args.tiny else FULL).items():
        if getattr(args, key) is None:
            setattr(args, key, value)
    args.models = [m.strip() for m in args.models.split(",") if m.strip()]
    args.sections = {int(s) for s in args.sections.split(",") if s.strip()}
    args.memory_pools = [int(v) for v in args.memory_pools.split(",")]
    args.memory_m = [int(v) for v in args.memory_m.split(",")]
    args.badge_size = parse_badge_size(args.badge_size)
    if args.device.startswith("cuda") and not torch.cuda.is_available() and not args.gpu_check:
        raise UsageError("--device cuda was asked for but torch sees no CUDA GPU: use --device cpu")
    if args.device != "cpu" and not args.device.startswith("cuda"):
        raise UsageError(f"unknown device {args.device!r}: use cpu or cuda[:N]")
    if args.threads:
        torch.set_num_threads(args.threads)
    return args


def parse_badge_size(text: str) -> tuple[int, int, int]:
    try:
        n, classes, dim = (int(v) for v in str(text).split(","))
    except ValueError:
        raise UsageError(f"--badge-size takes n,C,d such as 20000,19,256; got {text!r}") from None
    if min(n, classes, dim) < 1:
        raise UsageError(f"--badge-size takes positive n,C,d such as 20000,19,256; got {text!r}")
    return n, classes, dim


def _memory_runs(args) -> list[tuple[int, int]]:
    base_pool, m = args.memory_pools[0], args.mc_samples
    runs = [(pool, m) for pool in args.memory_pools] + [(base_pool, mm) for mm in args.memory_m]
    return list(dict.fromkeys(runs))


def section_memory(args, console) -> dict:
    from benchmark.perf.memory import run_in_subprocess

    cuda = torch.device(args.device).type == "cuda"
    common = dict(height=args.height, width=args.width, batch_size=args.batch_size, classes=args.classes,
                  model=args.models[0], strategy=args.memory_strategy, device=args.device,
                  threads=torch.get_num_threads())
    variants = {"growth": {}} if (cuda or args.tiny) else {"growth": {}, "mmap threshold 16 KiB": {}}
    results = {}
    for pool, m in _memory_runs(args):
        results[pool, m] = run_in_subprocess(pool=pool, mc_samples=m, **common)["growth_bytes"]
        if "mmap threshold 16 KiB" in variants:
            variants["mmap threshold 16 KiB"][pool, m] = run_in_subprocess(
                env_extra=dict(MALLOC_MMAP_THRESHOLD_="16384"), pool=pool, mc_samples=m,
                **common)["growth_bytes"]
    variants["growth"] = results
    measure = "torch.cuda.max_memory_allocated growth" if cuda else "peak RSS growth (VmHWM - VmRSS)"
    console.print(f"3. Peak memory of one pool acquisition in a fresh process each: {measure}; strategy "
                  f"{args.memory_strategy}, {args.models[0]}, {args.height}x{args.width}, batches of "
                  f"{args.batch_size}")
    table = Table(title="3. Peak memory", min_width=60)
    table.add_column("pool images")
    table.add_column("m")
    for name in variants:
        table.add_column("MiB" if name == "growth" else f"MiB, {name}", justify="right")
    for key in results:
        table.add_row(str(key[0]), str(key[1]), *(f"{v[key] / 2**20:.1f}" for v in variants.values()))
    pools = [(p, args.mc_samples) for p in args.memory_pools]
    ms = [(args.memory_pools[0], m) for m in args.memory_m]
    ratios = {}
    for label, (a, b) in ((f"pool {pools[1][0]} / pool {pools[0][0]}", pools),
                          (f"m {ms[1][1]} / m {ms[0][1]}", ms)):
        ratios[label] = {name: v[b] / max(v[a], 1) for name, v in variants.items()}
        table.add_row(label, "ratio", *(f"{r:.3f}" for r in ratios[label].values()))
    table.caption = ("goal: ratios within 1.10. With glibc's defaults the freed tensors of earlier "
                     "batches leave a fragmented heap that RSS keeps counting; with every allocation "
                     "over 16 KiB served by mmap (MALLOC_MMAP_THRESHOLD_=16384) and returned on "
                     "free, RSS is what the code holds.") if len(variants) > 1 else "goal: ratios within 1.10"
    console.print(table)
    return dict(measure=measure, growth_bytes={name: [dict(pool=p, m=m, bytes=v[p, m]) for p, m in v]
                                               for name, v in variants.items()}, ratios=ratios)


def _console() -> Console:
    return Console(width=None if os.isatty(1) else 160, highlight=False)


def write_json(path: str | None, results: dict) -> None:
    """``results`` as JSON at ``path`` (nothing without one); tensors' and numpy's scalars as numbers."""
    if path:
        Path(path).write_text(json.dumps(results, indent=1, default=lambda o: o.item() if hasattr(o, "item")
                                         else str(o)) + "\n")


def run_sections(args, console) -> dict:
    """Every asked-for section, printed; returns their measured numbers by section."""
    from benchmark.perf.fixtures import copy_bandwidth, machine_line, register_mmseg

    register_mmseg()
    console.rule("benchmark perf" + (" --tiny" if args.tiny else ""))
    machine = machine_line(args.device)
    console.print(f"machine: {machine}")
    bandwidth = copy_bandwidth(args.device, args.bandwidth_mib * 2**20, max(args.repeats, 3))
    console.print(f"copy bandwidth ({args.bandwidth_mib} MiB tensor copy, read + write counted): "
                  f"{bandwidth / 1e9:.1f} GB/s")
    sections: dict = {}
    if 1 in args.sections:
        from benchmark.perf.mc_speed import section_mc

        sections["1"] = section_mc(args, console, bandwidth)
    if 2 in args.sections:
        from benchmark.perf.pool_throughput import section_throughput

        sections["2"] = section_throughput(args, console, bandwidth)
    if 3 in args.sections:
        sections["3"] = section_memory(args, console)
    if 4 in args.sections:
        from benchmark.perf.cycle import section_cycle

        sections["4"] = section_cycle(args, console)
    if 5 in args.sections:
        from benchmark.perf.training import section_training

        sections["5"] = section_training(args, console)
    if 6 in args.sections:
        from benchmark.perf.real_pool import section_real_pool

        sections["6"] = section_real_pool(args, console)
    if 7 in args.sections:
        from benchmark.perf.diversity import section_diversity

        sections["7"] = section_diversity(args, console)
    if args.profile:
        from benchmark.perf.profiling import print_profiles

        print_profiles(args, console)
    return dict(machine=machine, device=args.device, copy_bandwidth=bandwidth, sections=sections)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(list(argv or []))
    if args.gpu_check:
        from benchmark.perf.gpu_check import gpu_check

        results = gpu_check(_console(), args.gpu_check_device, tiny=args.gpu_check_device == "cpu")
    else:
        results = run_sections(args, _console())
    write_json(args.json, results)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
