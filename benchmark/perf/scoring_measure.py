"""One measurement of the strategy-scoring benchmark: time (best of n) and peak memory growth of
scoring one image along the streaming path or the float64 reference, in this process or in a
fresh interpreter (whose peak memory nothing earlier inflated)."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import torch

from benchmark.perf.memory import _status_kib, reset_peak_rss
from benchmark.perf.scoring_reference import Samples, reference_scores

ROOT = Path(__file__).resolve().parents[2]


def _status_bytes(field: str) -> int:
    return 1024 * _status_kib(field)  # the one /proc/self/status reader: benchmark/perf/memory.py


class PeakMemory:
    """Peak memory growth from ``start()`` to ``peak()``: VmHWM on the CPU, CUDA allocator stats."""

    def __init__(self, device: str) -> None:
        self.cuda = torch.device(device).type == "cuda"
        self.base = 0

    def start(self) -> None:
        if self.cuda:
            torch.cuda.synchronize()
            torch.cuda.reset_peak_memory_stats()
            self.base = torch.cuda.memory_allocated()
            return
        try:
            reset_peak_rss()
            self.base = _status_bytes("VmRSS")
        except OSError:  # no reset: the growth over the earlier peak (an underestimate)
            self.base = _status_bytes("VmHWM")

    def peak(self) -> int:
        if self.cuda:
            torch.cuda.synchronize()
            return torch.cuda.max_memory_allocated() - self.base
        return max(0, _status_bytes("VmHWM") - self.base)


def _sync(device: str) -> None:
    if torch.device(device).type == "cuda":
        torch.cuda.synchronize()


def _streaming(name: str, samples: Samples, m: int, device: str) -> tuple[float, torch.Tensor]:
    from strategies import PosteriorAccumulator, build_strategy

    strategy = build_strategy(name)
    acc, seconds = PosteriorAccumulator(), 0.0
    for k in range(m):
        p = samples(k)  # generated outside the timed region
        _sync(device)
        start = time.perf_counter()
        acc.add(p)
        _sync(device)
        seconds += time.perf_counter() - start
        del p
    start = time.perf_counter()
    scores = strategy.score(acc.finalize(), generator=torch.Generator().manual_seed(0))
    _sync(device)
    return seconds + time.perf_counter() - start, scores


def _reference(name: str, probs: torch.Tensor, device: str) -> tuple[float, torch.Tensor]:
    _sync(device)
    start = time.perf_counter()
    scores = reference_scores(name, probs, torch.Generator().manual_seed(0))
    _sync(device)
    return time.perf_counter() - start, scores


def measure(path: str, name: str, m: int, cfg: dict) -> dict:
    """Best time of ``cfg["repeats"]`` runs and the peak memory growth of one (path, strategy)."""
    samples = Samples(cfg["classes"], cfg["height"], cfg["width"], cfg["device"])
    warm = Samples(cfg["classes"], 8, 8, cfg["device"])  # first-call allocations not counted
    _streaming(name, warm, 2, cfg["device"])
    _reference(name, torch.stack([warm(0), warm(1)]), cfg["device"])
    memory = PeakMemory(cfg["device"])
    memory.start()
    times, scores = [], None
    probs = torch.stack([samples(k) for k in range(m)]) if path == "reference" else None
    for _ in range(cfg["repeats"]):
        seconds, scores = (_streaming(name, samples, m, cfg["device"]) if path == "streaming"
                           else _reference(name, probs, cfg["device"]))
        times.append(seconds)
    return dict(path=path, strategy=name, m=m, seconds=min(times), times=times,
                peak_bytes=memory.peak(), scores=scores.cpu())


def measure_in_fresh_process(path: str, name: str, m: int, cfg: dict, scratch: Path) -> dict:
    """``measure`` in a new interpreter (its peak memory is not inflated by anything earlier)."""
    out = scratch / f"{path}_{name}_{m}.pt"
    job = json.dumps(dict(path=path, strategy=name, m=m, cfg=cfg, out=str(out)))
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(
        [str(ROOT)] + [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]))
    proc = subprocess.run([sys.executable, "-m", "benchmark.perf.strategy_scoring", "--worker", job],
                          cwd=ROOT, env=env, capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(f"measurement {path}/{name}/m={m} failed:\n{proc.stderr[-3000:]}")
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    result["scores"] = torch.load(out)
    return result


def worker(job_text: str) -> int:
    """The fresh interpreter's side of ``measure_in_fresh_process``: measure, save, report."""
    job = json.loads(job_text)
    if job["cfg"]["threads"]:
        torch.set_num_threads(job["cfg"]["threads"])
    result = measure(job["path"], job["strategy"], job["m"], job["cfg"])
    torch.save(result.pop("scores"), job["out"])
    print(json.dumps(result))
    return 0
