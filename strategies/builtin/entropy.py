"""``entropy``: maximum predictive entropy."""
from __future__ import annotations

import torch

from strategies.posterior import PixelPosterior
from strategies.registry import STRATEGIES


@STRATEGIES.register_module(name="entropy")
class EntropyStrategy:
    """Predictive entropy H of the MC-mean prediction (Shannon 1948; Settles 2009 survey).

    Score = -sum_c p_c log p_c with p the mean of the MC samples.
    """

    def score(self, post: PixelPosterior,
              generator: torch.Generator | None = None) -> torch.Tensor:
        return post.predictive_entropy.clone()  # [..., H, W]
