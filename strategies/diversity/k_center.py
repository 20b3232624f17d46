"""Greedy k-centre: the CoreSet selection of Sener and Savarese (ICLR 2018, "Active Learning for
Convolutional Neural Networks: A Core-Set Approach"), Gonzalez's 2-approximation (1985).

Repeatedly take the point farthest from every centre so far (its distance to the nearest centre,
the largest), then make it a centre. Deterministic given the points' order: of equal distances the
first point wins, so give the points in a seeded random order (``candidates.candidate_pixels``).
"""
from __future__ import annotations

import torch

from strategies.diversity.distances import squared_distances_to_one


def greedy_k_center(points: torch.Tensor, k: int, d2: torch.Tensor | None = None) -> torch.Tensor:
    """Indices ``[k]`` into ``points [K, d]`` in the order greedy k-centre takes them.

    ``d2 [K]``: each point's squared distance to the centres that exist already (the labelled set,
    earlier picks); None (or +inf everywhere) when there are none: the first pick is then point 0.
    ``0 <= k <= K``.
    """
    count = points.shape[0]
    if not 0 <= k <= count:
        raise ValueError(f"k must be in [0, {count}], got {k}")
    if d2 is None:
        d2 = torch.full((count,), float("inf"), dtype=points.dtype, device=points.device)
    d2 = d2.to(points.device, points.dtype).clone()
    taken = torch.zeros(count, dtype=torch.bool, device=points.device)
    picks = []
    for _ in range(k):
        key = torch.where(taken, torch.full_like(d2, float("-inf")), d2)
        key = torch.nan_to_num(key, nan=float("-inf"), posinf=float("inf"), neginf=float("-inf"))
        j = int(torch.argmax(key))  # the first of equal maxima
        picks.append(j)
        taken[j] = True
        torch.minimum(d2, squared_distances_to_one(points, points[j]), out=d2)
    return torch.tensor(picks, dtype=torch.long, device=points.device)
