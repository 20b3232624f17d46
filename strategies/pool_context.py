"""What a pool-aware strategy is given once per cycle, before its first image: the labelled set of
the whole pool, as this cycle's model sees it.

The harness builds a ``PoolContext`` only for a strategy that has ``begin_cycle`` (see
``strategies.protocol``), and fills ``labelled_features`` only for one that declares
``needs_labelled_features``: that costs one feature pass over the pool per cycle (a backbone and
decoder pass per image, no MC samples) and keeps ``L x d`` floats, L the labelled pixels of the
pool (n clicks x images x cycles so far, plus the initial ones).
"""
from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class PoolContext:
    """The labelled set of the pool at the start of one cycle."""

    class_counts: torch.Tensor  # [C] int64: labelled pixels per class (void and unanswered clicks not counted)
    images: int  # images in the pool: how many per-image choices follow
    labelled_features: torch.Tensor | None = None  # [L, d]: each labelled pixel's feature vector

    def __post_init__(self) -> None:
        if self.class_counts.dim() != 1:
            raise ValueError(f"class_counts must be [C], got {tuple(self.class_counts.shape)}")
        if self.labelled_features is not None and self.labelled_features.dim() != 2:
            raise ValueError(f"labelled_features must be [L, d], got {tuple(self.labelled_features.shape)}")

    @property
    def num_classes(self) -> int:
        return self.class_counts.shape[0]

    @classmethod
    def from_labels(cls, labels: torch.Tensor, num_classes: int, images: int,
                    labelled_features: torch.Tensor | None = None) -> PoolContext:
        """The context of labelled pixels whose answers are ``labels`` (any int tensor; values
        outside [0, C), such as the void label 255 or an unanswered click, are not counted)."""
        labels = labels.reshape(-1).to(torch.long)
        known = labels[(labels >= 0) & (labels < num_classes)]
        counts = torch.bincount(known.cpu(), minlength=num_classes)
        return cls(class_counts=counts, images=images, labelled_features=labelled_features)
