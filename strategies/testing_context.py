"""What ``strategies.testing`` gives a strategy that asks for more than the posterior: synthetic
features and a synthetic pool context, fixed by a seed, and a stand-in that lets the score checks
call a pool-aware or feature-based strategy as a plain one."""
from __future__ import annotations

import torch

from strategies.pixel_features import PixelFeatures
from strategies.pool_context import PoolContext
from strategies.protocol import (
    for_cycle,
    needs_features,
    needs_labelled_features,
    needs_samples,
    per_image_call,
    pool_aware,
)

FEATURE_DIM = 4  # d of the synthetic feature maps
LABELLED = 12  # labelled pixels of the synthetic pool
POOL_IMAGES = 3


def synthetic_features(size: tuple[int, int], *, seed: int = 0, device: str = "cpu",
                       dtype: torch.dtype = torch.float64) -> PixelFeatures:
    """A random ``[FEATURE_DIM, ceil(H/2), ceil(W/2)]`` feature map bilinearly resized to ``size``:
    the same for the same size and seed, whatever the posterior."""
    height, width = int(size[0]), int(size[1])
    g = torch.Generator().manual_seed(seed + 1000)
    feature_map = torch.randn(FEATURE_DIM, (height + 1) // 2, (width + 1) // 2, generator=g, dtype=torch.float64)
    return PixelFeatures.resized(feature_map.to(device, dtype), (height, width))


def synthetic_pool(strategy: object, num_classes: int, *, seed: int = 0, device: str = "cpu") -> PoolContext:
    """A pool whose labels miss one class and are uneven over the others; with labelled features
    (``LABELLED x FEATURE_DIM``) when ``strategy`` declares ``needs_labelled_features``."""
    g = torch.Generator().manual_seed(seed + 2000)
    counts = torch.randint(1, 60, (num_classes,), generator=g)
    counts[int(torch.randint(num_classes, (1,), generator=g))] = 0
    labels = torch.repeat_interleave(torch.arange(num_classes), counts)
    features = (torch.randn(LABELLED, FEATURE_DIM, generator=g, dtype=torch.float64).to(device)
                if needs_labelled_features(strategy) else None)
    return PoolContext.from_labels(labels, num_classes, POOL_IMAGES, features)


class InContext:
    """``strategy`` as a plain strategy: every ``score`` begins a fresh cycle on the synthetic pool
    and passes synthetic features of the posterior's size (one image at a time, then)."""

    def __init__(self, strategy: object, *, seed: int = 0, device: str = "cpu") -> None:
        self.strategy, self.seed, self.device = strategy, seed, device
        self.needs_samples = needs_samples(strategy)
        self.needs_features = needs_features(strategy)

    def begin(self, num_classes: int) -> object:
        """A fresh per-cycle object (the strategy itself when it is not pool-aware)."""
        pool = synthetic_pool(self.strategy, num_classes, seed=self.seed, device=self.device) \
            if pool_aware(self.strategy) else None
        return for_cycle(self.strategy, pool)

    def extra(self, size: tuple[int, int]) -> dict:
        """The keyword arguments the harness adds for one image of ``size``."""
        features = synthetic_features(size, seed=self.seed, device=self.device) if self.needs_features else None
        return per_image_call(self.strategy, features)

    def score(self, post, generator=None):
        return self.begin(post.num_classes).score(post, generator=generator, **self.extra(post.score_shape[-2:]))

    def __repr__(self) -> str:
        return f"{self.strategy!r} (in a synthetic pool context)"
