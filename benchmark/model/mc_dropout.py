"""Last-layer MC dropout on an mmseg segmentor: one backbone+decoder pass, m classifier passes.

The feature map entering the decode head's final ``cls_seg`` (dropout + 1x1 ``conv_seg``) is
captured once per batch. Each MC sample then draws a dropout mask per image from that image's
seeded generator (``channel``: one keep/drop per feature channel, as mmseg's Dropout2d;
``element``: one per channel and pixel, as nn.Dropout), applies the 1x1 classifier at feature resolution (the classifier and the bilinear
resize are both linear, so classify-then-resize equals resize-then-classify), brings the logits to
each image's original size exactly as mmseg's ``predict_by_feat`` + ``postprocess_result`` do
(resize to the padded input, crop the padding, undo a flip, resize to ``ori_shape``), and folds
the softmax into running statistics (``SoftmaxStatistics``): no [m, C, H, W] tensor is held unless
``keep_samples``. The softmax must follow the per-sample resize (softmax does not commute with
it), so that resize and the softmax are the per-sample full-resolution work.

With ``keep_features`` (for strategies that declare ``needs_features``) the captured feature map
also comes back, per image, as a ``strategies.PixelFeatures`` (``pixel_features.py``: the map at
feature resolution and the mapping of the image's pixels to it); ``batch_features`` is that alone,
without MC samples (the labelled pixels' features of a pool context).

``full_network=True`` is the slow reference: m complete ``model.predict`` passes (mmseg's own
post-processing, every dropout layer active), the head's dropout replaced by the same seeded masks,
folded by ``strategies.PosteriorAccumulator``. The tests check that both give the same statistics.

Masks are drawn on the generators' device and moved to the features' (``dropout_masks``). The
harness passes CPU generators (``benchmark.config.seeds``), so the head's masks of a seed are the
same on every device. What is not: the other dropout layers of the full-network reference
(``all_dropout_active``) draw from torch's global RNG on the model's device, seeded from the first
image's generator: the seed is device-independent, the masks are not on CUDA (Philox). None of
the presets' models has such a layer on its prediction path (an auxiliary head's dropout is
never called by ``predict``); the runs use the last-layer path.
"""
from __future__ import annotations

from contextlib import contextmanager
from typing import Iterator, Sequence

import torch
from torch import nn

from benchmark.config.modes import MASK_CHANNEL, MASK_ELEMENT, MC_DROPOUT_MASKS
from benchmark.errors import UsageError
from benchmark.model.logit_resize import output_groups, padded_size, to_original, upsample_bilinear
from benchmark.model.pixel_features import image_features
from benchmark.model.softmax_stats import SoftmaxStatistics
from strategies import PosteriorAccumulator


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




def dropout_layer(rate: float, mask: str) -> nn.Module:
    """The head's dropout for training: ``channel`` = Dropout2d (mmseg's), ``element`` = Dropout."""
    if mask not in MC_DROPOUT_MASKS:
        raise ValueError(f"unknown MC dropout mask {mask!r}: use one of {', '.join(MC_DROPOUT_MASKS)}")
    return nn.Dropout2d(rate) if mask == MASK_CHANNEL else nn.Dropout(rate)


def head_dropout(head) -> tuple[float, str]:
    """(rate, mask kind) of the decode head's dropout layer; rate 0 when it has none."""
    dropout = getattr(head, "dropout", None)
    if dropout is None or float(dropout.p) == 0.0:
        return 0.0, MASK_CHANNEL
    return float(dropout.p), MASK_CHANNEL if isinstance(dropout, nn.Dropout2d) else MASK_ELEMENT


def generators_for(generators, count: int) -> list[torch.Generator]:
    """One generator per image: ``generators`` itself, or one shared generator repeated."""
    if isinstance(generators, torch.Generator):
        return [generators] * count
    generators = list(generators)
    if len(generators) != count:
        raise ValueError(f"{len(generators)} mask generators for {count} images")
    return generators


def dropout_masks(feat: torch.Tensor, p: float, generators: Sequence[torch.Generator] | torch.Generator,
                  mask: str = MASK_CHANNEL) -> torch.Tensor:
    """Dropout masks for ``feat`` [B, C_feat, h, w], kept units scaled by 1/(1-p): [B, C_feat, 1, 1]
    for ``channel``, [B, C_feat, h, w] for ``element``; image b's from ``generators[b]``."""
    shape = feat.shape[1:2] + ((1, 1) if mask == MASK_CHANNEL else tuple(feat.shape[2:]))
    keep = [torch.rand(shape, generator=g, device=g.device) for g in generators_for(generators, feat.shape[0])]
    return (torch.stack(keep) >= p).to(feat.device, feat.dtype) / (1.0 - p)


def masked_classifier(conv: nn.Module, feat: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
    """``conv(feat * mask)`` for the head's 1x1 classifier.

    A channel mask scales the classifier's input channels, so it can scale the weight's columns
    instead: per image, ``(W * mask_b) @ feat_b + bias`` as one batched GEMM over a [C, C_feat]
    weight, without materialising ``feat * mask``. An element mask is applied to the features
    (one [B, C_feat, h, w] product per sample), then the same GEMM with the plain weight. Any
    other classifier (not a plain 1x1 Conv2d) is called as it is.
    """
    if mask is None:
        return conv(feat)
    plain = (isinstance(conv, nn.Conv2d) and conv.kernel_size == (1, 1) and conv.groups == 1
             and conv.stride == (1, 1) and conv.padding == (0, 0) and conv.dilation == (1, 1))
    if not plain:
        return conv(feat * mask)
    batch, channels, height, width = feat.shape
    if mask.shape[-2:] == (1, 1):
        weight = conv.weight.reshape(1, -1, channels) * mask.reshape(batch, 1, channels)  # [B, C, C_feat]
        flat = feat.reshape(batch, channels, height * width)
    else:
        weight = conv.weight.reshape(1, -1, channels).expand(batch, -1, -1)
        flat = (feat * mask).reshape(batch, channels, height * width)
    if conv.bias is None:
        out = torch.bmm(weight, flat)
    else:
        out = torch.baddbmm(conv.bias.reshape(1, -1, 1), weight, flat)  # [B, C, h*w]
    return out.reshape(batch, -1, height, width)


def features_before_classifier(model, inputs: torch.Tensor) -> torch.Tensor:
    """Backbone (+neck) and decode head up to, not including, the last 1x1 classifier."""
    head = model.decode_head
    with classifier_input_captured(head) as captured:
        head.forward(model.extract_feat(inputs))
    return captured["feat"]


# -- the two paths ---------------------------------------------------------------------------
def _check_whole_inference(model) -> None:
    mode = (getattr(model, "test_cfg", None) or {}).get("mode", "whole")
    if mode != "whole":
        raise UsageError(f"MC dropout needs whole-image inference; the preset's model.test_cfg "
                         f"asks for mode={mode!r}: set test_cfg=dict(mode='whole')")


def _last_layer(model, feat, size, metas, mc_samples, generators, keep_samples) -> list:
    head = model.decode_head
    p, kind = head_dropout(head)
    groups = [(indices, key, SoftmaxStatistics(keep_samples=keep_samples))
              for indices, key in output_groups(metas)]
    buffer = None
    for _ in range(mc_samples):
        mask = dropout_masks(feat, p, generators, kind) if p > 0 else None
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
    """Stands in for the head's dropout: multiplies by masks drawn exactly as the fast path's."""

    def __init__(self, p: float, kind: str, generators):
        super().__init__()
        self.p, self.kind, self.generators = p, kind, generators

    def forward(self, feat: torch.Tensor) -> torch.Tensor:
        return feat * dropout_masks(feat, self.p, self.generators, self.kind) if self.p > 0 else feat


@contextmanager
def all_dropout_active(model, generators) -> Iterator[None]:
    """The head's dropout draws the per-image seeded masks; every other dropout layer runs in
    training mode, from torch's global RNG, forked (restored afterwards, on the CPU and on the
    model's GPU) and seeded from the first image's generator, so the run stays reproducible.

    Device-independent: the head's masks and the seed of the global RNG (both from the given
    generators, CPU generators in the harness). Not device-independent: the other layers' masks,
    which torch draws on the model's device (on CUDA from its Philox generator)."""
    head = model.decode_head
    original = head.dropout
    others = [m for m in model.modules() if isinstance(m, nn.modules.dropout._DropoutNd)
              and m is not original]
    head.dropout = FixedMaskDropout(*head_dropout(head), generators)
    generator = generators[0]
    model_device = next(model.parameters()).device
    devices = [d for d in {generator.device, model_device} if d.type == "cuda"]
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


def _full_network(model, inputs, samples, mc_samples, generators, keep_samples) -> list:
    accumulators = [PosteriorAccumulator(keep_samples=keep_samples) for _ in samples]
    with all_dropout_active(model, generators):
        for _ in range(mc_samples):
            for acc, result in zip(accumulators, model.predict(inputs, samples)):
                acc.add(torch.softmax(result.seg_logits.data.float(), dim=0))  # [C, H, W]
    return [acc.finalize() for acc in accumulators]


@torch.no_grad()
def batch_features(model, batch: dict) -> list:
    """Each image's ``PixelFeatures`` from one backbone + decoder pass (no MC sample)."""
    model.eval()
    data = model.data_preprocessor(batch, False)
    inputs, metas = data["inputs"], [s.metainfo for s in data["data_samples"]]
    feat = features_before_classifier(model, inputs)
    return image_features(feat, metas, padded_size(metas, inputs), model.decode_head.align_corners)


@torch.no_grad()
def mc_posteriors(model, batch: dict, mc_samples: int, generators,
                  full_network: bool = False, keep_samples: bool = False, keep_features: bool = False):
    """MC-dropout posteriors (one ``PixelPosterior`` per image of ``batch``) at original size;
    with ``keep_features``, ``(posteriors, features)``: also each image's ``PixelFeatures``.

    ``batch`` is what a mmengine DataLoader with ``pseudo_collate`` yields (inputs, data_samples).
    ``generators``: one per image (image b's masks come from ``generators[b]``, so an image's
    statistics do not depend on the batch it is in), or one generator shared by the batch. CPU
    generators (the harness's) give the same masks on every device; generators on the model's
    device skip a host-to-device copy per sample, but their numbers differ between devices. The
    mask kind and rate are the head's dropout layer's.
    """
    model.eval()
    _check_whole_inference(model)
    data = model.data_preprocessor(batch, False)
    inputs, samples = data["inputs"], data["data_samples"]
    generators = generators_for(generators, len(samples))
    if full_network:
        if keep_features:
            raise ValueError("keep_features needs the last-layer path (full_network=False)")
        return _full_network(model, inputs, samples, mc_samples, generators, keep_samples)
    metas = [s.metainfo for s in samples]
    feat = features_before_classifier(model, inputs)  # [B, C_feat, h, w]
    size = padded_size(metas, inputs)
    posteriors = _last_layer(model, feat, size, metas, mc_samples, generators, keep_samples)
    if keep_features:
        return posteriors, image_features(feat, metas, size, model.decode_head.align_corners)
    return posteriors
