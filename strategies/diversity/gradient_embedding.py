"""BADGE's gradient embeddings in factorised form (Ash et al., ICLR 2020).

A pixel's embedding is the gradient of the cross-entropy at its hypothesised label (the predicted
class) with respect to the last layer's weight: g = a (x) f, the outer product of a = p - e_yhat
(mean probabilities minus the one-hot of the predicted class, [C]) and the pixel's feature vector
f ([d]). Held as the pair (a, f), n embeddings take n (C + d) floats instead of n C d, and every
quantity k-means++ needs follows from the factors:

    |g_i|^2 = |a_i|^2 |f_i|^2
    |g_i - g_j|^2 = |a_i|^2 |f_i|^2 + |a_j|^2 |f_j|^2 - 2 (a_i . a_j)(f_i . f_j)

(the inner product of two outer products is the product of the inner products). The classifier's
bias is left out, as in BADGE's code. ``explicit`` builds the (n, C d) matrix for tests and the
perf comparison only.
"""
from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from functools import cached_property

import torch

from strategies.diversity.distances import CHUNK


@dataclass(frozen=True)
class GradientEmbeddings:
    """n gradient embeddings a_i (x) f_i, kept as their factors ``a [n, C]`` and ``f [n, d]``."""

    a: torch.Tensor  # [n, C]
    f: torch.Tensor  # [n, d]

    def __post_init__(self) -> None:
        if self.a.dim() != 2 or self.f.dim() != 2 or self.a.shape[0] != self.f.shape[0]:
            raise ValueError(f"factors must be [n, C] and [n, d], got {tuple(self.a.shape)} and "
                             f"{tuple(self.f.shape)}")

    @classmethod
    def from_predictions(cls, mean: torch.Tensor, features: torch.Tensor) -> GradientEmbeddings:
        """From mean probabilities ``[n, C]`` and feature vectors ``[n, d]``: a = p - e_argmax p."""
        a = mean.to(features.dtype).clone()
        a[torch.arange(a.shape[0], device=a.device), a.argmax(1)] -= 1.0
        return cls(a, features)

    def __len__(self) -> int:
        return self.a.shape[0]

    def take(self, index: torch.Tensor) -> GradientEmbeddings:
        return GradientEmbeddings(self.a.index_select(0, index), self.f.index_select(0, index))

    @cached_property
    def _squared_norms(self) -> torch.Tensor:
        return torch.einsum("ij,ij->i", self.a, self.a) * torch.einsum("ij,ij->i", self.f, self.f)

    def squared_norms(self) -> torch.Tensor:
        """``[n]``: |g_i|^2 = |a_i|^2 |f_i|^2 (computed once)."""
        return self._squared_norms

    def squared_distances(self, other: GradientEmbeddings) -> torch.Tensor:
        """``[n, m]``: |g_i - h_j|^2 from the factors, clamped at 0 (rounding)."""
        cross = (self.a @ other.a.T) * (self.f @ other.f.T)
        out = self.squared_norms().unsqueeze(1) + other.squared_norms().unsqueeze(0)
        return out.sub_(cross, alpha=2.0).clamp_(min=0.0)

    def squared_distances_to(self, j: int) -> torch.Tensor:
        """``[n]``: every embedding's squared distance to embedding j (two mat-vecs, O(n (C + d)))."""
        norms = self.squared_norms()
        cross = (self.a @ self.a[j]) * (self.f @ self.f[j])
        return (norms + norms[j]).sub_(cross, alpha=2.0).clamp_(min=0.0)

    def min_squared_distances(self, centres: Iterable[GradientEmbeddings],
                              chunk: int = CHUNK) -> torch.Tensor:
        """``[n]``: each embedding's squared distance to its nearest centre; +inf with none."""
        best = torch.full((len(self),), float("inf"), dtype=self.a.dtype, device=self.a.device)
        for block in centres:
            block = GradientEmbeddings(block.a.to(self.a.device, self.a.dtype),
                                       block.f.to(self.f.device, self.f.dtype))
            for start in range(0, len(block), chunk):
                part = block.take(torch.arange(start, min(start + chunk, len(block)), device=self.a.device))
                torch.minimum(best, self.squared_distances(part).min(1).values, out=best)
        return best

    def explicit(self) -> torch.Tensor:
        """``[n, C d]``: the embeddings written out (tests and the perf comparison only)."""
        return (self.a.unsqueeze(2) * self.f.unsqueeze(1)).reshape(len(self), -1)
