"""Last-layer MC dropout on an mmseg segmentor: one backbone+decoder pass, m classifier passes.

The feature map entering the decode head's final ``cls_seg`` (Dropout2d + 1x1 ``conv_seg``) is
captured once per batch; each MC sample then draws a channel dropout mask from a seeded generator,
applies the 1x1 classifier, resizes the logits to the image's original size the way mmseg's
``postprocess_result`` does (crop the padding, bilinear resize) and folds the softmax into a
running ``PosteriorAccumulator``; no [m, C, H, W] tensor is ever held. The full-network path
(``full_network=True``) recomputes the whole forward pass for every sample with the same masks:
the slow reference that the perf suite and the tests compare against.
"""
from __future__ import annotations

from contextlib import contextmanager
from typing import Iterator

import torch
import torch.nn.functional as F

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


def head_dropout_p(head) -> float:
    dropout = getattr(head, "dropout", None)
    return float(dropout.p) if dropout is not None else 0.0


def features_before_classifier(model, inputs: torch.Tensor) -> torch.Tensor:
    """Backbone (+neck) and decode head up to, not including, the last 1x1 classifier."""
    head = model.decode_head
    with classifier_input_captured(head) as captured:
        head.forward(model.extract_feat(inputs))
    return captured["feat"]


def logits_to_original(logits: torch.Tensor, metas: list[dict], align_corners: bool,
                       input_shape=None) -> list[torch.Tensor]:
    """Per image: resize to the padded input, crop the padding, resize to ``ori_shape``."""
    padded = tuple(logits.shape[-2:]) if input_shape is None else tuple(input_shape)
    logits = F.interpolate(logits, size=padded, mode="bilinear", align_corners=align_corners)
    out = []
    for i, meta in enumerate(metas):
        left, right, top, bottom = meta.get("padding_size", (0, 0, 0, 0))
        one = logits[i:i + 1, :, top:padded[0] - bottom, left:padded[1] - right]
        if tuple(one.shape[-2:]) != tuple(meta["ori_shape"][:2]):
            one = F.interpolate(one, size=meta["ori_shape"][:2], mode="bilinear",
                                align_corners=align_corners)
        out.append(one[0])
    return out


@torch.no_grad()
def mc_posteriors(model, batch: dict, mc_samples: int, generator: torch.Generator,
                  full_network: bool = False, keep_samples: bool = False) -> list:
    """MC-dropout posteriors (one ``PixelPosterior`` per image of ``batch``) at original size.

    ``batch`` is what a mmengine DataLoader with ``pseudo_collate`` yields (inputs, data_samples).
    """
    model.eval()
    data = model.data_preprocessor(batch, False)
    inputs, samples = data["inputs"], data["data_samples"]
    metas = [s.metainfo for s in samples]
    head = model.decode_head
    p = head_dropout_p(head)
    accumulators = [PosteriorAccumulator(keep_samples=keep_samples) for _ in metas]
    feat = None if full_network else features_before_classifier(model, inputs)
    for _ in range(mc_samples):
        if full_network:
            feat = features_before_classifier(model, inputs)
        mask = dropout_masks(feat, p, generator) if p > 0 else 1.0
        logits = head.conv_seg(feat * mask)
        for acc, one in zip(accumulators, logits_to_original(logits, metas, head.align_corners, inputs.shape[-2:])):
            acc.add(torch.softmax(one.float(), dim=0))  # [C, H, W]
    return [acc.finalize() for acc in accumulators]
