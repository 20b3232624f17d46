"""Training on clicks: transforms that keep every click in reach of the loss, wherever it sits.

mmseg's own geometric transforms treat a label map as dense. On a map that is 255 everywhere but
at a few clicks they are unfair: a nearest-neighbour downscale by r drops a click with probability
~1 - r^2, and a crop placed uniformly inside the image covers a border pixel far less often than a
central one. Uncertainty strategies click boundaries and borders more than random does, so they
would lose more of their supervision. In the sparse (click) pipeline the harness therefore swaps:

- ``Resize`` and ``RandomResize``'s inner resize -> ``ClickPreservingResize``: the image is
  resized as before; every click moves to the target pixel that holds its centre instead of
  being sampled away (two clicks landing on one target pixel keep the later one);
- ``RandomCrop`` -> ``UniformCoverageCrop``: along each axis the crop's offset is uniform over
  every placement that overlaps the image, the part outside padded (image 0, label 255), so every
  pixel, border or centre, is inside the crop with the same probability ``c / (n + c - 1)`` (c the
  crop size, n the image size; 1 where the image is not larger than the crop). The price: on
  average a crop holds ``n / (n + c - 1)`` image per axis; the loss sees only clicks anyway.

Other steps pass as they are if they move no pixel (``RandomFlip`` mirrors the map exactly, the
photometric ones touch the image only); any other geometric step is refused, naming it. Dense
(supervised) training keeps mmseg's transforms. ``CountClicksInLoss`` records, per sample, the
clicks that entered the pipeline and those still in the label map at its end.
"""
from __future__ import annotations

import copy

import numpy as np
from mmcv.transforms import BaseTransform
from mmseg.datasets.transforms import Resize
from mmseg.registry import TRANSFORMS

from benchmark.data.label_store import IGNORE_INDEX
from benchmark.errors import UsageError

CLICK_META_KEYS = ("clicks_total", "clicks_in_loss")
PACK_META_KEYS = ('img_path', 'seg_map_path', 'ori_shape', 'img_shape', 'pad_shape', 'scale_factor', 'flip',
                  'flip_direction', 'reduce_zero_label') + CLICK_META_KEYS  # mmseg's defaults + ours
PIXEL_EXACT = {"RandomFlip", "PhotoMetricDistortion", "RGB2Gray", "AdjustGamma", "CLAHE", "Rerange",
               "BioMedicalGaussianNoise", "BioMedicalGaussianBlur", "BioMedicalRandomGamma"}


def move_clicks(seg: np.ndarray, height: int, width: int) -> np.ndarray:
    """A label map resized to (height, width) so that every non-ignore pixel lands on the target
    pixel that holds its centre; the rest is ``IGNORE_INDEX``."""
    ys, xs = np.nonzero(seg != IGNORE_INDEX)
    out = np.full((height, width), IGNORE_INDEX, dtype=seg.dtype)
    ty = np.minimum(((ys + 0.5) * (height / seg.shape[0])).astype(np.int64), height - 1)
    tx = np.minimum(((xs + 0.5) * (width / seg.shape[1])).astype(np.int64), width - 1)
    out[ty, tx] = seg[ys, xs]
    return out


@TRANSFORMS.register_module()
class ClickPreservingResize(Resize):
    """mmseg's ``Resize`` for the image; label maps resized by ``move_clicks`` (no click lost)."""

    def _resize_seg(self, results: dict) -> None:
        height, width = results["img_shape"][:2]
        for key in results.get("seg_fields", []):
            if results.get(key) is not None:
                results[key] = move_clicks(results[key], height, width)


def _axis_window(size: int, crop: int) -> tuple[int, int, int]:
    """(start in the image, stop in the image, padding before) of one axis of a uniform-coverage
    crop: the offset is uniform over the ``size + crop - 1`` placements that overlap the image."""
    if size <= crop:
        return 0, size, 0
    offset = int(np.random.randint(-(crop - 1), size))
    start, stop = max(offset, 0), min(offset + crop, size)
    return start, stop, start - offset


@TRANSFORMS.register_module()
class UniformCoverageCrop(BaseTransform):
    """A ``crop_size`` (h, w) crop whose placement covers every pixel with the same probability
    (see the module docstring). Uses numpy's global generator, as mmseg's ``RandomCrop`` does (the
    Runner seeds it); ``cat_max_ratio`` is accepted and ignored (a click map has no class ratio)."""

    def __init__(self, crop_size, cat_max_ratio: float = 1.0, ignore_index: int = IGNORE_INDEX):
        super().__init__()
        self.crop_size = (crop_size, crop_size) if isinstance(crop_size, int) else tuple(crop_size)
        self.ignore_index = ignore_index

    def _crop(self, array: np.ndarray, rows, cols, fill) -> np.ndarray:
        (y0, y1, pad_top), (x0, x1, pad_left) = rows, cols
        part = array[y0:y1, x0:x1]
        height = self.crop_size[0] if array.shape[0] > self.crop_size[0] else array.shape[0]
        width = self.crop_size[1] if array.shape[1] > self.crop_size[1] else array.shape[1]
        if part.shape[:2] == (height, width):
            return part
        out = np.full((height, width) + array.shape[2:], fill, dtype=array.dtype)
        out[pad_top:pad_top + part.shape[0], pad_left:pad_left + part.shape[1]] = part
        return out

    def transform(self, results: dict) -> dict:
        height, width = results["img"].shape[:2]
        rows = _axis_window(height, self.crop_size[0])
        cols = _axis_window(width, self.crop_size[1])
        results["img"] = self._crop(results["img"], rows, cols, 0)
        for key in results.get("seg_fields", []):
            results[key] = self._crop(results[key], rows, cols, self.ignore_index)
        results["img_shape"] = results["img"].shape[:2]
        return results


@TRANSFORMS.register_module()
class CountClicksInLoss(BaseTransform):
    """``clicks_in_loss``: labelled pixels left in the label map at the end of the pipeline, next to
    ``clicks_total`` (the non-void clicks that entered it, set by ``LoadSparseLabels``)."""

    def transform(self, results: dict) -> dict:
        results["clicks_in_loss"] = int((results["gt_seg_map"] != IGNORE_INDEX).sum())
        return results


def _swap(step: dict) -> dict:
    kind = step.get("type")
    step = copy.deepcopy(step)
    if kind == "RandomCrop":
        return dict(step, type="UniformCoverageCrop")
    if kind == "Resize":
        return dict(step, type="ClickPreservingResize")
    if kind == "RandomResize":
        return dict(step, resize_type="ClickPreservingResize")
    if kind in PIXEL_EXACT:
        return step
    raise UsageError(f"the preset's data.train_augment step {kind!r} may move or drop clicks and has no "
                     f"click-aware version here: use RandomResize, Resize, RandomCrop, RandomFlip or "
                     f"photometric steps ({', '.join(sorted(PIXEL_EXACT - {'RandomFlip'}))})")


def click_augment(steps: list[dict]) -> list[dict]:
    """The preset's training augmentation for click labels (see the module docstring)."""
    return [_swap(step) for step in steps]
