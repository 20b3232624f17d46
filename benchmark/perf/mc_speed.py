"""Section 1: last-layer MC dropout against m full forward passes, on the same model and images,
and what one last-layer MC sample costs, stage by stage, against the machine's copy bandwidth."""
from __future__ import annotations

import torch
import torch.nn.functional as F
from rich.table import Table

from benchmark.model.logit_resize import padded_size, upsample_bilinear
from benchmark.model.mc_dropout import (
    dropout_layer,
    dropout_masks,
    features_before_classifier,
    head_dropout,
    masked_classifier,
    mc_posteriors,
)
from benchmark.model.softmax_stats import SoftmaxStatistics
from benchmark.perf.estimates import NOT_AVAILABLE, per_unit, ratio, shown
from benchmark.perf.fixtures import RandomPool, load_model, timed
from strategies import PosteriorAccumulator

FIELDS = ("mean", "variance", "predictive_entropy", "expected_entropy")


def _generator(device, seed: int = 0) -> torch.Generator:
    """A CPU generator, as the harness draws its masks (``benchmark.config.seeds``), on any device."""
    return torch.Generator().manual_seed(seed)


def max_difference(a: list, b: list) -> float:
    """Largest absolute difference of any statistic between two lists of posteriors."""
    return max(float((getattr(x, f) - getattr(y, f)).abs().max()) for x, y in zip(a, b) for f in FIELDS)


@torch.no_grad()
def compare_paths(model, batch, m: int, repeats: int, device) -> dict:
    """Seconds of one backbone+decoder pass, of last-layer MC and of full-network MC (medians)."""
    inputs = model.data_preprocessor(batch, False)["inputs"]
    features = timed(lambda: features_before_classifier(model, inputs), repeats, device)
    fast = timed(lambda: mc_posteriors(model, batch, m, _generator(device)), repeats, device)
    full = timed(lambda: mc_posteriors(model, batch, m, _generator(device), full_network=True),
                 max(1, (repeats + 1) // 2), device)
    diff = max_difference(mc_posteriors(model, batch, m, _generator(device)),
                          mc_posteriors(model, batch, m, _generator(device), full_network=True))
    channel_layer = model.decode_head.dropout
    model.decode_head.dropout = dropout_layer(head_dropout(model.decode_head)[0] or 0.1, "element")
    try:  # the same head with an element-wise mask (one keep/drop per channel and pixel)
        element = timed(lambda: mc_posteriors(model, batch, m, _generator(device)), repeats, device)
        element_diff = max_difference(mc_posteriors(model, batch, m, _generator(device)),
                                      mc_posteriors(model, batch, m, _generator(device), full_network=True))
    finally:
        model.decode_head.dropout = channel_layer
    return dict(features=features.median, fast=fast.median, full=full.median, diff=diff,
                element=element.median, element_diff=element_diff, speedup=full.median / fast.median,
                head_per_sample=per_unit(fast.median, features.median, m), full_per_sample=full.median / m,
                element_vs_channel=element.median / fast.median)


def section_mc(args, console, bandwidth: float) -> dict:
    m = args.mc_samples
    console.print(f"1. Last-layer vs full-network MC dropout: m = {m}, a batch of {args.batch_size} images "
                  f"of {args.height}x{args.width}, {args.classes} classes, median of {args.repeats}")
    table = Table(title="1. MC dropout: last layer vs full network")
    for column in ("model", "1 forward pass", "last-layer MC", "full-network MC", "speed-up",
                   f"goal >= 0.7m = {0.7 * m:.1f}", "per sample: head / full pass", "max |diff| of stats",
                   "last-layer MC, element masks", "element / channel", "element: max |diff|"):
        table.add_column(column, justify="left" if column == "model" else "right")
    pool = RandomPool(args.batch_size, args.height, args.width)
    batch = pool.batch(range(args.batch_size))
    first, models = None, {}
    for name in args.models:
        model = load_model(name, args.classes, args.device)
        if first is None:
            first = model
        r = models[name] = compare_paths(model, batch, m, args.repeats, args.device)
        table.add_row(name, f"{r['features'] * 1e3:.1f} ms", f"{r['fast'] * 1e3:.1f} ms",
                      f"{r['full'] * 1e3:.1f} ms", f"{r['speedup']:.1f}x",
                      "met" if r["speedup"] >= 0.7 * m else "not met",
                      f"{shown(r['head_per_sample'], '.2f', 1e3)} / {r['full_per_sample'] * 1e3:.2f} ms",
                      f"{r['diff']:.1e}", f"{r['element'] * 1e3:.1f} ms", f"{r['element_vs_channel']:.2f}x",
                      f"{r['element_diff']:.1e}")
    console.print(table)
    console.print("  full-network MC = m complete mmseg predict() passes (every dropout layer active, "
                  "the head's masks identical to the last-layer path's), folded by "
                  "strategies.PosteriorAccumulator; max |diff| compares the two paths' statistics. Element "
                  "masks: the same head with one keep/drop per channel and pixel (nn.Dropout) instead of per "
                  "channel (Dropout2d): the mask can no longer fold into the classifier's weights.")
    table, stages = head_breakdown(first, batch, args, bandwidth)
    console.print(table)
    return dict(m=m, models=models, head_stages=stages)


@torch.no_grad()
def head_breakdown(model, batch, args, bandwidth: float) -> tuple[Table, dict]:
    """Per-sample stages of the last-layer path at full resolution, with their minimal traffic:
    the table and, per stage, its seconds (None: too fast to estimate) and bytes."""
    device, repeats = args.device, max(args.repeats, 3)
    data = model.data_preprocessor(batch, False)
    inputs, metas = data["inputs"], [s.metainfo for s in data["data_samples"]]
    head = model.decode_head
    feat = features_before_classifier(model, inputs)
    size = padded_size(metas, inputs)
    g = _generator(device)
    logits = masked_classifier(head.conv_seg, feat, dropout_masks(feat, head_dropout(head)[0], g))
    up = upsample_bilinear(logits, size, head.align_corners)
    elements = up.numel()
    stats = SoftmaxStatistics()
    stats.add_logits(up.clone())
    scratch = up.clone()
    legacy = [PosteriorAccumulator() for _ in metas]
    copy_s = timed(lambda: scratch.copy_(up), repeats, device).median
    rows = [
        ("dropout mask + 1x1 classifier at feature resolution (masked weights, one GEMM)",
         lambda: masked_classifier(head.conv_seg, feat, dropout_masks(feat, head_dropout(head)[0], g)),
         (feat.numel() + logits.numel()) * 4),
        ("  same as conv_seg(feat * mask) (before)",
         lambda: head.conv_seg(feat * dropout_masks(feat, head_dropout(head)[0], g)),
         (feat.numel() + logits.numel()) * 4),
        ("bilinear resize to the padded input (separable lerp on CPU)",
         lambda: upsample_bilinear(logits, size, head.align_corners, out=scratch), elements * 4),
        ("  same with F.interpolate (before)",
         lambda: F.interpolate(logits, size=size, mode="bilinear", align_corners=head.align_corners),
         elements * 4),
        ("softmax + entropy + Welford fold (SoftmaxStatistics)",  # minus the refill of its scratch
         lambda: stats.add_logits(scratch.copy_(up)), elements * 20, copy_s),
        ("  softmax + PosteriorAccumulator.add per image (before)",
         lambda: [acc.add(torch.softmax(one, dim=0)) for acc, one in zip(legacy, up)], elements * 20),
    ]
    table = Table(title=f"1b. One last-layer MC sample, logits {tuple(up.shape)} (median of {repeats})")
    for column in ("stage", "ms", "minimal bytes", "GB/s at minimal bytes", "% of copy bandwidth"):
        table.add_column(column, justify="left" if column == "stage" else "right")
    stages = {}
    for label, fn, nbytes, *minus in rows:
        seconds = per_unit(timed(fn, repeats, device).median, sum(minus), 1)  # None: below the noise
        rate = ratio(nbytes, seconds)
        stages[label.strip()] = dict(seconds=seconds, bytes=nbytes, bytes_per_second=rate,
                                     share_of_bandwidth=ratio(rate, bandwidth))
        table.add_row(label, shown(seconds, ".2f", 1e3), f"{nbytes / 2**20:.1f} MiB",
                      shown(rate, ".1f", 1e-9, NOT_AVAILABLE), shown(ratio(rate, bandwidth), ".0%", 1, NOT_AVAILABLE))
    table.caption = (f"minimal bytes: resize = write the logits; fold = read logits, read+write mean "
                     f"and M2 (20 B per element, what one fused kernel would move); a plain copy of "
                     f"the same logits takes {copy_s * 1e3:.3f} ms")
    return table, stages
