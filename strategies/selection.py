"""Per-image top-n selection shared by every strategy: the one place that ranks scores.

Higher score = acquire first. Labelled pixels are never picked; non-finite scores (NaN, +inf,
-inf) rank after every finite one; ties are broken by the seeded generator, never by memory order.
The selectors (``strategies.selectors``) build on the two helpers below: ``ranking_inputs``
(validation, unlabelled candidates, ranking key) and ``top_k_ranked`` (the seeded top-k).
"""
from __future__ import annotations

import torch

from strategies.rng import permutation


def ranking_inputs(scores: torch.Tensor, labelled: torch.Tensor | None, n: int,
                   caller: str = "select_top_n") -> tuple[torch.Tensor, torch.Tensor]:
    """Validate one image's inputs; return ``(candidates, key)``, both ``[U]``.

    ``candidates`` are the flat indices (row-major, ``y * W + x``) of the unlabelled pixels;
    ``key`` their scores with every non-finite value replaced by -inf (floating point).
    """
    if scores.dim() != 2:
        raise ValueError(f"{caller} takes one image's scores [H, W], got {tuple(scores.shape)}")
    if n < 0:
        raise ValueError(f"n must be non-negative, got {n}")
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
    return candidates, key


def top_k_ranked(key: torch.Tensor, k: int, generator: torch.Generator | None) -> torch.Tensor:
    """Positions in ``key`` of its ``k`` largest values, in rank order (LongTensor ``[k]``).

    Equal keys at the cut are chosen uniformly by the generator, and equal keys inside the
    result come in a random order. ``0 < k <= key.numel()``.
    """
    # The set: every key above the k-th largest, then a seeded uniform choice among the keys equal
    # to it (O(N) with topk, instead of a random permutation and a full sort of the image).
    threshold = torch.topk(key, k).values[-1]
    above = torch.nonzero(key > threshold).reshape(-1)
    tied = torch.nonzero(key == threshold).reshape(-1)
    tied = tied[permutation(tied.numel(), generator, device=key.device)[:k - above.numel()]]
    chosen = torch.cat([above, tied])
    # Rank order: a random order first, then a stable sort, so equal keys come in random order.
    chosen = chosen[permutation(k, generator, device=key.device)]
    return chosen[torch.sort(key[chosen], descending=True, stable=True).indices]


def to_coords(flat_indices: torch.Tensor, width: int) -> torch.Tensor:
    """Row-major flat pixel indices ``[k]`` -> ``(y, x)`` rows ``[k, 2]``."""
    return torch.stack((flat_indices // width, flat_indices % width), dim=1)


def empty_selection(device: torch.device | str) -> torch.Tensor:
    """No pixels: a LongTensor ``[0, 2]``."""
    return torch.empty(0, 2, dtype=torch.long, device=device)


def select_top_n(scores: torch.Tensor, labelled: torch.Tensor | None, n: int,
                 generator: torch.Generator | None = None) -> torch.Tensor:
    """Top-``n`` unlabelled pixels of one image as a LongTensor ``[k, 2]`` of ``(y, x)``.

    ``scores`` is ``[H, W]``; ``labelled`` a bool ``[H, W]`` mask (None: nothing labelled).
    ``k = min(n, number of unlabelled pixels)``; rows are in rank order, on the scores' device.
    """
    candidates, key = ranking_inputs(scores, labelled, n)
    k = min(n, key.numel())
    if k == 0:
        return empty_selection(scores.device)
    return to_coords(candidates[top_k_ranked(key, k, generator)], scores.shape[1])
