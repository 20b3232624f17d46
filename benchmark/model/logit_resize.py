"""Bringing classifier logits to each image's original size exactly as mmseg's ``predict_by_feat``
+ ``postprocess_result`` do (resize to the padded input, crop the padding, undo a flip, resize to
``ori_shape``), with a faster separable bilinear upsample for the CPU's usual power-of-two factors.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

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
