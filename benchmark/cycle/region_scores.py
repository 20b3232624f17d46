"""Pixel scores -> region scores, and one image's region picks: how a strategy's per-pixel score map
ranks superpixels without any change to the strategy.

A region's score aggregates the scores of its *selectable* pixels (not labelled yet, not passed
over as void) that are finite; non-finite scores mean "cannot score, rank last" in the strategy
protocol, so they are left out instead of deciding the aggregate. A region with a selectable pixel
but no finite score gets -inf (ranked last); one without a selectable pixel cannot be picked.

- ``mean`` (the default): the average score. Not biased by the region's size: the maximum of
  more noisy pixels is higher, so ``max`` favours large regions; the average does not grow with
  the region.
- ``max``: the highest score (a region holding one very uncertain pixel ranks high).
- ``topk_mean``: the average of the ``topk`` highest scores (all of them in a smaller region):
  between the two.

Sums are taken in float64.
"""
from __future__ import annotations

import torch

NEG_INF = float("-inf")


def region_scores(scores: torch.Tensor, regions: torch.Tensor, selectable: torch.Tensor,
                  aggregation: str = "mean", topk: int = 8) -> tuple[torch.Tensor, torch.Tensor]:
    """``(values [R] float64, pickable [R] bool)`` of the ``R = regions.max() + 1`` regions.

    ``scores`` ``[H, W]`` (higher = acquire first), ``regions`` ``[H, W]`` integer ids ``0..R-1``,
    ``selectable`` bool ``[H, W]``.
    """
    if scores.shape != regions.shape or scores.shape != selectable.shape:
        raise ValueError(f"scores {tuple(scores.shape)}, regions {tuple(regions.shape)} and selectable "
                         f"{tuple(selectable.shape)} must share one [H, W] shape")
    reg = regions.reshape(-1).long()
    sel = selectable.reshape(-1).to(torch.bool)
    values = scores.reshape(-1).to(torch.float64)
    n_regions = int(reg.max()) + 1 if reg.numel() else 0
    pickable = torch.bincount(reg[sel], minlength=n_regions) > 0
    finite = sel & torch.isfinite(values)
    r, v = reg[finite], values[finite]
    counts = torch.bincount(r, minlength=n_regions)
    if aggregation == "max":
        out = torch.full((n_regions,), NEG_INF, dtype=torch.float64, device=values.device)
        return out.scatter_reduce(0, r, v, reduce="amax", include_self=True), pickable
    if aggregation == "topk_mean":
        if topk < 1:
            raise ValueError(f"topk_mean needs topk >= 1, got {topk}")
        by_score = torch.argsort(v, descending=True, stable=True)
        r, v = r[by_score], v[by_score]
        by_region = torch.argsort(r, stable=True)  # regions in order, each one's scores descending
        r, v = r[by_region], v[by_region]
        first = torch.cumsum(counts, 0) - counts  # where each region's run starts
        keep = torch.arange(r.numel(), device=r.device) - first[r] < topk
        r, v = r[keep], v[keep]
        counts = torch.bincount(r, minlength=n_regions)
    elif aggregation != "mean":
        raise ValueError(f"unknown aggregation {aggregation!r}: use mean, max or topk_mean")
    sums = torch.zeros(n_regions, dtype=torch.float64, device=values.device).index_add_(0, r, v)
    mean = sums / counts.clamp(min=1)
    return torch.where(counts > 0, mean, torch.full_like(mean, NEG_INF)), pickable


def pick_regions(selector, scores: torch.Tensor, regions: torch.Tensor, excluded: torch.Tensor, n: int,
                 generator: torch.Generator | None, aggregation: str, topk: int) -> torch.Tensor:
    """The selectable pixels ``[k, 2]`` (y, x; row-major) of the ``n`` regions ``selector`` picks.

    The selector ranks the region scores as a ``[1, R]`` map (regions without a selectable pixel
    count as labelled), so its rules hold for regions: non-finite last, seeded ties.
    """
    regions = regions.to(scores.device).long()
    selectable = ~excluded.to(scores.device, torch.bool)
    values, pickable = region_scores(scores, regions, selectable, aggregation, topk)
    chosen = selector.select(values[None, :], ~pickable[None, :], n, generator)[:, 1]
    member = torch.zeros(values.numel() + 1, dtype=torch.bool, device=scores.device)
    member[chosen] = True
    return torch.nonzero(member[regions] & selectable)
