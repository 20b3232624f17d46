"""Last-layer MC dropout on an mmseg segmentor: one backbone+decoder pass, m classifier passes.

The feature map entering the decode head's final ``cls_seg`` (Dropout2d + 1x1 ``conv_seg``) is
captured once per batch. Each MC sample then draws a channel dropout mask from a seeded
generator, applies the 1x1 classifier at feature resolution (the classifier and the bilinear
resize are both linear, so classify-then-resize equals resize-then-classify), brings the logits to
each image's original size exactly as mmseg's ``predict_by_feat`` + ``postprocess_result`` do
(resize to the padded input, crop the padding, undo a flip, resize to ``ori_shape``), and folds
the softmax into running statistics (``SoftmaxStatistics``): no [m, C, H, W] tensor is held unless
``keep_samples``. The softmax must follow the per-sample resize (softmax does not commute with
it), so that resize and the softmax are the per-sample full-resolution work.

``full_network=True`` is the slow reference: m complete ``model.predict`` passes (mmseg's own
post-processing, every dropout layer active), the head's dropout replaced by the same seeded masks,
folded by ``strategies.PosteriorAccumulator``. The tests check that both give the same statistics.
"""
from __future__ import annotations

from contextlib import contextmanager
from typing import Iterator

import torch
import torch.nn.functional as F
from torch import nn

from benchmark.errors import UsageError
from strategies import PixelPosterior, PosteriorAccumulator


@contextmanager
def classifier_input_captured(head) -> Iterator[dict]:
    """While active, ``head.forward`` returns the feature map that would enter ``cls_seg``."""
    captured: dict = {}

    def capture(feat):
        captured["feat"] = feat
        return feat

    head.cls_seg = capture
    try:
        yield captured
    finally:
        del head.cls_seg  # back to the class's method


def dropout_masks(feat: torch.Tensor, p: float, generator: torch.Generator) -> torch.Tensor:
    """A Dropout2d mask [B, C_feat, 1, 1] (kept channels scaled by 1/(1-p)), from ``generator``."""
    keep = torch.rand(feat.shape[:2] + (1, 1), generator=generator, device=generator.device)
    return (keep >= p).to(feat.dtype).to(feat.device) / (1.0 - p)


def masked_classifier(conv: nn.Module, feat: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
    """``conv(feat * mask)`` for the head's 1x1 classifier, without materialising ``feat * mask``.

    A channel mask scales the classifier's input channels, so it can scale the weight's columns
    instead: per image, ``(W * mask_b) @ feat_b + bias`` as one batched GEMM over a [C, C_feat]
    weight, instead of an elementwise pass over the whole [C_feat, h, w] feature map and a
    convolution. Any other classifier (not a plain 1x1 Conv2d) is called as it is.
    """
    if mask is None:
        return conv(feat)
    plain = (isinstance(conv, nn.Conv2d) and conv.kernel_size == (1, 1) and conv.groups == 1
             and conv.stride == (1, 1) and conv.padding == (0, 0) and conv.dilation == (1, 1))
    if not plain:
        return conv(feat * mask)
    batch, channels, height, width = feat.shape
    weight = conv.weight.reshape(1, -1, channels) * mask.reshape(batch, 1, channels)  # [B, C, C_feat]
    flat = feat.reshape(batch, channels, height * width)
    if conv.bias is None:
        out = torch.bmm(weight, flat)
    else:
        out = torch.baddbmm(conv.bias.reshape(1, -1, 1), weight, flat)  # [B, C, h*w]
    return out.reshape(batch, -1, height, width)


def head_dropout_p(head) -> float:
    dropout = getattr(head, "dropout", None)
    return float(dropout.p) if dropout is not None else 0.0


def features_before_classifier(model, inputs: torch.Tensor) -> torch.Tensor:
    """Backbone (+neck) and decode head up to, not including, the last 1x1 classifier."""
    head = model.decode_head
    with classifier_input_captured(head) as captured:
        head.forward(model.extract_feat(inputs))
    return captured["feat"]


# -- resizing as mmseg's post-processing does it -------------------------------------------------
LERP_MIN_ELEMENTS = 1 << 16  # below this F.interpolate's single call is faster (measured, 1 thread)

def _lerp_phases(factor: int) -> list[tuple[int, float]]:
    """For output ``factor*j + r`` of an align_corners=False upsample: (offset, weight) such that
    the value is lerp(x[j-1+offset], x[j+offset], weight) with x edge-replicated."""
    phases = []
    for r in range(factor):
        frac = (r + 0.5) / factor - 0.5  # source position relative to j, in (-0.5, 0.5)
        phases.append((1, frac) if frac >= 0 else (0, 1.0 + frac))
    return phases


def _upsample_dim(x: torch.Tensor, factor: int, dim: int, out: torch.Tensor) -> torch.Tensor:
    n = x.shape[dim]
    padded = torch.cat([x.narrow(dim, 0, 1), x, x.narrow(dim, n - 1, 1)], dim)
    index = [slice(None)] * x.dim()
    for r, (offset, weight) in enumerate(_lerp_phases(factor)):
        index[dim] = slice(r, None, factor)
        torch.lerp(padded.narrow(dim, offset, n), padded.narrow(dim, offset + 1, n), weight,
                   out=out[tuple(index)])
    return out


def _power_of_two(n: int) -> bool:
    return n > 0 and n & (n - 1) == 0


def upsample_bilinear(x: torch.Tensor, size, align_corners: bool,
                      out: torch.Tensor | None = None) -> torch.Tensor:
    """``F.interpolate(x, size, mode='bilinear')``; on the CPU, power-of-two factors (the usual
    output strides) run as two separable lerp passes into ``out``: the same weights (exact in
    binary for those factors), 2-5x faster there."""
    height, width = x.shape[-2:]
    size = (int(size[0]), int(size[1]))
    exact = all(out % n == 0 and _power_of_two(out // n) for out, n in zip(size, (height, width)))
    small = x[..., :1, :1].numel() * size[0] * size[1] < LERP_MIN_ELEMENTS
    if x.device.type != "cpu" or align_corners or not exact or small:
        return F.interpolate(x, size=size, mode="bilinear", align_corners=align_corners)
    if out is None or tuple(out.shape) != tuple(x.shape[:-2]) + size:
        out = torch.empty(x.shape[:-2] + size, dtype=x.dtype, device=x.device)
    rows = torch.empty(x.shape[:-1] + (size[1],), dtype=x.dtype, device=x.device)
    _upsample_dim(x, size[1] // width, -1, rows)
    return _upsample_dim(rows, size[0] // height, -2, out)


def padded_size(metas: list[dict], inputs: torch.Tensor) -> tuple[int, int]:
    """The size mmseg's ``predict_by_feat`` resizes the logits to (whole-image inference)."""
    meta = metas[0]
    if "pad_shape" in meta:
        return tuple(meta["pad_shape"][:2])
    if "img_shape" in meta:
        return tuple(meta["img_shape"][:2])
    return tuple(inputs.shape[-2:])


def padding_of(meta: dict) -> tuple[int, int, int, int]:
    """(left, right, top, bottom) padding, read as ``postprocess_result`` reads it."""
    return tuple(meta.get("img_padding_size", meta.get("padding_size", (0, 0, 0, 0))))


def _output_key(meta: dict):
    flip = meta.get("flip_direction") if meta.get("flip", False) else None
    return padding_of(meta), flip, tuple(meta["ori_shape"][:2])


def output_groups(metas: list[dict]) -> list[tuple[list[int], tuple]]:
    """Images of a batch that share crop, flip and original size (usually all of them)."""
    groups: dict = {}
    for i, meta in enumerate(metas):
        groups.setdefault(_output_key(meta), []).append(i)
    return [(indices, key) for key, indices in groups.items()]


def to_original(padded: torch.Tensor, key: tuple, align_corners: bool) -> torch.Tensor:
    """Crop the padding of padded-size logits [b, C, Hp, Wp], undo a flip, resize to ori_shape."""
    (left, right, top, bottom), flip, ori = key
    height, width = padded.shape[-2:]
    out = padded[..., top:height - bottom, left:width - right]
    if flip is not None:
        out = out.flip(dims=(3,) if flip == "horizontal" else (2,))
    if tuple(out.shape[-2:]) != ori:
        out = F.interpolate(out, size=ori, mode="bilinear", align_corners=align_corners)
    return out


# -- running statistics straight from logits ----------------------------------------------------
class SoftmaxStatistics:
    """Mean, unbiased variance, predictive and expected entropy of softmax(z) over MC samples.

    The same statistics as ``strategies.PosteriorAccumulator`` (Welford in float32, entropies
    summed in float64), computed from the logits: the per-sample entropy is
    ``sum_c p_c (max z - z_c) - log max p`` (two non-negative terms, no log of p per class), and
    every full-resolution buffer is allocated once and reused for all m samples.
    """

    def __init__(self, *, keep_samples: bool = False) -> None:
        self.keep_samples = keep_samples
        self.count = 0
        self.samples: list[torch.Tensor] = []

    def _start(self, z: torch.Tensor) -> None:
        dtype = torch.float32 if z.dtype in (torch.float16, torch.bfloat16) else z.dtype
        self.mean = torch.empty(z.shape, dtype=dtype, device=z.device)  # [B, C, H, W]
        self.m2 = torch.zeros_like(self.mean)
        self.p = torch.empty_like(self.mean)
        self.entropy_sum = torch.zeros(z.shape[:1] + z.shape[2:], dtype=torch.float64,
                                       device=z.device)  # [B, H, W]

    def add_logits(self, z: torch.Tensor) -> None:
        """Fold in softmax(z) for logits ``z`` [B, C, H, W]; ``z`` is used as scratch space."""
        if self.count == 0:
            self._start(z)
        z = z.to(self.mean.dtype)
        p = torch.softmax(z, dim=1, out=self.p)
        top = z.amax(dim=1, keepdim=True)  # [B, 1, H, W]
        sample_entropy = torch.sub(top, z, out=z).mul_(p).sum(dim=1)  # sum_c p_c (max z - z_c)
        sample_entropy.sub_(p.amax(dim=1).log_())
        self.entropy_sum.add_(sample_entropy)
        self.count += 1
        if self.count == 1:
            self.mean.copy_(p)
        else:  # Welford, as PosteriorAccumulator: M2 += (k-1)/k d^2 with d = p - mean_{k-1}
            delta = torch.sub(p, self.mean, out=z)
            self.mean.add_(delta, alpha=1.0 / self.count)
            self.m2.addcmul_(delta, delta, value=(self.count - 1) / self.count)
        if self.keep_samples:
            self.samples.append(p.clone())

    def finalize(self) -> list[PixelPosterior]:
        """One ``PixelPosterior`` per image (views of the batch tensors)."""
        if self.count == 0:
            raise ValueError("no sample was added")
        variance = self.m2.div_(self.count - 1) if self.count > 1 else self.m2
        expected = (self.entropy_sum / self.count).to(self.mean.dtype)
        tiny = torch.finfo(self.mean.dtype).tiny  # x log x as xlogy gives it (0 at 0), ~8x faster
        predictive = self.mean.clamp(min=tiny).log_().mul_(self.mean).sum(dim=1).neg_()
        samples = torch.stack(self.samples, dim=1) if self.keep_samples else None  # [B, m, ...]
        return [PixelPosterior(mean=self.mean[i], variance=variance[i],
                               predictive_entropy=predictive[i], expected_entropy=expected[i],
                               m=self.count, samples=None if samples is None else samples[i])
                for i in range(self.mean.shape[0])]


# -- the two paths ---------------------------------------------------------------------------
def _check_whole_inference(model) -> None:
    mode = (getattr(model, "test_cfg", None) or {}).get("mode", "whole")
    if mode != "whole":
        raise UsageError(f"MC dropout needs whole-image inference; the preset's model.test_cfg "
                         f"asks for mode={mode!r}: set test_cfg=dict(mode='whole')")


def _last_layer(model, inputs, metas, mc_samples, generator, keep_samples) -> list:
    head = model.decode_head
    p = head_dropout_p(head)
    feat = features_before_classifier(model, inputs)  # [B, C_feat, h, w]
    size = padded_size(metas, inputs)
    groups = [(indices, key, SoftmaxStatistics(keep_samples=keep_samples))
              for indices, key in output_groups(metas)]
    buffer = None
    for _ in range(mc_samples):
        mask = dropout_masks(feat, p, generator) if p > 0 else None
        logits = masked_classifier(head.conv_seg, feat, mask)  # [B, C, h, w]
        buffer = upsample_bilinear(logits, size, head.align_corners, out=buffer)  # [B, C, Hp, Wp]
        for indices, key, stats in groups:
            part = buffer if len(indices) == len(metas) else buffer[indices]
            stats.add_logits(to_original(part, key, head.align_corners))
    posteriors: list = [None] * len(metas)
    for indices, _, stats in groups:
        for i, post in zip(indices, stats.finalize()):
            posteriors[i] = post
    return posteriors


class FixedMaskDropout(nn.Module):
    """Stands in for the head's dropout: multiplies by a mask drawn like the fast path's."""

    def __init__(self, p: float, generator: torch.Generator):
        super().__init__()
        self.p, self.generator = p, generator

    def forward(self, feat: torch.Tensor) -> torch.Tensor:
        return feat * dropout_masks(feat, self.p, self.generator) if self.p > 0 else feat


@contextmanager
def all_dropout_active(model, generator: torch.Generator) -> Iterator[None]:
    """The head's dropout draws seeded masks; every other dropout layer runs in training mode
    (from torch's RNG, forked and seeded from ``generator``, so the run stays reproducible)."""
    head = model.decode_head
    original = head.dropout
    others = [m for m in model.modules() if isinstance(m, nn.modules.dropout._DropoutNd)
              and m is not original]
    head.dropout = FixedMaskDropout(head_dropout_p(head), generator)
    devices = [generator.device] if generator.device.type == "cuda" else []
    try:
        with torch.random.fork_rng(devices=devices, enabled=bool(others)):
            if others:
                torch.manual_seed(int(torch.randint(2 ** 31, (1,), generator=generator,
                                                    device=generator.device)))
            for module in others:
                module.train()
            yield
    finally:
        head.dropout = original
        for module in others:
            module.eval()


def _full_network(model, inputs, samples, mc_samples, generator, keep_samples) -> list:
    accumulators = [PosteriorAccumulator(keep_samples=keep_samples) for _ in samples]
    with all_dropout_active(model, generator):
        for _ in range(mc_samples):
            for acc, result in zip(accumulators, model.predict(inputs, samples)):
                acc.add(torch.softmax(result.seg_logits.data.float(), dim=0))  # [C, H, W]
    return [acc.finalize() for acc in accumulators]


@torch.no_grad()
def mc_posteriors(model, batch: dict, mc_samples: int, generator: torch.Generator,
                  full_network: bool = False, keep_samples: bool = False) -> list:
    """MC-dropout posteriors (one ``PixelPosterior`` per image of ``batch``) at original size.

    ``batch`` is what a mmengine DataLoader with ``pseudo_collate`` yields (inputs, data_samples).
    Masks come from ``generator`` (on the model's device for speed), one draw per MC sample.
    """
    model.eval()
    _check_whole_inference(model)
    data = model.data_preprocessor(batch, False)
    inputs, samples = data["inputs"], data["data_samples"]
    if full_network:
        return _full_network(model, inputs, samples, mc_samples, generator, keep_samples)
    metas = [s.metainfo for s in samples]
    return _last_layer(model, inputs, metas, mc_samples, generator, keep_samples)
