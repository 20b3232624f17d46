"""``margin``: smallest gap between the two most likely classes."""
from __future__ import annotations

import torch

from strategies.posterior import PixelPosterior
from strategies.registry import STRATEGIES
from strategies.uncertainty import margin


@STRATEGIES.register_module(name="margin")
class MarginStrategy:
    """Smallest margin between the top-2 mean class probabilities (Scheffer et al., IDA 2001).

    Score = -(p_(1) - p_(2)) on the MC-mean prediction ("Active Hidden Markov Models for
    Information Extraction").
    """

    def score(self, post: PixelPosterior,
              generator: torch.Generator | None = None) -> torch.Tensor:
        return margin(post.mean)  # [..., H, W]
