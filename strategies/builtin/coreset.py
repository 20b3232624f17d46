"""``coreset``: greedy k-centre in feature space against every labelled pixel of the pool."""
from __future__ import annotations

import torch

from strategies.diversity.candidates import candidate_pixels
from strategies.diversity.distances import min_squared_distances
from strategies.diversity.growing_rows import GrowingRows
from strategies.diversity.k_center import greedy_k_center
from strategies.pixel_features import PixelFeatures
from strategies.pool_context import PoolContext
from strategies.posterior import PixelPosterior
from strategies.registry import STRATEGIES
from strategies.selection import empty_selection, to_coords

DEFAULT_CANDIDATES = 1024


@STRATEGIES.register_module(name="coreset")
class CoreSetStrategy:
    """CoreSet: greedy k-centre on classifier features, against all labelled pixels (Sener & Savarese 2018).

    "Active Learning for Convolutional Neural Networks: A Core-Set Approach" (ICLR 2018). Each
    cycle the centres are the feature vectors of every labelled pixel of the pool (this cycle's
    model); image by image, in pool order, it takes the image's n pixels that greedy k-centre
    picks among ``candidates`` pixels of the image (a seeded uniform subsample of the selectable
    ones, all of them when fewer), each pick becoming a centre for the rest of the cycle.
    """

    needs_features = True
    needs_labelled_features = True
    chooses_clicks = True

    def __init__(self, candidates: int = DEFAULT_CANDIDATES) -> None:
        if isinstance(candidates, bool) or not isinstance(candidates, int) or candidates < 1:
            raise ValueError(f"coreset's candidates must be a positive integer, got {candidates!r}")
        self.candidates = candidates

    def begin_cycle(self, pool: PoolContext) -> KCenterCycle:
        return KCenterCycle(pool.labelled_features, self.candidates)

    def __repr__(self) -> str:
        return f"CoreSetStrategy(candidates={self.candidates})"


class KCenterCycle:
    """One cycle of ``coreset``: the centres so far (the labelled set, then each image's picks)."""

    def __init__(self, labelled: torch.Tensor | None, candidates: int) -> None:
        self.labelled = None if labelled is None or len(labelled) == 0 else labelled  # [L, d]
        self.picked = GrowingRows()  # [picks so far, d]
        self.candidates = candidates

    def centres(self) -> list[torch.Tensor]:
        return [c for c in (self.labelled, self.picked.tensor()) if c is not None]

    def choose(self, post: PixelPosterior, excluded: torch.Tensor, n: int,
               generator: torch.Generator | None = None,
               features: PixelFeatures | None = None) -> torch.Tensor:
        if features is None:
            raise ValueError("coreset needs the image's features (it declares needs_features)")
        pool = candidate_pixels(excluded, self.candidates, generator)  # [K], seeded order
        k = min(n, pool.numel())
        if k == 0:
            return empty_selection(post.device)
        points = features.at(pool)  # [K, d]
        centres = self.centres()
        d2 = min_squared_distances(points, centres) if centres else None
        picked = greedy_k_center(points, k, d2)
        self.picked.append(points.index_select(0, picked))
        return to_coords(pool[picked], excluded.shape[1]).to(post.device)
