"""``class_balanced``: predictive entropy weighted toward the classes rarest among the labels."""
from __future__ import annotations

import torch

from strategies.class_weights import DEFAULT_BETA, class_balanced_weights
from strategies.pool_context import PoolContext
from strategies.posterior import PixelPosterior
from strategies.registry import STRATEGIES
from strategies.uncertainty import CLASS_DIM


def weighted_entropy(post: PixelPosterior, weights: torch.Tensor | None) -> torch.Tensor:
    """H x sum_c w_c p_c: the predictive entropy times the class weights averaged over the pixel's
    mean probabilities (the weight of its predicted probability mass); ``[..., H, W]``."""
    entropy = post.predictive_entropy.double()
    if weights is None:
        return entropy
    w = weights.to(post.device, torch.float64).reshape(-1, 1, 1)  # [C, 1, 1]: classes are dim -3
    return entropy * (post.mean.double() * w).sum(CLASS_DIM)


class ClassBalancedCycle:
    """One cycle of ``class_balanced``: the class weights of the labels at the cycle's start."""

    def __init__(self, weights: torch.Tensor) -> None:
        self.weights = weights

    def score(self, post: PixelPosterior, generator: torch.Generator | None = None) -> torch.Tensor:
        return weighted_entropy(post, self.weights)


@STRATEGIES.register_module(name="class_balanced")
class ClassBalancedStrategy:
    """Entropy reweighted toward the rarest labelled classes: class-balanced weights (Cui et al. 2019).

    Score = H x sum_c w_c p_c, with w_c = 1 / E(n_c + 1) the inverse effective number of the
    class's labelled pixels so far ("Class-Balanced Loss Based on Effective Number of Samples",
    CVPR 2019; E(n) = (1 - beta^n) / (1 - beta), beta = 0.999), scaled to a mean of 1. Called
    without a pool context (no labels known) every weight is 1 and the score is the entropy H.
    """

    def __init__(self, beta: float = DEFAULT_BETA) -> None:
        if not (isinstance(beta, (int, float)) and 0.0 <= beta < 1.0):
            raise ValueError(f"class_balanced's beta must be in [0, 1), got {beta!r}")
        self.beta = float(beta)

    def begin_cycle(self, pool: PoolContext) -> ClassBalancedCycle:
        return ClassBalancedCycle(class_balanced_weights(pool.class_counts, self.beta))

    def score(self, post: PixelPosterior, generator: torch.Generator | None = None) -> torch.Tensor:
        return weighted_entropy(post, None)

    def __repr__(self) -> str:
        return f"ClassBalancedStrategy(beta={self.beta})"
