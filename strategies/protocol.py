"""What a strategy is: any object with ``score(post, generator=None) -> Tensor [..., H, W]``.

Structural, not inherited: plugin authors subclass nothing. Higher score = acquire first.
Optional attributes, read with a default (a strategy that declares none of them is called exactly
as before and pays for nothing it does not ask for):

- ``needs_samples`` (False): set it to True to receive the raw MC samples in ``PixelPosterior.samples``;
- ``min_mc_samples`` (1): the fewest MC samples the score means anything with. A score built on
  the variance or on BALD is constant with one sample (the variance is 0), so such a strategy
  declares 2 and the harness refuses ``--mc-samples 1`` for it before any training.
- ``needs_features`` (False): True to receive, with each image's posterior, the feature map that
  enters the classifier as a ``strategies.PixelFeatures`` (feature resolution, and the mapping of
  every image pixel to it), as the keyword ``features=`` of ``score`` (or ``choose``). The harness
  then scores one image at a time (the posterior is ``[C, H, W]``).
- ``begin_cycle(pool)``: a pool-aware strategy. Called once per cycle, before the cycle's first
  image, with a ``strategies.PoolContext`` (the labelled set of the whole pool: its class counts;
  with ``needs_labelled_features`` (False) also every labelled pixel's feature vector). It returns
  the object that scores, or chooses, this cycle's images; whatever that object keeps from image
  to image lives for one cycle. The harness calls it for every image of the pool in pool order.
- ``chooses_clicks`` (False): the object ``begin_cycle`` returns (or the strategy itself) picks each
  image's clicks with ``choose(post, excluded, n, generator=None[, features=...])`` instead of
  scoring pixels for a selector: it returns a LongTensor ``[k, 2]`` of ``(y, x)``, ``k = min(n,
  pixels not excluded)``, no excluded pixel and none twice (the selector contract). Such a strategy
  makes its own per-image choice, so a run of it is planned with the default selection only.
"""
from __future__ import annotations

from typing import Protocol, runtime_checkable

import torch

from strategies.pixel_features import PixelFeatures
from strategies.pool_context import PoolContext
from strategies.posterior import PixelPosterior


@runtime_checkable
class Strategy(Protocol):
    """The strategy protocol (for type checkers and ``isinstance``)."""

    def score(self, post: PixelPosterior,
              generator: torch.Generator | None = None) -> torch.Tensor:
        """Per-pixel scores ``[..., H, W]`` for ``post`` (higher = acquire first)."""
        ...


@runtime_checkable
class PoolAwareStrategy(Protocol):
    """A strategy whose per-image choice depends on the pool's labelled set (``begin_cycle``)."""

    def begin_cycle(self, pool: PoolContext) -> object:
        """The object that scores (``score``) or chooses (``choose``) this cycle's images."""
        ...


@runtime_checkable
class ClickChooser(Protocol):
    """What a strategy that declares ``chooses_clicks`` gives the harness for each image."""

    def choose(self, post: PixelPosterior, excluded: torch.Tensor, n: int,
               generator: torch.Generator | None = None,
               features: PixelFeatures | None = None) -> torch.Tensor:
        """``(y, x)`` of up to ``n`` pixels of one image not in ``excluded`` (bool ``[H, W]``),
        LongTensor ``[k, 2]`` on the posterior's device."""
        ...


def needs_samples(strategy: object) -> bool:
    """Whether ``strategy`` must receive raw samples (build the accumulator with keep_samples)."""
    return bool(getattr(strategy, "needs_samples", False))


def min_mc_samples(strategy: object) -> int:
    """The fewest MC samples ``strategy`` needs (its ``min_mc_samples``, default 1)."""
    return int(getattr(strategy, "min_mc_samples", 1))


def needs_features(strategy: object) -> bool:
    """Whether ``strategy`` receives each image's ``PixelFeatures`` (its ``needs_features``)."""
    return bool(getattr(strategy, "needs_features", False))


def needs_labelled_features(strategy: object) -> bool:
    """Whether ``strategy``'s pool context carries the labelled pixels' feature vectors."""
    return bool(getattr(strategy, "needs_labelled_features", False))


def pool_aware(strategy: object) -> bool:
    """Whether ``strategy`` is given the pool context each cycle (it has ``begin_cycle``)."""
    return callable(getattr(strategy, "begin_cycle", None))


def chooses_clicks(strategy: object) -> bool:
    """Whether ``strategy`` picks each image's clicks itself (``choose``) instead of scoring pixels."""
    return bool(getattr(strategy, "chooses_clicks", False))


def scores_alone(strategy: object) -> bool:
    """Whether ``strategy`` scores a bare posterior (``score(post, generator)``), needing neither
    features nor the pool, and leaving the choice of clicks to a selector."""
    return not (needs_features(strategy) or pool_aware(strategy) or chooses_clicks(strategy))


def for_cycle(strategy: object, pool: PoolContext | None) -> object:
    """The object that handles one cycle's images: ``strategy.begin_cycle(pool)`` for a pool-aware
    strategy, else ``strategy`` itself."""
    if not pool_aware(strategy):
        return strategy
    if pool is None:
        raise ValueError(f"{strategy!r} is pool-aware: begin_cycle needs a PoolContext")
    return strategy.begin_cycle(pool)


def per_image_call(strategy: object, features: PixelFeatures | None) -> dict:
    """The extra keyword arguments of ``score``/``choose`` for one image: ``features`` only for
    a strategy that declares ``needs_features`` (any other is called exactly as before)."""
    return {"features": features} if needs_features(strategy) else {}
