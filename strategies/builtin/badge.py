"""``badge``: k-means++ seeding on gradient embeddings, in factorised form."""
from __future__ import annotations

import torch

from strategies.diversity.candidates import candidate_pixels
from strategies.diversity.gradient_embedding import GradientEmbeddings
from strategies.diversity.growing_rows import GrowingRows
from strategies.diversity.kmeans_pp import kmeanspp_seeding
from strategies.pixel_features import PixelFeatures
from strategies.pool_context import PoolContext
from strategies.posterior import PixelPosterior
from strategies.registry import STRATEGIES
from strategies.selection import empty_selection, to_coords

DEFAULT_CANDIDATES = 1024


@STRATEGIES.register_module(name="badge")
class BADGEStrategy:
    """BADGE: k-means++ seeding on gradient embeddings (Ash et al., ICLR 2020), factorised.

    "Deep Batch Active Learning by Diverse, Uncertain Gradient Lower Bounds". A pixel's embedding
    is (p - e_yhat) (x) f: the MC-mean probabilities minus the one-hot of the predicted class,
    times the pixel's classifier feature vector, held as the two factors (n (C + d) floats, not
    n C d). Image by image, in pool order, k-means++ seeding picks the image's n pixels among
    ``candidates`` (a seeded uniform subsample of the selectable ones): D^2 sampling against this
    cycle's picks so far, the first pick of the cycle the largest embedding.
    """

    needs_features = True
    chooses_clicks = True

    def __init__(self, candidates: int = DEFAULT_CANDIDATES) -> None:
        if isinstance(candidates, bool) or not isinstance(candidates, int) or candidates < 1:
            raise ValueError(f"badge's candidates must be a positive integer, got {candidates!r}")
        self.candidates = candidates

    def begin_cycle(self, pool: PoolContext) -> KMeansPPCycle:
        return KMeansPPCycle(self.candidates)

    def __repr__(self) -> str:
        return f"BADGEStrategy(candidates={self.candidates})"


class KMeansPPCycle:
    """One cycle of ``badge``: the embeddings picked so far, as factors (n (C + d) floats)."""

    def __init__(self, candidates: int) -> None:
        self.a, self.f = GrowingRows(), GrowingRows()  # the picks' factors: [picks, C], [picks, d]
        self.candidates = candidates

    def choose(self, post: PixelPosterior, excluded: torch.Tensor, n: int,
               generator: torch.Generator | None = None,
               features: PixelFeatures | None = None) -> torch.Tensor:
        if features is None:
            raise ValueError("badge needs the image's features (it declares needs_features)")
        pool = candidate_pixels(excluded, self.candidates, generator)  # [K], seeded order
        k = min(n, pool.numel())
        if k == 0:
            return empty_selection(post.device)
        mean = post.mean.reshape(post.num_classes, -1).index_select(1, pool.to(post.device)).T  # [K, C]
        points = features.at(pool)  # [K, d]
        embeddings = GradientEmbeddings.from_predictions(mean.to(points.device), points)
        d2 = None
        if len(self.a):
            d2 = embeddings.min_squared_distances([GradientEmbeddings(self.a.tensor(), self.f.tensor())])
        picked = kmeanspp_seeding(k, embeddings.squared_norms(), embeddings.squared_distances_to,
                                  generator, d2)
        chosen = embeddings.take(picked)
        self.a.append(chosen.a)
        self.f.append(chosen.f)
        return to_coords(pool[picked], excluded.shape[1]).to(post.device)
