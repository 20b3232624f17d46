"""``topn``: the n best unlabelled pixels of each image (the harness's default rule)."""
from __future__ import annotations

import torch

from strategies.registry import SELECTORS
from strategies.selection import select_top_n


@SELECTORS.register_module(name="topn")
class TopN:
    """Top-n: the n highest-scoring unlabelled pixels of each image (the default).

    Exactly ``strategies.select_top_n``: non-finite scores last, ties broken by the generator.
    Clicks may sit side by side when the scores peak in one spot.
    """

    def select(self, scores: torch.Tensor, labelled: torch.Tensor | None, n: int,
               generator: torch.Generator | None = None) -> torch.Tensor:
        return select_top_n(scores, labelled, n, generator)

    def __repr__(self) -> str:
        return "TopN()"
