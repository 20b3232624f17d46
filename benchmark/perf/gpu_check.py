"""``python -m benchmark perf --gpu-check``: the first thing to run on a GPU (a few minutes).

On a Cityscapes-sized synthetic pool (the Cityscapes preset's classes, image size, crops, batch
and m; a few dozen images) and the paper's DeepLabV3+ MobileNetV2 (random weights), it measures
one paper-scale cycle's pieces on the device:

- training iterations/s on the preset's crops, in fp32 and with AMP: per precision a fresh model,
  a warm-up training and a timed one, each with a loader (and InfiniteSampler) of its own. An
  InfiniteSampler is one generator for its whole life: a loader feeds one Runner, and once that
  Runner's data iterator is closed the same loader yields nothing. The previous Runner is
  collected before each training (``release``), so a loader shared by mistake fails here at once
  instead of when Python happens to collect it;
- one forward pass per image (what evaluation costs), last-layer MC dropout over the pool, every
  strategy's scoring, and the peak GPU memory of each;
- agreement: every strategy's scores on the device against the CPU's on the same posteriors,
  drawn with the harness's generators (CPU generators: the noise of ``random`` and ``pbald`` is the
  same numbers on both), as the top-1% overlap and the largest relative difference;
- clicks: cycle 0's clicks and one ``random`` acquisition made for the device and for the CPU
  through the harness's functions: identical when the draws do not depend on the device;
- the GPU-hours of the paper protocol (every registered strategy x the preset's seeds x its
  cycles on Cityscapes) from the measured rates, with the formula;
- the provenance line: device, memory, driver, torch, CUDA, cuDNN, mmcv, mmengine, mmseg.

Without CUDA it says so in one line and exits 2. ``--gpu-check-device cpu`` runs the same code on
the CPU at tiny sizes (what the tests do): every path of the CUDA run except the kernels. mmengine's
AmpOptimWrapper refuses to run without a GPU, so on the CPU the AMP row trains in fp32 through the
same code (its own model, loaders and two trainings), and says so.
"""
from __future__ import annotations

import copy
import gc
import tempfile
import time
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import torch
from rich.table import Table

from benchmark.errors import UsageError
from benchmark.perf.paper_protocol import (  # noqa: F401  (the check's names, re-exported)
    PAPER_DATASET,
    PAPER_MODEL,
    PAPER_PRESET,
    Protocol,
    paper_preset,
    paper_protocol,
    protocol_estimate,
)
from benchmark.runtime.environment import is_cuda, provenance_line


@dataclass(frozen=True)
class Sizes:
    images: int                 # synthetic pool images
    height: int
    width: int
    crop: tuple[int, int]
    iters: int                  # timed training iterations
    batch: int
    mc_samples: int
    classes: int
    agree_images: int           # images whose posteriors are scored on both devices
    click_size: tuple[int, int] = (256, 512)  # the clicks comparison's two images (MC runs on the CPU too)


TINY = Sizes(images=4, height=64, width=128, crop=(32, 64), iters=2, batch=2, mc_samples=3, classes=19,
             agree_images=1, click_size=(32, 48))


def paper_sizes(preset, classes: int) -> Sizes:
    """The check's full sizes: the preset's test scale (image size), crops, batch and m."""
    width, height = preset.data.test_resize.resize.scale  # mmseg's scale is (long side, short side)
    return Sizes(images=24, height=int(height), width=int(width),
                 crop=tuple(int(v) for v in preset.data.train_augment.crop.crop_size), iters=30,
                 batch=int(preset.schedule.batch_size), mc_samples=int(preset.active_learning.mc_samples),
                 classes=classes, agree_images=2)


def synthetic_items(sizes: Sizes, seed: int = 0, size: tuple[int, int] | None = None,
                    count: int | None = None) -> list[dict]:
    """Images with blocky labels whose colours follow the labels (learnable)."""
    height, width = size or (sizes.height, sizes.width)
    rng = np.random.default_rng(seed)
    palette = rng.integers(0, 256, (sizes.classes, 3))
    items = []
    for _ in range(count or sizes.images):
        cells = rng.integers(0, sizes.classes, (height // 32 + 1, width // 32 + 1))
        label = np.kron(cells, np.ones((32, 32), dtype=np.int64))[:height, :width].astype(np.uint8)
        image = np.clip(palette[label] + rng.normal(0, 20, label.shape + (3,)), 0, 255).astype(np.uint8)
        items.append(dict(img=image, gt_seg_map=label, seg_fields=["gt_seg_map"], reduce_zero_label=False))
    return items


def _meta(sizes: Sizes) -> dict:
    return dict(classes=tuple(str(c) for c in range(sizes.classes)))


def train_loader(items, sizes: Sizes, workers: int = 0):
    """A new loader with a new InfiniteSampler: one per training (it feeds one Runner only); with
    ``workers`` (the preset's, on a GPU) loader processes and pinned memory, as a run's loader."""
    from mmengine.dataset import InfiniteSampler, pseudo_collate
    from torch.utils.data import DataLoader

    from benchmark.data.run_data import ItemDataset

    train = ItemDataset(items, [dict(type="LoadImageFromNDArray"), dict(type="RandomCrop", crop_size=sizes.crop),
                                dict(type="PackSegInputs")], _meta(sizes))
    options = dict(num_workers=workers, pin_memory=workers > 0, persistent_workers=workers > 0)
    return DataLoader(train, batch_size=sizes.batch, sampler=InfiniteSampler(train, seed=0),
                      collate_fn=pseudo_collate, **options)


def loader_workers(device) -> int:
    """The paper preset's loader workers on a GPU (what a run's loader has); none on the CPU."""
    return int(paper_preset().data.get("num_workers", 0)) if is_cuda(device) else 0


class ItemPool:
    """What ``cycle.acquisition.acquire`` and ``cycle.loop.cycle0_store`` read of a RunData, over
    in-memory items: the image shapes, the pool in order, the ground truth."""

    def __init__(self, items: list[dict], sizes: Sizes):
        from benchmark.data.label_store import ImageShape

        self.items, self.sizes = items, sizes
        self.shapes = {i: ImageShape(*item["gt_seg_map"].shape) for i, item in enumerate(items)}

    def ground_truth(self, image_id: int) -> np.ndarray:
        return self.items[image_id]["gt_seg_map"]

    def pool_loader(self, batch_size: int):
        from mmengine.dataset import pseudo_collate
        from torch.utils.data import DataLoader

        from benchmark.data.run_data import ItemDataset

        pool = ItemDataset([{k: v for k, v in item.items() if k != "seg_fields"} for item in self.items],
                           [dict(type="LoadImageFromNDArray"), dict(type="PackSegInputs")], _meta(self.sizes))
        return DataLoader(pool, batch_size=batch_size, collate_fn=pseudo_collate)


def _peak(device) -> float | None:
    """Peak GPU memory (GiB) since the last ``release``; None on the CPU."""
    return torch.cuda.max_memory_allocated(device) / 2**30 if is_cuda(device) else None


def _shown_peak(peak: float | None) -> str:
    return "n/a (CPU)" if peak is None else f"{peak:.2f}"


def release(device) -> None:
    """Collect what earlier steps left (an old Runner closes its data iterator here, not later at
    random), hand cached GPU memory back and restart the peak memory count."""
    gc.collect()
    if is_cuda(device):
        torch.cuda.synchronize(device)
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats(device)


def precisions(device) -> list[dict]:
    """The two trainings the check times: fp32 and AMP (fp32 again on the CPU, where mmengine's
    AmpOptimWrapper does not run)."""
    amp_label = "AMP" if is_cuda(device) else "AMP asked: fp32 on the CPU (mmengine's AMP needs a GPU)"
    return [dict(name="fp32", label="", amp=False),
            dict(name="amp", label=f", {amp_label}", amp=is_cuda(device))]


def train_rate(make_model, items, sizes: Sizes, amp: bool, device, work: Path, log: list) -> dict:
    """A fresh model, a warm-up training of one iteration and a timed training of ``sizes.iters``,
    each from its own loader; (iterations/s of the timed one, its peak GiB, the model)."""
    from benchmark.model.segmentor import train_one_cycle
    from benchmark.runtime.timing import synchronize

    schedule = paper_preset().schedule
    model = make_model()
    seconds = {}
    for phase, iters in (("warm-up", 1), ("timed", sizes.iters)):
        loader = train_loader(items, sizes, loader_workers(device))
        release(device)
        start = time.perf_counter()
        train_one_cycle(model, loader, schedule, iters, work / f"{'amp' if amp else 'fp32'}-{phase}", 0, amp)
        synchronize(device)
        seconds[phase] = time.perf_counter() - start
        log.append(dict(amp=amp, phase=phase, iterations=iters, seconds=seconds[phase]))
    return dict(iterations_per_second=sizes.iters / seconds["timed"], peak_gib=_peak(device), model=model)


def forward_seconds(model, pool: ItemPool, device) -> float:
    """Seconds per image of one plain forward pass (``test_step``: what evaluation runs per image)."""
    from benchmark.runtime.timing import synchronize

    model.eval()
    count, start = 0, None
    with torch.no_grad():
        for index, batch in enumerate(pool.pool_loader(2)):
            if index == 0:  # the first batch warms up
                model.test_step(batch)
                synchronize(device)
                start = time.perf_counter()
                continue
            model.test_step(batch)
            count += len(batch["data_samples"])
        synchronize(device)
    return (time.perf_counter() - start) / max(count, 1)


def mc_and_scores(model, pool: ItemPool, sizes: Sizes, device, names) -> dict:
    """Seconds per image of last-layer MC, seconds per image of each strategy's scoring, peak GiB,
    and the posteriors of the first images (for the agreement check); the harness's generators."""
    from benchmark.cycle.acquisition import mask_generator, selection_generator
    from benchmark.model.mc_dropout import mc_posteriors
    from benchmark.perf.fixtures import acquisition_spec
    from benchmark.runtime.timing import synchronize
    from strategies import build_strategy

    spec = acquisition_spec(device, sizes.mc_samples, 2)
    strategies = {name: build_strategy(name) for name in names}
    mc_seconds, scoring, kept, first = 0.0, dict.fromkeys(names, 0.0), [], 0
    release(device)
    for batch in pool.pool_loader(2):
        ids = range(first, first + len(batch["data_samples"]))
        first += len(ids)
        start = time.perf_counter()
        posts = mc_posteriors(model, batch, sizes.mc_samples, [mask_generator(spec, 0, i) for i in ids])
        synchronize(device)
        mc_seconds += time.perf_counter() - start
        for image_id, post in zip(ids, posts):
            for name, strategy in strategies.items():
                g = selection_generator(replace(spec, strategy=name), 0, image_id)
                start = time.perf_counter()
                strategy.score(replace(post), generator=g)  # a copy: no strategy reuses another's terms
                synchronize(device)
                scoring[name] += time.perf_counter() - start
            if len(kept) < sizes.agree_images:
                kept.append((image_id, post))
    n = len(pool.items)
    return dict(mc_seconds=mc_seconds / n, scoring_seconds={k: v / n for k, v in scoring.items()},
                peak_gib=_peak(device), kept=kept)


def _on_cpu(post):
    from strategies import PixelPosterior

    return PixelPosterior(mean=post.mean.cpu(), variance=post.variance.cpu(),
                          predictive_entropy=post.predictive_entropy.cpu(),
                          expected_entropy=post.expected_entropy.cpu(), m=post.m)


def top_overlap(a: torch.Tensor, b: torch.Tensor, share: float = 0.01) -> float:
    """Share of ``b``'s top ``share`` pixels also in ``a``'s (non-finite scores last)."""
    k = max(1, int(a.numel() * share))
    top_a = set(torch.topk(a.reshape(-1).double().nan_to_num(neginf=-1e300, posinf=1e300), k).indices.tolist())
    top_b = set(torch.topk(b.reshape(-1).double().nan_to_num(neginf=-1e300, posinf=1e300), k).indices.tolist())
    return len(top_a & top_b) / k


def agreement(kept, device, names, sizes: Sizes) -> dict:
    """Per strategy: the smallest top-1% overlap and the largest relative difference of the finite
    scores, device vs CPU, on the same posteriors, each side with the harness's generator of a
    run on that device."""
    from benchmark.cycle.acquisition import selection_generator
    from benchmark.perf.fixtures import acquisition_spec
    from strategies import build_strategy

    out = {}
    for name in names:
        overlaps, diffs = [], []
        for image_id, post in kept:
            sides = []
            for where, posterior in ((device, replace(post)), ("cpu", _on_cpu(post))):
                spec = replace(acquisition_spec(where, sizes.mc_samples, 2), strategy=name)
                g = selection_generator(spec, 0, image_id)
                sides.append(build_strategy(name).score(posterior, generator=g).cpu().double())
            a, b = sides
            overlaps.append(top_overlap(a, b))
            finite = torch.isfinite(a) & torch.isfinite(b)
            rel = ((a - b).abs() / b.abs().clamp(min=1e-12))[finite]
            diffs.append(float(rel.max()) if rel.numel() else 0.0)
        out[name] = dict(top_overlap=min(overlaps), max_relative_difference=max(diffs))
    return out


def click_agreement(model, sizes: Sizes, device) -> dict:
    """Cycle 0's clicks and one ``random`` acquisition (cycle 1) of the same model, made through
    the harness's functions for ``device`` and for the CPU: are the clicks identical?"""
    from benchmark.cycle.acquisition import acquire
    from benchmark.cycle.loop import cycle0_store
    from benchmark.data.label_store import GroundTruthOracle
    from benchmark.perf.fixtures import acquisition_spec
    from strategies import build_selector, build_strategy

    pool = ItemPool(synthetic_items(sizes, seed=1, size=sizes.click_size, count=2), sizes)
    oracle = GroundTruthOracle(pool.ground_truth)
    sides = []
    for where, net in ((device, model), ("cpu", copy.deepcopy(model).cpu())):
        spec = replace(acquisition_spec(where, 2, 2), strategy="random")
        store = cycle0_store(spec, pool, oracle)
        acq = acquire(net, pool, store, build_strategy("random"), build_selector("topn"), spec, 1)
        sides.append((store.frame, acq.picks))
    (frame_dev, picks_dev), (frame_cpu, picks_cpu) = sides
    return dict(images=len(pool.items), cycle0_clicks=int(len(frame_cpu)),
                cycle0_identical=bool(frame_dev.equals(frame_cpu)),
                random_clicks=int(sum(len(p) for p in picks_cpu.values())),
                random_identical=picks_dev.keys() == picks_cpu.keys() and all(
                    np.array_equal(picks_dev[i], picks_cpu[i]) for i in picks_cpu))


def measure(device: str, tiny: bool) -> dict:
    """Every number of the check, and the posteriors it compared."""
    from benchmark.data import get_dataset
    from benchmark.perf.fixtures import load_model, register_mmseg
    from strategies import STRATEGIES, scores_alone

    register_mmseg()
    from strategies import scoring_backend

    kernels = scoring_backend(device)  # BalEnt's kernel settled (on a GPU compiled, checked) before any timing
    preset = paper_preset()
    classes = len(get_dataset(PAPER_DATASET).classes)
    sizes = replace(TINY, classes=classes) if tiny else paper_sizes(preset, classes)
    names = tuple(n for n in STRATEGIES.names() if scores_alone(STRATEGIES.get(n)))  # scored on their own
    items = synthetic_items(sizes)
    pool = ItemPool(items, sizes)
    trainings, log = {}, []
    with tempfile.TemporaryDirectory(prefix="gpu-check-") as work:
        for precision in precisions(device):
            result = train_rate(lambda: load_model(PAPER_MODEL, classes, device), items, sizes,
                                precision["amp"], device, Path(work), log)
            trainings[precision["name"]] = dict(result, label=precision["label"], amp=precision["amp"])
    model = trainings["fp32"].pop("model")
    trainings["amp"].pop("model")
    release(device)
    from benchmark.perf import gpu_pace

    peer = gpu_pace.peer(lambda: load_model(PAPER_MODEL, classes, device), items, sizes, device, is_cuda(device))
    release(device)
    forward = forward_seconds(model, pool, device)
    mc = mc_and_scores(model, pool, sizes, device, names)
    agree = agreement(mc.pop("kept"), device, names, sizes)
    clicks = click_agreement(model, sizes, device)
    balent = balent_on_device(device, sizes)
    release(device)
    # two `benchmark run` commands: minutes on this CPU, so on a GPU only (tests check the pieces)
    workers = gpu_pace.runs_per_hour(device, tiny) if is_cuda(device) else None
    total_gib = torch.cuda.get_device_properties(device).total_memory / 2**30 if is_cuda(device) else None
    peaks = [t["peak_gib"] for t in trainings.values() if t["peak_gib"]]
    from benchmark.execution.workers import available_cores

    sharing = gpu_pace.paper_workers(min(peaks) if peaks else None, total_gib, available_cores(),
                                     len(STRATEGIES.names()) * len(preset.active_learning.seeds))
    protocol = paper_protocol(preset)
    estimate = protocol_estimate(protocol, trainings["fp32"]["iterations_per_second"], forward,
                                 mc["mc_seconds"], mc["scoring_seconds"])
    estimate_amp = protocol_estimate(protocol, trainings["amp"]["iterations_per_second"], forward,
                                     mc["mc_seconds"], mc["scoring_seconds"])
    return dict(device=device, tiny=tiny, provenance=provenance_line(device),
                sizes=dict(vars(sizes)), trainings=trainings, training_log=log, forward_seconds=forward, **mc,
                agreement=agree, clicks=clicks, protocol=dict(vars(protocol)), estimate=estimate,
                estimate_amp=estimate_amp, scoring_kernels=kernels, balent=balent, peer=peer, workers=workers,
                paper_workers=sharing)


def balent_on_device(device: str, sizes: Sizes) -> dict:
    """BalEnt's throughput against BALD's on one image of the check's size, and its accuracy
    against 40 digits, on the device (``benchmark.perf.balent_device``)."""
    from benchmark.perf import balent_device

    return dict(throughput=balent_device.throughput(device, sizes.classes, sizes.height, sizes.width,
                                                    sizes.mc_samples, repeats=3 if sizes is TINY else 7),
                accuracy=balent_device.accuracy(device))


def gpu_check(console, device: str = "cuda", tiny: bool = False) -> dict:
    """Measure, print, and return every number of the check."""
    if is_cuda(device) and not torch.cuda.is_available():
        raise UsageError("--gpu-check needs a CUDA GPU and torch sees none: run it on a machine with one "
                         "(and a CUDA build of torch)")
    from benchmark.perf.gpu_pace import verdicts

    out = measure(device, tiny)
    out["verdicts"] = verdicts(out)
    sizes = Sizes(**out["sizes"])
    console.print(f"GPU check on {device}: {out['provenance']}")
    console.print(f"{sizes.images} synthetic images of {sizes.height}x{sizes.width}, {sizes.classes} classes "
                  f"({'tiny sizes' if tiny else 'the sizes of ' + PAPER_PRESET}); {PAPER_MODEL} (paper preset "
                  f"model, random weights); every training from a loader of its own")
    table = Table(title="GPU check: one paper-scale cycle's pieces")
    for column in ("measure", "value", "peak GPU memory (GiB)"):
        table.add_column(column, justify="left" if column == "measure" else "right")
    for t in out["trainings"].values():
        table.add_row(f"training, crops {sizes.crop[0]}x{sizes.crop[1]}, batch {sizes.batch}{t['label']} "
                      f"(iterations/s)", f"{t['iterations_per_second']:.2f}", _shown_peak(t["peak_gib"]))
    peer = out["peer"]
    table.add_row(f"peer: plain PyTorch loop{', bf16 autocast' if peer['amp'] else ', fp32'}, {peer['workers']} "
                  "loader workers (iterations/s)", f"{peer['iterations_per_second']:.2f}", _shown_peak(peer["peak_gib"]))
    table.add_row("one forward pass, evaluation's cost (s per image)", f"{out['forward_seconds']:.3f}", "")
    table.add_row(f"last-layer MC dropout, m = {sizes.mc_samples} (s per image)", f"{out['mc_seconds']:.3f}",
                  _shown_peak(out["peak_gib"]))
    for name, seconds in out["scoring_seconds"].items():
        table.add_row(f"scoring: {name} (ms per image)", f"{seconds * 1e3:.1f}", "")
    console.print(table)
    agree = Table(title=f"{device} vs CPU scores on {sizes.agree_images} image(s), the harness's generators")
    for column in ("strategy", "top-1% overlap", "max relative difference"):
        agree.add_column(column, justify="left" if column == "strategy" else "right")
    for name, a in out["agreement"].items():
        agree.add_row(name, f"{100 * a['top_overlap']:.1f}%", f"{a['max_relative_difference']:.1e}")
    agree.caption = ("scores that differ only by float rounding may still swap pixels whose scores are "
                     "near-ties; the noise of random and pbald is the same numbers on both devices")
    console.print(agree)
    c = out["clicks"]
    console.print(f"clicks, {device} vs CPU ({c['images']} images): cycle 0's {c['cycle0_clicks']} clicks "
                  f"{'identical' if c['cycle0_identical'] else 'DIFFERENT'}; one random acquisition's "
                  f"{c['random_clicks']} clicks {'identical' if c['random_identical'] else 'DIFFERENT'}")
    print_balent(console, out["balent"], device)
    print_estimate(console, out, tiny)
    from benchmark.perf.gpu_pace import print_verdicts

    print_verdicts(console, out, tiny)
    return out


BALENT_GOAL = 0.25  # issue 27: BalEnt at least 25% of BALD's throughput on CUDA


def print_balent(console, balent: dict, device: str) -> None:
    t, a = balent["throughput"], balent["accuracy"]
    c, h, w = t["size"]
    kernel = t["kernel"] + (f" ({t['kernel_why_torch']})" if t["kernel_why_torch"] else "")
    console.print(f"BalEnt on {device}, one {h}x{w} image, C = {c}, kernel: {kernel}: score "
                  f"{t['balent']['score_seconds'] * 1e3:.2f} ms against BALD's {t['bald']['score_seconds'] * 1e3:.2f} "
                  f"ms: [bold]{100 * t['ratio_score']:.1f}% of BALD's throughput[/bold]; score + topn selection "
                  f"{t['balent']['score_and_select_seconds'] * 1e3:.2f} against {t['bald']['score_and_select_seconds'] * 1e3:.2f}"
                  f" ms: [bold]{100 * t['ratio_score_and_select']:.1f}%[/bold] (goal: {100 * BALENT_GOAL:.0f}%; "
                  f"issue 27's H200 baseline: 0.2%, 49.7 ms)")
    console.print(f"BalEnt's accuracy on {device}: worst relative error {a['worst_relative_error']:.2g} against a 40-digit "
                  f"evaluation over {a['pixels']} confident, uncertain, constant and near-degenerate pixels "
                  f"(-inf pixels {'the same' if a['same_infinite'] else 'DIFFERENT'}); the CPU kernel's bound "
                  f"{a['bound']:g}: {'within' if a['within'] else 'NOT within'}")


def print_estimate(console, out: dict, tiny: bool) -> None:
    p, e = out["protocol"], out["estimate"]
    hours = ", ".join(f"{k.replace('_', ' ')} {v:.1f}" for k, v in e["hours"].items())
    console.print(f"paper protocol ({len(p['strategies'])} strategies x {p['seeds']} seeds x {p['cycles']} cycles "
                  f"on Cityscapes, {p['iters']} iterations per training, {e['trainings']} trainings): "
                  f"{e['total_hours']:.1f} GPU-hours in fp32 ({hours})"
                  + (f"; {out['estimate_amp']['total_hours']:.1f} with AMP" if is_cuda(out["device"]) else "")
                  + (" (tiny sizes: the rates are not Cityscapes', so neither is this number)" if tiny else ""))
    console.print(f"  = {e['formula']}")
    console.print("  not counted: selection, the uncertainty record and maps, reading and decoding the images "
                  "from disk (here in memory, no loader workers), start-up; one GPU per run")
