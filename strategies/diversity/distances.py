"""Squared Euclidean distances from points to centres, the centres taken a chunk at a time so that
memory stays ``points x chunk`` however many centres there are."""
from __future__ import annotations

from collections.abc import Iterable

import torch

CHUNK = 4096  # centres per chunk: a [K, CHUNK] block of distances at a time


def squared_distances(points: torch.Tensor, centres: torch.Tensor) -> torch.Tensor:
    """``[K, M]``: |x_i - c_j|^2 as |x|^2 + |c|^2 - 2 x.c, clamped at 0 (rounding)."""
    cross = points @ centres.T
    out = (points * points).sum(1, keepdim=True) + (centres * centres).sum(1).unsqueeze(0)
    return out.sub_(cross, alpha=2.0).clamp_(min=0.0)


def squared_distances_to_one(points: torch.Tensor, centre: torch.Tensor) -> torch.Tensor:
    """``[K]``: |x_i - c|^2 for one centre ``[d]``, from the differences (no cancellation)."""
    diff = points - centre.unsqueeze(0)
    return (diff * diff).sum(1)


def min_squared_distances(points: torch.Tensor, centres: Iterable[torch.Tensor] | torch.Tensor,
                          chunk: int = CHUNK) -> torch.Tensor:
    """``[K]``: each point's squared distance to its nearest centre; +inf where there is none.

    ``centres``: one ``[M, d]`` tensor or several (e.g. one per image so far), never concatenated.
    """
    if isinstance(centres, torch.Tensor):
        centres = [centres]
    best = torch.full((points.shape[0],), float("inf"), dtype=points.dtype, device=points.device)
    for block in centres:
        block = block.to(points.device, points.dtype)
        for start in range(0, block.shape[0], chunk):
            part = squared_distances(points, block[start:start + chunk])  # [K, <=chunk]
            torch.minimum(best, part.min(1).values, out=best)
    return best
