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
from torch import nn

from benchmark.errors import UsageError
from benchmark.logit_resize import output_groups, padded_size, to_original, upsample_bilinear
from benchmark.softmax_stats import SoftmaxStatistics
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
