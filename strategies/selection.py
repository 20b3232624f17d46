"""Per-image top-n selection shared by every strategy: the one place that ranks scores.

Higher score = acquire first. Labelled pixels are never picked; non-finite scores (NaN, +inf,
-inf) rank after every finite one; ties are broken by the seeded generator, never by memory order.
"""
from __future__ import annotations

import torch

from strategies.rng import permutation


def select_top_n(scores: torch.Tensor, labelled: torch.Tensor | None, n: int,
                 generator: torch.Generator | None = None) -> torch.Tensor:
    """Top-``n`` unlabelled pixels of one image as a LongTensor ``[k, 2]`` of ``(y, x)``.

    ``scores`` is ``[H, W]``; ``labelled`` a bool ``[H, W]`` mask (None: nothing labelled).
    ``k = min(n, number of unlabelled pixels)``; rows are in rank order, on the scores' device.
    """
    if scores.dim() != 2:
        raise ValueError(f"select_top_n takes one image's scores [H, W], got {tuple(scores.shape)}")
    if n < 0:
        raise ValueError(f"n must be non-negative, got {n}")
    height, width = scores.shape
    flat = scores.reshape(-1)  # [H*W]
    if not flat.is_floating_point():
        flat = flat.to(torch.float64)
    if labelled is None:
        candidates = torch.arange(flat.numel(), device=scores.device)
    else:
        if labelled.shape != scores.shape:
            raise ValueError(f"labelled mask shape {tuple(labelled.shape)} differs from the "
                             f"scores' {tuple(scores.shape)}")
        candidates = torch.nonzero(~labelled.to(scores.device, torch.bool).reshape(-1)).reshape(-1)
    values = flat[candidates]
    key = torch.where(torch.isfinite(values), values, torch.full_like(values, float("-inf")))
    k = min(n, key.numel())
    if k == 0:
        return torch.empty(0, 2, dtype=torch.long, device=scores.device)
    # The set: every key above the k-th largest, then a seeded uniform choice among the keys equal
    # to it (O(N) with topk, instead of a random permutation and a full sort of the image).
    threshold = torch.topk(key, k).values[-1]
    above = torch.nonzero(key > threshold).reshape(-1)
    tied = torch.nonzero(key == threshold).reshape(-1)
    tied = tied[permutation(tied.numel(), generator, device=scores.device)[:k - above.numel()]]
    chosen = torch.cat([above, tied])
    # Rank order: a random order first, then a stable sort, so equal keys come in random order.
    chosen = chosen[permutation(k, generator, device=scores.device)]
    chosen = chosen[torch.sort(key[chosen], descending=True, stable=True).indices]
    picked = candidates[chosen]  # [k]
    return torch.stack((picked // width, picked % width), dim=1)
