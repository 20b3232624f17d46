"""``python -m benchmark perf --gpu-check``: the first thing to run on a GPU (under 5 minutes).

On a Cityscapes-sized synthetic pool (19 classes, 1024x2048, a few dozen images) and the paper's
DeepLabV3+ MobileNetV2 (random weights), it measures one paper-scale cycle's pieces on CUDA:
training iterations/s on 512x1024 crops with and without AMP, last-layer MC dropout over the pool,
every strategy's scoring (BalEnt's float64 special functions included), the peak GPU memory of
each, and whether the CUDA scores agree with the CPU's on a few images (top-1% overlap, largest
relative difference). Without CUDA it says so in one line and exits 2.

``--gpu-check-device cpu`` runs the same code on the CPU at tiny sizes (what the tests do).
"""
from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
import torch
from rich.table import Table

from benchmark.errors import UsageError


@dataclass(frozen=True)
class Sizes:
    images: int
    height: int
    width: int
    crop: tuple[int, int]
    iters: int
    batch: int
    mc_samples: int
    agree_images: int


FULL = Sizes(images=24, height=1024, width=2048, crop=(512, 1024), iters=30, batch=8, mc_samples=20, agree_images=2)
TINY = Sizes(images=4, height=64, width=128, crop=(32, 64), iters=2, batch=2, mc_samples=3, agree_images=1)
CLASSES = 19
BUILTINS = ("random", "entropy", "margin", "bald", "pbald", "balent", "balent_ref")


def synthetic_items(sizes: Sizes, seed: int = 0) -> list[dict]:
    """Images with blocky labels of 19 classes whose colours follow the labels (learnable)."""
    rng = np.random.default_rng(seed)
    palette = rng.integers(0, 256, (CLASSES, 3))
    items = []
    for _ in range(sizes.images):
        cells = rng.integers(0, CLASSES, (sizes.height // 32 + 1, sizes.width // 32 + 1))
        label = np.kron(cells, np.ones((32, 32), dtype=np.int64))[:sizes.height, :sizes.width].astype(np.uint8)
        image = np.clip(palette[label] + rng.normal(0, 20, label.shape + (3,)), 0, 255).astype(np.uint8)
        items.append(dict(img=image, gt_seg_map=label, seg_fields=["gt_seg_map"], reduce_zero_label=False))
    return items


def loaders(items, sizes: Sizes):
    from mmengine.dataset import InfiniteSampler, pseudo_collate
    from torch.utils.data import DataLoader

    from benchmark.data.run_data import ItemDataset

    meta = dict(classes=tuple(str(c) for c in range(CLASSES)))
    train = ItemDataset(items, [dict(type="LoadImageFromNDArray"),
                                dict(type="RandomCrop", crop_size=sizes.crop),
                                dict(type="PackSegInputs")], meta)
    pool = ItemDataset([{k: v for k, v in item.items() if k != "seg_fields"} for item in items],
                       [dict(type="LoadImageFromNDArray"), dict(type="PackSegInputs")], meta)
    return (DataLoader(train, batch_size=sizes.batch, sampler=InfiniteSampler(train, seed=0),
                       collate_fn=pseudo_collate),
            DataLoader(pool, batch_size=2, collate_fn=pseudo_collate))


def _peak(device) -> str:
    if torch.device(device).type != "cuda":
        return "n/a (CPU)"
    return f"{torch.cuda.max_memory_allocated(device) / 2**30:.2f}"


def _reset(device) -> None:
    if torch.device(device).type == "cuda":
        torch.cuda.synchronize(device)
        torch.cuda.reset_peak_memory_stats(device)


def train_rate(model, loader, sizes: Sizes, amp: bool, device) -> tuple[float, str]:
    """(iterations/s after one warm-up iteration, peak GiB) of the harness's training loop."""
    import tempfile
    from pathlib import Path

    from benchmark.config.presets import PRESET_DIR, load_preset
    from benchmark.model.segmentor import train_one_cycle
    from benchmark.runtime.timing import synchronize

    schedule = load_preset(PRESET_DIR / "cityscapes_deeplabv3plus.py").schedule
    with tempfile.TemporaryDirectory(prefix="gpu-check-") as work:
        train_one_cycle(model, loader, schedule, 1, Path(work) / "warmup", 0, amp)
        _reset(device)
        start = time.perf_counter()
        train_one_cycle(model, loader, schedule, sizes.iters, Path(work) / "timed", 0, amp)
        synchronize(device)
    return sizes.iters / (time.perf_counter() - start), _peak(device)


def mc_and_scores(model, pool, sizes: Sizes, device):
    """Seconds per image of last-layer MC, ms per image of each strategy's scoring, peak GiB, and
    the posteriors of the first images (for the agreement check)."""
    from benchmark.model.mc_dropout import mc_posteriors
    from benchmark.runtime.timing import synchronize
    from strategies import build_strategy

    strategies = {name: build_strategy(name) for name in BUILTINS}
    mc_seconds, scoring, kept = 0.0, dict.fromkeys(BUILTINS, 0.0), []
    _reset(device)
    for index, batch in enumerate(pool):
        start = time.perf_counter()
        posts = mc_posteriors(model, batch, sizes.mc_samples, torch.Generator().manual_seed(index))
        synchronize(device)
        mc_seconds += time.perf_counter() - start
        for post in posts:
            for name, strategy in strategies.items():
                start = time.perf_counter()
                strategy.score(post, generator=torch.Generator().manual_seed(0))
                synchronize(device)
                scoring[name] += time.perf_counter() - start
            if len(kept) < sizes.agree_images:
                kept.append(post)
    n = sizes.images
    return mc_seconds / n, {k: 1e3 * v / n for k, v in scoring.items()}, _peak(device), kept


def agreement(posts, device) -> dict:
    """Per strategy: top-1% overlap and largest relative difference of the finite scores, CUDA vs CPU."""
    from strategies import PixelPosterior, build_strategy

    out = {}
    for name in BUILTINS:
        overlaps, diffs = [], []
        for post in posts:
            cpu = PixelPosterior(mean=post.mean.cpu(), variance=post.variance.cpu(),
                                 predictive_entropy=post.predictive_entropy.cpu(),
                                 expected_entropy=post.expected_entropy.cpu(), m=post.m)
            a = build_strategy(name).score(post, generator=torch.Generator().manual_seed(0)).cpu()
            b = build_strategy(name).score(cpu, generator=torch.Generator().manual_seed(0))
            k = max(1, a.numel() // 100)
            top_a = set(torch.topk(a.reshape(-1).nan_to_num(neginf=-1e300), k).indices.tolist())
            top_b = set(torch.topk(b.reshape(-1).nan_to_num(neginf=-1e300), k).indices.tolist())
            overlaps.append(len(top_a & top_b) / k)
            finite = torch.isfinite(a) & torch.isfinite(b)
            rel = ((a - b).abs() / b.abs().clamp(min=1e-12))[finite]
            diffs.append(float(rel.max()) if rel.numel() else 0.0)
        out[name] = (min(overlaps), max(diffs))
    return out


def gpu_check(console, device: str = "cuda", tiny: bool = False) -> int:
    from benchmark.perf.fixtures import load_model, machine_line, register_mmseg

    if torch.device(device).type == "cuda" and not torch.cuda.is_available():
        raise UsageError("--gpu-check needs a CUDA GPU and torch sees none: run it on a machine with one "
                         "(and a CUDA build of torch)")
    sizes = TINY if tiny else FULL
    register_mmseg()
    console.print(f"GPU check: {machine_line(device)}; {sizes.images} synthetic images of {sizes.height}x"
                  f"{sizes.width}, {CLASSES} classes; DeepLabV3+ MobileNetV2 (paper preset model, random weights)")
    items = synthetic_items(sizes)
    train_loader, pool = loaders(items, sizes)
    table = Table(title="GPU check: one paper-scale cycle's pieces")
    for column in ("measure", "value", "peak GPU memory (GiB)"):
        table.add_column(column, justify="left" if column == "measure" else "right")
    for amp in (False, True):
        if amp and torch.device(device).type != "cuda":
            continue  # mmengine's AmpOptimWrapper is a CUDA feature
        model = load_model("deeplabv3plus_mobilenetv2", CLASSES, device)
        rate, peak = train_rate(model, train_loader, sizes, amp, device)
        table.add_row(f"training, crops {sizes.crop[0]}x{sizes.crop[1]}, batch {sizes.batch}"
                      f"{', AMP' if amp else ''} (iterations/s)", f"{rate:.2f}", peak)
    mc_seconds, scoring, peak, kept = mc_and_scores(model, pool, sizes, device)
    table.add_row(f"last-layer MC dropout, m = {sizes.mc_samples} (s per image)", f"{mc_seconds:.3f}", peak)
    for name, ms in scoring.items():
        table.add_row(f"scoring: {name} (ms per image)", f"{ms:.1f}", "")
    console.print(table)
    agree = Table(title=f"CUDA vs CPU scores on {len(kept)} image(s)")
    for column in ("strategy", "top-1% overlap", "max relative difference"):
        agree.add_column(column, justify="left" if column == "strategy" else "right")
    for name, (overlap, diff) in agreement(kept, device).items():
        agree.add_row(name, f"{100 * overlap:.1f}%", f"{diff:.1e}")
    console.print(agree)
    return 0
