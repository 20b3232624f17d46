"""``balent``: BalEntAcq, balanced-entropy acquisition."""
from __future__ import annotations

import torch

from strategies.balent import balent_scores
from strategies.posterior import PixelPosterior
from strategies.registry import STRATEGIES


@STRATEGIES.register_module(name="balent")
class BalEntStrategy:
    """Balanced entropy BalEntAcq, exact Beta entropies (Woo, ICLR 2023; Didari et al. 2024).

    "Active Learning in Bayesian Neural Networks with Balanced Entropy Learning Principle" and
    "Bayesian Active Learning for Semantic Segmentation" (arXiv 2408.01694): per-class Beta fits
    by moments, BalEnt = (S + H) / (H + log 2); score 1/BalEnt for positive BalEnt, BalEnt for
    negative, -inf for degenerate pixels.
    """

    min_mc_samples = 2  # built on the MC variance / BALD: constant with one sample

    def score(self, post: PixelPosterior,
              generator: torch.Generator | None = None) -> torch.Tensor:
        return balent_scores(post)  # [..., H, W] float64
