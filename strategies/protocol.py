"""What a strategy is: any object with ``score(post, generator=None) -> Tensor [..., H, W]``.

Structural, not inherited: plugin authors subclass nothing. Higher score = acquire first.
Optional attributes, read with a default:

- ``needs_samples`` (False): set it to True to receive the raw MC samples in ``PixelPosterior.samples``;
- ``min_mc_samples`` (1): the fewest MC samples the score means anything with. A score built on
  the variance or on BALD is constant with one sample (the variance is 0), so such a strategy
  declares 2 and the harness refuses ``--mc-samples 1`` for it before any training.
"""
from __future__ import annotations

from typing import Protocol, runtime_checkable

import torch

from strategies.posterior import PixelPosterior


@runtime_checkable
class Strategy(Protocol):
    """The strategy protocol (for type checkers and ``isinstance``)."""

    def score(self, post: PixelPosterior,
              generator: torch.Generator | None = None) -> torch.Tensor:
        """Per-pixel scores ``[..., H, W]`` for ``post`` (higher = acquire first)."""
        ...


def needs_samples(strategy: object) -> bool:
    """Whether ``strategy`` must receive raw samples (build the accumulator with keep_samples)."""
    return bool(getattr(strategy, "needs_samples", False))


def min_mc_samples(strategy: object) -> int:
    """The fewest MC samples ``strategy`` needs (its ``min_mc_samples``, default 1)."""
    return int(getattr(strategy, "min_mc_samples", 1))
