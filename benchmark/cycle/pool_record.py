"""The uncertainty record of the pool at one cycle, over its unlabelled pixels:

- the decomposition means: epistemic (BALD), aleatoric (expected entropy), posterior (MJEnt = S + H);
- BalEnt's regime: the shares of pixels with positive BalEnt, negative BalEnt (saturated ones
  included) and degenerate fits, the saturated share on its own, and the median MC standard
  deviation of each pixel's top class.

``pixels_per_image = 0`` records every unlabelled pixel (exact). A positive value records a
uniform sample of that many unlabelled pixels per image (drawn from the image's own generator)
and weighs each image by its number of unlabelled pixels: unbiased means and shares, at a cost
independent of the image size. BalEnt's posterior term, when the strategy already computed it for
the image, is gathered at the sample instead of computed again (``PixelPosterior.take``).
Sums stay on the device and come back to the host once, in ``result``.
"""
from __future__ import annotations

import numpy as np
import torch

from strategies.uncertainty import NEGATIVE, POSITIVE, SATURATED, balent_regime, decomposition, top_class_std

UNCERTAINTY_COLUMNS = ("epistemic", "aleatoric", "posterior")
REGIME_COLUMNS = ("balent_positive_share", "balent_negative_share", "balent_degenerate_share",
                  "balent_saturated_share", "top_class_std_median")
RECORD_COLUMNS = UNCERTAINTY_COLUMNS + REGIME_COLUMNS


def weighted_median(values: np.ndarray, weights: np.ndarray) -> float:
    """The smallest value at which the cumulative weight reaches half the total (NaN if empty)."""
    if values.size == 0:
        return float("nan")
    order = np.argsort(values, kind="stable")
    cumulative = np.cumsum(weights[order])
    return float(values[order][np.searchsorted(cumulative, 0.5 * cumulative[-1])])


class PoolRecord:
    def __init__(self, pixels_per_image: int = 0) -> None:
        self.pixels_per_image = pixels_per_image
        self.sums: dict[str, torch.Tensor] = {}
        self.weight = 0.0
        self.stds: list[tuple[torch.Tensor, float]] = []

    def _sum(self, name: str, total: torch.Tensor) -> None:
        self.sums[name] = total if name not in self.sums else self.sums[name] + total

    def add(self, post, unlabelled: torch.Tensor, generator: torch.Generator | None = None) -> None:
        """Fold in one image's posterior [C, H, W] over its ``unlabelled`` pixels (bool [H, W])."""
        index = unlabelled.reshape(-1).nonzero().squeeze(1)
        count = int(index.numel())
        if count == 0:
            return
        if 0 < self.pixels_per_image < count:
            pick = torch.randperm(count, generator=generator, device=generator.device if generator else "cpu")
            index = index[pick[:self.pixels_per_image].to(index.device)]
        part = post.take(index)
        scale = count / index.numel()  # each recorded pixel stands for this many unlabelled pixels
        for name, value in decomposition(part).items():
            self._sum(name, value.double().sum() * scale)
        regime = balent_regime(part).reshape(-1)
        for name, code in (("balent_positive_share", POSITIVE), ("balent_saturated_share", SATURATED)):
            self._sum(name, (regime == code).sum().double() * scale)
        self._sum("balent_negative_share", ((regime == NEGATIVE) | (regime == SATURATED)).sum().double() * scale)
        self.stds.append((top_class_std(part).reshape(-1), scale))
        self.weight += count

    def to(self, device) -> "PoolRecord":
        """This record with its tensors on ``device`` (to send it to another process)."""
        self.sums = {name: total.to(device) for name, total in self.sums.items()}
        self.stds = [(std.to(device), scale) for std, scale in self.stds]
        return self

    def absorb(self, other: "PoolRecord") -> None:
        """Fold in what ``other`` recorded, as if its images had been added here after ours (the
        same additions in the same order: absorbing one-image records image by image gives the
        record of adding the images themselves, to the bit)."""
        for name, total in other.sums.items():
            self._sum(name, total.to(self.sums[name].device) if name in self.sums else total)
        self.weight += other.weight
        self.stds += other.stds

    def result(self) -> dict[str, float]:
        """The record's columns (NaN when no pixel was recorded)."""
        if self.weight == 0:
            return dict.fromkeys(RECORD_COLUMNS, float("nan"))
        out = {name: float(self.sums[name]) / self.weight for name in self.sums}
        out["balent_degenerate_share"] = 1.0 - out["balent_positive_share"] - out["balent_negative_share"]
        values = np.concatenate([s.double().cpu().numpy() for s, _ in self.stds])
        weights = np.concatenate([np.full(s.numel(), w) for s, w in self.stds])
        out["top_class_std_median"] = weighted_median(values, weights)
        return {name: out[name] for name in RECORD_COLUMNS}
