"""``balent_ref``: BalEntAcq as the public reference code computes it (floored Beta function)."""
from __future__ import annotations

import torch

from strategies.balent import balent_scores
from strategies.posterior import PixelPosterior
from strategies.registry import STRATEGIES


@STRATEGIES.register_module(name="balent_ref")
class BalEntRefStrategy:
    """BalEntAcq with the reference code's floored Beta function B + 1e-32 (Woo, ICLR 2023).

    Identical to ``balent`` except that log B(a, b) is computed as log(B(a, b) + 1e-32): for
    concentrated posteriors the floor makes the Beta entropy hugely positive, the class term
    drops out (S ~ 0), and confident pixels rank first. Kept to measure what that changes.
    """

    min_mc_samples = 2  # built on the MC variance / BALD: constant with one sample

    def score(self, post: PixelPosterior,
              generator: torch.Generator | None = None) -> torch.Tensor:
        return balent_scores(post, floored=True)  # [..., H, W] float64
