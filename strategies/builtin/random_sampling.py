"""``random``: the passive-learning baseline."""
from __future__ import annotations

import torch

from strategies.posterior import PixelPosterior
from strategies.registry import STRATEGIES
from strategies.rng import uniform


@STRATEGIES.register_module(name="random")
class RandomStrategy:
    """Uniformly random pixels (passive baseline; Settles 2009, Active Learning Literature Survey).

    I.i.d. uniform scores drawn from the run's seeded generator, so top-n is a uniform subset.
    """

    def score(self, post: PixelPosterior,
              generator: torch.Generator | None = None) -> torch.Tensor:
        return uniform(post.score_shape, generator, device=post.device)  # [..., H, W]
