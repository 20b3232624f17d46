"""The uncertainty record of the pool at one cycle: means over its unlabelled pixels of the
epistemic (BALD), aleatoric (expected entropy) and posterior (MJEnt = S + H) uncertainty.

Sums stay on the device as float64 tensors and come back to the host once, in ``result``.
"""
from __future__ import annotations

import torch

from strategies.uncertainty import decomposition

UNCERTAINTY_COLUMNS = ("epistemic", "aleatoric", "posterior")


class PoolRecord:
    def __init__(self) -> None:
        self.sums: dict[str, torch.Tensor] = {}
        self.count = 0

    def add(self, post, unlabelled: torch.Tensor) -> None:
        """Fold in one image's posterior over its ``unlabelled`` pixels (bool [H, W])."""
        for name, value in decomposition(post).items():
            total = torch.where(unlabelled, value.double(), 0.0).sum()
            self.sums[name] = total if name not in self.sums else self.sums[name] + total
        self.count = self.count + unlabelled.sum()

    def result(self) -> dict[str, float]:
        count = max(int(self.count), 1)
        return {name: float(self.sums[name]) / count if name in self.sums else float("nan")
                for name in UNCERTAINTY_COLUMNS}
