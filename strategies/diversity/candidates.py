"""Which pixels of one image a diversity strategy considers: a seeded subsample of those that may
be picked, in a seeded random order (so ties later fall to the generator, never to memory order)."""
from __future__ import annotations

import torch

from strategies.rng import permutation


def candidate_pixels(excluded: torch.Tensor, limit: int,
                     generator: torch.Generator | None) -> torch.Tensor:
    """Flat indices (row-major) of up to ``limit`` pixels not in ``excluded`` (bool ``[H, W]``),
    drawn uniformly without replacement and listed in a uniformly random order: LongTensor ``[K]``,
    ``K = min(limit, pixels not excluded)``."""
    if excluded.dim() != 2:
        raise ValueError(f"excluded must be one image's mask [H, W], got {tuple(excluded.shape)}")
    if limit < 1:
        raise ValueError(f"the candidate limit must be positive, got {limit}")
    free = torch.nonzero(~excluded.to(torch.bool).reshape(-1)).reshape(-1)  # [U]
    order = permutation(free.numel(), generator, device=free.device)
    return free[order[:limit]]
