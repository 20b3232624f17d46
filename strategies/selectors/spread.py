"""``spread``: greedy top-n with at least r pixels between the clicks of one image."""
from __future__ import annotations

import math
import numbers

import torch

from strategies.registry import SELECTORS
from strategies.selection import empty_selection, ranking_inputs, to_coords, top_k_ranked

DEFAULT_RADIUS = 8.0  # two logit cells at output stride 4 (DeepLabV3+ and FPN heads)


def shrink_radius(radius: float) -> float:
    """The fallback step: half the radius; at 1 or below it excludes nothing but the pick, so 0."""
    half = radius / 2.0
    return half if half > 1.0 else 0.0


def square_reach(radius: float) -> int:
    """Largest |dy| (or |dx|) of a pixel strictly closer than ``radius`` to the centre."""
    return max(math.ceil(radius) - 1, 0)


def far_enough(ys: torch.Tensor, xs: torch.Tensor, centres: list[tuple[int, int]],
               radius: float) -> torch.Tensor:
    """Bool ``[K]``: point ``(ys, xs)`` at distance >= ``radius`` from every centre."""
    keep = torch.ones(ys.shape[0], dtype=torch.bool, device=ys.device)
    for y, x in centres:
        dy, dx = ys - y, xs - x
        keep &= dy * dy + dx * dx >= radius * radius
    return keep


def greedy_spread(coords: torch.Tensor, k: int, radius: float) -> torch.Tensor:
    """Positions of ``k`` rows of ``coords`` (``[K, 2]``, rank order, ``K >= k``) picked greedily.

    Each step takes the best row not yet picked and at distance >= radius from every pick. When
    none is left, the radius shrinks (``shrink_radius``) and the step is retried.
    """
    ys, xs = (coords[:, i].to(torch.float64).contiguous() for i in (0, 1))  # exact below 2^53
    picked: list[int] = []
    centres: list[tuple[int, int]] = []
    free = torch.ones(coords.shape[0], dtype=torch.bool, device=coords.device)
    while len(picked) < k:
        best = int(torch.argmax(free.to(torch.uint8)))  # the first free row, if there is one
        if not bool(free[best]):
            radius = shrink_radius(radius)
            free = far_enough(ys, xs, centres, radius)
            free[picked] = False
            continue
        picked.append(best)
        centres.append((int(coords[best, 0]), int(coords[best, 1])))
        free &= far_enough(ys, xs, centres[-1:], radius)
        free[best] = False
    return torch.tensor(picked, dtype=torch.long, device=coords.device)


@SELECTORS.register_module(name="spread")
class Spread:
    """Spread: greedy top-n with at least r pixels (8) between the clicks of one image.

    Repeatedly takes the best remaining unlabelled pixel (non-finite scores last, ties drawn by
    the generator) and excludes every pixel at Euclidean distance < r from it. When the image has
    no eligible pixel left before n clicks, r is halved (a radius of 1 or less becomes 0, plain
    top-n of the rest) and the greedy goes on, so it always returns min(n, unlabelled) clicks.
    """

    def __init__(self, r: float = DEFAULT_RADIUS) -> None:
        if isinstance(r, bool) or not isinstance(r, numbers.Real) or not 0.0 <= r < math.inf:
            raise ValueError(f"spread: r is the minimum distance in pixels between two clicks "
                             f"of an image and must be a finite number >= 0, got {r!r}")
        self.r = float(r)

    def select(self, scores: torch.Tensor, labelled: torch.Tensor | None, n: int,
               generator: torch.Generator | None = None) -> torch.Tensor:
        candidates, key = ranking_inputs(scores, labelled, n, caller="spread")
        k = min(n, key.numel())
        if k == 0:
            return empty_selection(scores.device)
        # A click rules out at most D = (2 * reach + 1)^2 pixels, itself included. With fewer
        # than k clicks made, fewer than k * D of the k * D best pixels are ruled out, so the
        # first free one of them is the best eligible pixel of the whole image: the greedy on
        # this shortlist is exact (O(H * W) to find it, O(k * shortlist) after). The fallback
        # only runs when the shortlist is every unlabelled pixel.
        shortlist = min(key.numel(), k * (2 * square_reach(self.r) + 1) ** 2)
        order = top_k_ranked(key, shortlist, generator)
        coords = to_coords(candidates[order], scores.shape[1])  # [shortlist, 2], rank order
        return coords[greedy_spread(coords, k, self.r)]

    def __repr__(self) -> str:
        return f"Spread(r={self.r})"
