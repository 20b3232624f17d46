"""``pixelpick``: n clicks drawn uniformly among each image's top-q unlabelled pixels."""
from __future__ import annotations

import math
import numbers

import torch

from strategies.registry import SELECTORS
from strategies.rng import permutation
from strategies.selection import empty_selection, ranking_inputs, to_coords, top_k_ranked


def top_share_size(q: float, unlabelled: int, n: int) -> int:
    """Pool size: ceil(q * unlabelled), at least n, at most unlabelled.

    The product is rounded to 9 decimals before the ceiling, so that 0.07 * 100 gives 7, not 8.
    """
    return min(unlabelled, max(n, math.ceil(round(q * unlabelled, 9))))


@SELECTORS.register_module(name="pixelpick")
class PixelPick:
    """PixelPick: n clicks drawn uniformly among the top q (5%) of each image's unlabelled pixels.

    Shin et al., "All you need are a few pixels", ICCV-W 2021. The pool is the
    ceil(q * unlabelled) best unlabelled pixels (at least n; ties at the cut drawn by the
    generator; non-finite scores last), and n of them are drawn without replacement. PixelPick's
    public code takes int(q * H * W) pixels with the labelled ones scored lowest; the pools differ
    only by the labelled share of the image. The clicks come in rank order.
    """

    def __init__(self, q: float = 0.05) -> None:
        if isinstance(q, bool) or not isinstance(q, numbers.Real) or not 0.0 < q <= 1.0:
            raise ValueError(f"pixelpick: q is the share of unlabelled pixels to draw from and "
                             f"must be in (0, 1], got {q!r}")
        self.q = float(q)

    def select(self, scores: torch.Tensor, labelled: torch.Tensor | None, n: int,
               generator: torch.Generator | None = None) -> torch.Tensor:
        candidates, key = ranking_inputs(scores, labelled, n, caller="pixelpick")
        k = min(n, key.numel())
        if k == 0:
            return empty_selection(scores.device)
        pool = top_k_ranked(key, top_share_size(self.q, key.numel(), n), generator)
        drawn = permutation(pool.numel(), generator, device=key.device)[:k]
        chosen = pool[torch.sort(drawn).values]  # the drawn clicks, back in rank order
        return to_coords(candidates[chosen], scores.shape[1])

    def __repr__(self) -> str:
        return f"PixelPick(q={self.q})"
