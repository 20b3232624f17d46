"""The verdicts of issue 27 in ``perf --gpu-check``: the harness's training against the peer and
against the issue's baseline, AMP's gain, BalEnt against BALD, runs per hour of 1 process against
N on one GPU, and the paper protocol's GPU-hours before and after.

- **Peer** (``benchmark.perf.peer_training``): the best plain PyTorch loop for the paper model,
  timed on the same synthetic images, crops, batch and iteration count as the harness's trainings.
- **Runs per hour** (``runs_per_hour``): the same short plan on the embedded default run by
  `benchmark run` with ``--workers 1`` and with ``--workers N`` (``auto`` on a GPU: the rule of
  ``benchmark.execution.gpu_sharing``), each in a fresh output folder; runs per hour are counted
  from the runs' own status.json (first start to last update), so neither command's start-up nor
  its preflight counts; both commands' tables (cycles.csv without its timing columns) are compared.
- **Before / after**: the protocol's GPU-hours at issue 27's measured H200 rates (``BASELINE``:
  training 3.58 iterations/s fp32, MC inference 0.047 s per image, BalEnt 49.7 ms and balent_ref
  48.0 ms per image; the other rates as measured now, where the issue gives none) and at the rates
  measured now (the faster of fp32 and AMP); and that divided by the paper preset's N
  (``paper_workers``, from its measured peak memory): a bound, reached only if N runs sharing the
  GPU do not slow each other (not measured on the paper preset: the check measures the gain on
  the embedded default only).
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

# issue 27's measurements on one H200 (the "before")
BASELINE = dict(train_its=3.58, amp_train_its=4.21, mc_seconds=0.047, scoring_seconds=dict(balent=0.0497, balent_ref=0.0480))
TRAINING_GOAL = 3.0      # x the baseline's iterations/s
PEER_GOAL = 0.9          # the harness within 10% of the peer
WORKERS_GOAL = 4.0       # x the runs per hour of one process on the embedded default
AMP_WIN = 1.1            # AMP "a measurable win": at least 10% more iterations/s than fp32

SHORT_PLAN = ["--strategy", "random,entropy,margin,bald", "--seeds", "0,1", "--cycles", "2", "--train-iters", "40",
              "--mc-samples", "5", "--no-supervised", "--map-images", "0", "--no-plot"]
TINY_PLAN = ["--strategy", "random", "--seeds", "0,1", "--cycles", "2", "--train-iters", "2", "--mc-samples", "2",
             "--pixels-per-image", "2", "--no-supervised", "--map-images", "0", "--no-plot"]


def peer(make_model, items, sizes, device, on_gpu: bool) -> dict:
    """The peer's iterations/s on the check's images, crops, batch and iterations (bf16 on a GPU)."""
    from benchmark.perf import peer_training
    from benchmark.perf.paper_protocol import paper_preset

    preset = paper_preset()
    workers = int(preset.data.get("num_workers", 4)) if on_gpu else 2
    return peer_training.peer_rate(make_model, items, sizes.crop, sizes.batch, sizes.iters, device, amp=on_gpu,
                                   workers=workers, optimizer_cfg=dict(preset.schedule.optimizer),
                                   warm_up=3 if on_gpu else 1)


def _span_seconds(out: Path) -> tuple[int, float]:
    """(runs, seconds from the first run's start to the last run's last update) from status.json."""
    starts, ends = [], []
    for status in (out / "runs").glob("*/status.json"):
        data = json.loads(status.read_text())
        starts.append(datetime.fromisoformat(data["started"]))
        ends.append(datetime.fromisoformat(data["updated"]))
    if not starts:
        return 0, float("nan")
    return len(starts), max((max(ends) - min(starts)).total_seconds(), 1.0)


def _run(plan: list[str], device: str, workers: str, out: Path, timeout: float) -> dict:
    command = [sys.executable, "-m", "benchmark", "run", *plan, "--device", device, "--workers", workers,
               "--out", str(out)]
    start = time.perf_counter()
    proc = subprocess.run(command, capture_output=True, text=True, timeout=timeout,
                          env=dict(os.environ, PYTHONUNBUFFERED="1"))
    wall = time.perf_counter() - start
    if proc.returncode != 0:
        tail = (proc.stderr.strip().splitlines() or ["(no output)"])[-1]
        raise RuntimeError(f"`benchmark run --workers {workers}` failed: {tail}")
    runs, span = _span_seconds(out)
    count, auto = workers_in(proc.stdout)
    return dict(workers=count, runs=runs, span_seconds=span, wall_seconds=wall,
                runs_per_hour=runs * 3600 / span, auto_line=auto)


def workers_in(stdout: str) -> tuple[int, str | None]:
    """How many worker processes a `benchmark run` said it used (1 when it said nothing: in
    process), and its ``--workers auto`` line on a GPU, if any."""
    count, auto = 1, None
    for line in stdout.splitlines():
        words = line.split()
        if "worker" in words and "processes," in words and "in" in words:
            count = int(words[words.index("worker") - 1])
        if "--workers auto on the GPU" in line:
            auto = line.strip()
    return count, auto


def _tables(out: Path):
    import pandas as pd

    from benchmark.records.schema import TIMING_COLUMNS

    frame = pd.read_csv(out / "cycles.csv")
    return frame.drop(columns=[c for c in TIMING_COLUMNS if c in frame.columns]).sort_values(
        list(frame.columns[:3])).reset_index(drop=True)


def runs_per_hour(device: str, tiny: bool, timeout: float = 240) -> dict:
    """The short plan with 1 worker and with N (auto on a GPU, 2 on the CPU): runs per hour of
    each, the ratio, and whether the tables are identical."""
    plan = TINY_PLAN if tiny else SHORT_PLAN
    many = "auto" if device.startswith("cuda") else "2"
    with tempfile.TemporaryDirectory(prefix="gpu-check-workers-") as work:
        one = _run(plan, device, "1", Path(work) / "one", timeout)
        several = _run(plan, device, many, Path(work) / "several", timeout)
        identical = bool(_tables(Path(work) / "one").equals(_tables(Path(work) / "several")))
    return dict(plan=" ".join(plan), one=one, several=several, ratio=several["runs_per_hour"] / one["runs_per_hour"],
                tables_identical=identical)


def paper_workers(peak_gib: float | None, total_gib: float | None, cores: int, runs: int) -> int:
    """How many paper-preset runs ``--workers auto`` would put on this GPU, from the check's
    measured training peak (the rule of ``benchmark.execution.gpu_sharing``)."""
    from benchmark.execution.gpu_sharing import GIB, workers_for_memory

    if not peak_gib or not total_gib:
        return 1
    return workers_for_memory(int(total_gib * GIB), int(peak_gib * GIB), runs, cores)


def verdicts(out: dict) -> dict:
    """Every ratio of issue 27 from the check's numbers, and the GPU-hours before and after."""
    from benchmark.perf.paper_protocol import Protocol, protocol_estimate

    trainings = out["trainings"]
    harness_fp32 = trainings["fp32"]["iterations_per_second"]
    harness_amp = trainings["amp"]["iterations_per_second"]
    best_name = "amp" if harness_amp > harness_fp32 else "fp32"
    best = max(harness_fp32, harness_amp)
    peer_its = out["peer"]["iterations_per_second"]
    protocol = Protocol(**{k: tuple(v) if k == "strategies" else v for k, v in out["protocol"].items()})
    before_scoring = dict(out["scoring_seconds"], **BASELINE["scoring_seconds"])
    before = protocol_estimate(protocol, BASELINE["train_its"], out["forward_seconds"], BASELINE["mc_seconds"],
                               before_scoring)
    after = protocol_estimate(protocol, best, out["forward_seconds"], out["mc_seconds"], out["scoring_seconds"])
    sharing = out.get("paper_workers", 1)
    balent = out["balent"]["throughput"]
    workers = out.get("workers")
    return dict(
        harness_vs_peer=best / peer_its, harness_vs_baseline=best / BASELINE["train_its"], best_precision=best_name,
        amp_vs_fp32=harness_amp / harness_fp32, amp_win=harness_amp / harness_fp32 >= AMP_WIN,
        balent_vs_bald=balent["ratio_score"], balent_vs_bald_with_selection=balent["ratio_score_and_select"],
        workers_ratio=None if workers is None else workers["ratio"],
        gpu_hours_before=before["total_hours"], gpu_hours_after=after["total_hours"],
        gpu_hours_after_shared=after["total_hours"] / sharing, paper_workers=sharing)


def print_verdicts(console, out: dict, tiny: bool) -> None:
    v = out["verdicts"]
    peer_row = out["peer"]
    label = "tiny sizes: these ratios say nothing about a GPU" if tiny else "issue 27's goals"
    console.print(f"[bold]verdicts[/bold] ({label}):")
    console.print(f"  training: harness {v['best_precision']} at {v['harness_vs_peer']:.2f}x the peer's "
                  f"{peer_row['iterations_per_second']:.2f} it/s (plain PyTorch: {'bf16 autocast, ' if peer_row['amp'] else ''}"
                  f"channels_last, cudnn.benchmark, {peer_row['workers']} loader workers, pinned, non_blocking; goal >= "
                  f"{PEER_GOAL}) and {v['harness_vs_baseline']:.2f}x issue 27's {BASELINE['train_its']} it/s "
                  f"(goal >= {TRAINING_GOAL})")
    console.print(f"  AMP: {v['amp_vs_fp32']:.2f}x fp32's iterations/s: "
                  + ("a measurable win" if v["amp_win"] else f"NOT a measurable win (< {AMP_WIN}x): see the README's "
                     "Performance section for why"))
    console.print(f"  BalEnt: {100 * v['balent_vs_bald']:.1f}% of BALD's scoring throughput, "
                  f"{100 * v['balent_vs_bald_with_selection']:.1f}% with the topn selection (goal >= 25%)")
    w = out.get("workers")
    if w is not None:
        console.print(f"  runs on one device: {w['several']['workers']} processes give {w['ratio']:.2f}x the runs per "
                      f"hour of 1 ({w['several']['runs_per_hour']:.0f} against {w['one']['runs_per_hour']:.0f}; "
                      f"plan: {w['plan']}; goal >= {WORKERS_GOAL}); tables "
                      f"{'identical' if w['tables_identical'] else 'DIFFERENT'}"
                      + (f"; {w['several']['auto_line']}" if w["several"]["auto_line"] else ""))
    console.print(f"  paper presets: --workers auto would run {v['paper_workers']} at once on this device "
                  f"(measured training peak)")
    console.print(f"  paper protocol GPU-hours: {v['gpu_hours_before']:.1f} at issue 27's rates (3.58 it/s fp32, "
                  f"0.047 s MC per image, BalEnt 49.7 ms) -> {v['gpu_hours_after']:.1f} at the rates measured now"
                  f" -> {v['gpu_hours_after_shared']:.1f} with {v['paper_workers']} runs sharing the GPU (a bound: "
                  "assumes they do not slow each other; not measured on the paper preset)"
                  + (" (tiny sizes: not Cityscapes' numbers)" if tiny else ""))
