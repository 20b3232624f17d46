"""What one cycle's clicks look like: class diversity, rare-class share and spatial spread.

Pure functions of the oracle's answers and the click coordinates (numpy; torch tensors are
accepted and copied to the host). No files, no mmseg. They make the claim that an acquisition
rule picks "informative, diverse samples" measurable per cycle:

- ``query_class_entropy``: entropy (nats) of the class histogram of the clicks;
- ``query_rare_share``: share of the clicks that land on the dataset's rarest classes
  (``rare_classes``: those that together make up the least frequent 10% of labelled pixels);
- ``query_spread``: mean distance from a click to the nearest other click of its image, divided
  by the image diagonal.

Void clicks (label ``ignore_index``, 255) and unanswered ones (negative labels, e.g. the file
oracle's pending -1) carry no class and are left out of the first two.
"""
from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np

from benchmark.records.schema import IGNORE_INDEX

RARE_SHARE = 0.10
DIAGNOSTIC_COLUMNS = ("query_class_entropy", "query_rare_share", "query_spread")


def _as_array(values: Any) -> np.ndarray:
    """A numpy copy of an array-like or a (possibly GPU) torch tensor."""
    if hasattr(values, "detach"):
        values = values.detach().cpu().numpy()
    return np.asarray(values)


def _answered(labels: Any, ignore_index: int) -> np.ndarray:
    """The clicks' class labels, void and unanswered (negative) ones left out. # [k']"""
    labels = _as_array(labels).reshape(-1).astype(np.int64)
    return labels[(labels != ignore_index) & (labels >= 0)]


def _count_items(class_pixel_counts: Mapping | Any,
                 ignore_index: int | None) -> list[tuple[int, float]]:
    if isinstance(class_pixel_counts, Mapping):
        items = [(int(c), float(v)) for c, v in class_pixel_counts.items()]
    else:
        items = [(c, float(v)) for c, v in enumerate(_as_array(class_pixel_counts).reshape(-1))]
    items = [(c, v) for c, v in items if c != ignore_index]
    bad = [(c, v) for c, v in items if not (math.isfinite(v) and v >= 0)]
    if bad:
        raise ValueError(f"class pixel counts must be finite and >= 0, got {bad[:5]}")
    return items


def rare_classes(class_pixel_counts: Mapping | Any, share: float = RARE_SHARE,
                 ignore_index: int | None = IGNORE_INDEX) -> set[int]:
    """The rarest classes that together hold at most ``share`` of the labelled pixels.

    ``class_pixel_counts`` is a sequence indexed by class id or a ``{class id: count}`` mapping
    (the ``ignore_index`` entry, if any, is dropped; None keeps every entry). Classes are taken
    from the rarest up while the running total stays <= ``share`` x all pixels. Edge cases:

    - classes with equal counts are taken together or not at all (no order among equals);
    - a class with no pixel is rarer than any other and is always included (it adds 0);
    - when the rarest class with pixels alone exceeds ``share``, only the zero-count classes are
      rare (often none): a balanced dataset has no rare class;
    - when no pixel is counted at all the set is empty (no class is rarer than another).
    """
    if not 0.0 <= share <= 1.0:
        raise ValueError(f"share must be in [0, 1], got {share!r}")
    items = _count_items(class_pixel_counts, ignore_index)
    total = sum(v for _, v in items)
    if total == 0:
        return set()
    budget = share * total * (1 + 1e-12)  # a share that is exactly reached counts as within
    rare: set[int] = set()
    running = 0.0
    for count in sorted({v for _, v in items}):
        group = {c for c, v in items if v == count}
        running += count * len(group)
        if running > budget:
            break
        rare |= group
    return rare


def query_class_entropy(labels: Any, ignore_index: int = IGNORE_INDEX) -> float:
    """Entropy (nats) of the clicks' class histogram; NaN when no click has a class.

    0 when every click hits one class, log(K) when they spread evenly over K classes.
    """
    answered = _answered(labels, ignore_index)
    if answered.size == 0:
        return math.nan
    _, counts = np.unique(answered, return_counts=True)
    p = counts / counts.sum()
    return float(-(p * np.log(p)).sum()) + 0.0  # + 0.0 turns -0.0 into 0.0


def query_rare_share(labels: Any, rare: set[int] | Any,
                     ignore_index: int = IGNORE_INDEX) -> float:
    """Share of the clicks with a class that hit a class in ``rare``; NaN when none has a class.

    0 for every cycle when ``rare`` is empty (e.g. ``rare_classes`` of a balanced dataset).
    """
    answered = _answered(labels, ignore_index)
    if answered.size == 0:
        return math.nan
    rare_ids = np.fromiter((int(c) for c in rare), dtype=np.int64)
    return float(np.isin(answered, rare_ids).mean())


def _nearest_other(points: np.ndarray) -> np.ndarray:
    """Distance from each point ``[k, 2]`` to its nearest other point (k >= 2; O(k^2))."""
    diff = points[:, None, :] - points[None, :, :]  # [k, k, 2]
    dist = np.sqrt((diff ** 2).sum(-1))
    np.fill_diagonal(dist, np.inf)
    return dist.min(axis=1)


def query_spread(picks_by_image: Mapping[Any, Any],
                 shapes: Mapping[Any, tuple[int, int]]) -> float:
    """Mean over clicks of (distance to the nearest other click of the image / image diagonal).

    ``picks_by_image`` maps an image id to its clicks ``[k, 2]`` of ``(y, x)``; ``shapes`` maps
    it to ``(height, width)``. Clicks alone in their image have no neighbour and are left out;
    NaN when no image has two clicks. Two clicks on one pixel are at distance 0.
    """
    ratios = []
    for image_id, picks in picks_by_image.items():
        points = _as_array(picks).astype(np.float64).reshape(-1, 2)
        if points.shape[0] < 2:
            continue
        if image_id not in shapes:
            raise KeyError(f"query_spread: no (height, width) for image {image_id!r}")
        height, width = shapes[image_id]
        ratios.append(_nearest_other(points) / math.hypot(height, width))
    return float(np.concatenate(ratios).mean()) if ratios else math.nan


def query_diagnostics(picks_by_image: Mapping[Any, Any], labels_by_image: Mapping[Any, Any],
                      shapes: Mapping[Any, tuple[int, int]], rare: set[int],
                      ignore_index: int = IGNORE_INDEX) -> dict[str, float]:
    """The three diagnostics of one cycle, keyed by ``DIAGNOSTIC_COLUMNS``.

    ``labels_by_image[i]`` holds the oracle's answers for ``picks_by_image[i]`` (same order).
    """
    chunks = []
    for image_id, picks in picks_by_image.items():
        if image_id not in labels_by_image:
            raise KeyError(f"query_diagnostics: no labels for the clicks of image {image_id!r}")
        answers = _as_array(labels_by_image[image_id]).reshape(-1)
        if answers.size != _as_array(picks).reshape(-1, 2).shape[0]:
            raise ValueError(f"query_diagnostics: image {image_id!r} has {answers.size} labels "
                             f"for {_as_array(picks).reshape(-1, 2).shape[0]} clicks")
        chunks.append(answers)
    labels = np.concatenate(chunks) if chunks else np.empty(0, dtype=np.int64)
    return {
        "query_class_entropy": query_class_entropy(labels, ignore_index),
        "query_rare_share": query_rare_share(labels, rare, ignore_index),
        "query_spread": query_spread(picks_by_image, shapes),
    }
