"""Peak memory of one pool acquisition (MC inference + scoring + selection), measured in a fresh
process so that nothing earlier in the suite inflates it:

    python -m benchmark.perf.memory --pool 200 --mc-samples 20 --height 96 --width 128

prints one JSON line. On the CPU: the growth of the peak resident set (VmHWM in /proc/self/status,
reset through /proc/self/clear_refs once the model is built) over the resident set at that point.
On CUDA: ``torch.cuda.max_memory_allocated`` over the memory allocated at that point.
"""
from __future__ import annotations

import argparse
import gc
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import torch


def _status_kib(field: str) -> int:
    text = Path("/proc/self/status").read_text()
    match = re.search(rf"^{field}:\s+(\d+)\s+kB", text, re.MULTILINE)
    if match is None:
        raise RuntimeError(f"/proc/self/status has no {field}: peak RSS needs Linux")
    return int(match.group(1))


def reset_peak_rss() -> None:
    Path("/proc/self/clear_refs").write_text("5")  # Linux >= 4.0: VmHWM := VmRSS


def measure(args) -> dict:
    from benchmark.cycle.acquisition import acquire
    from benchmark.data.label_store import LabelStore
    from benchmark.perf.fixtures import RandomPool, acquisition_spec, load_model
    from strategies import build_selector, build_strategy

    if args.threads:
        torch.set_num_threads(args.threads)
    model = load_model(args.model, args.classes, args.device)
    pool = RandomPool(args.pool, args.height, args.width)
    store = LabelStore(pool.shapes)
    strategy = build_strategy(args.strategy)
    spec = acquisition_spec(args.device, args.mc_samples, args.batch_size)
    gc.collect()
    cuda = torch.device(args.device).type == "cuda"
    if cuda:
        torch.cuda.synchronize(args.device)
        torch.cuda.reset_peak_memory_stats(args.device)
        base = torch.cuda.memory_allocated(args.device)
    else:
        reset_peak_rss()
        base = _status_kib("VmRSS") * 1024
    result = acquire(model, pool, store, strategy, build_selector("topn"), spec, cycle=1)
    if cuda:
        torch.cuda.synchronize(args.device)
        peak = torch.cuda.max_memory_allocated(args.device)
    else:
        peak = _status_kib("VmHWM") * 1024
    return dict(pool=args.pool, mc_samples=args.mc_samples, growth_bytes=peak - base,
                base_bytes=base, picked_images=len(result.picks),
                measure="cuda max_memory_allocated" if cuda else "VmHWM - VmRSS")


def run_in_subprocess(env_extra: dict | None = None, **options) -> dict:
    """Run ``measure`` in a fresh interpreter with ``options`` as flags; returns its JSON."""
    argv = [sys.executable, "-m", "benchmark.perf.memory"]
    for key, value in options.items():
        argv += [f"--{key.replace('_', '-')}", str(value)]
    root = Path(__file__).resolve().parents[2]
    env = dict(os.environ, **(env_extra or {}))
    proc = subprocess.run(argv, cwd=root, env=env, capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(f"memory measurement failed ({' '.join(argv[2:])}):\n{proc.stderr[-2000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmark.perf.memory", description=__doc__)
    parser.add_argument("--pool", type=int, required=True)
    parser.add_argument("--mc-samples", type=int, default=20)
    parser.add_argument("--height", type=int, default=96)
    parser.add_argument("--width", type=int, default=128)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--classes", type=int, default=11)
    parser.add_argument("--model", default="deeplabv3plus_tiny")
    parser.add_argument("--strategy", default="balent")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=0)
    args = parser.parse_args(argv)
    import warnings

    warnings.filterwarnings("ignore")
    print(json.dumps(measure(args)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
