"""Class-balanced weights from label counts: the inverse effective number of samples of Cui, Jia,
Lin, Song and Belongie ("Class-Balanced Loss Based on Effective Number of Samples", CVPR 2019).

A class seen n times has effective number E(n) = (1 - beta^n) / (1 - beta): about n while n is
small against 1 / (1 - beta), saturating at 1 / (1 - beta) beyond. Its weight is 1 / E(n + 1),
the weights scaled to a mean of 1 over the classes (Cui et al. scale them to sum to C). The + 1 is
ours: a class never labelled (n = 0, where E = 0) weighs what a class labelled once weighs, the
most any class does. beta = 0.999 (Cui et al. use 0.9 to 0.9999): with the few hundred labels per
class of sparse annotation the weights are nearly the inverse label frequency.
"""
from __future__ import annotations

import math

import torch

DEFAULT_BETA = 0.999


def effective_number(counts: torch.Tensor, beta: float = DEFAULT_BETA) -> torch.Tensor:
    """E(n) = (1 - beta^n) / (1 - beta) per class, float64 (beta = 0: 1 for every n > 0)."""
    counts = counts.to(torch.float64)
    if beta == 0.0:
        return (counts > 0).to(torch.float64)
    return -torch.expm1(counts * math.log(beta)) / (1.0 - beta)


def class_balanced_weights(counts: torch.Tensor, beta: float = DEFAULT_BETA) -> torch.Tensor:
    """``[C]`` float64 weights 1 / E(n_c + 1), scaled to a mean of 1 (see the module docstring)."""
    if not 0.0 <= beta < 1.0:
        raise ValueError(f"beta must be in [0, 1), got {beta}")
    if counts.dim() != 1 or counts.numel() == 0:
        raise ValueError(f"counts must be a non-empty [C] tensor, got shape {tuple(counts.shape)}")
    if bool((counts < 0).any()):
        raise ValueError("class counts cannot be negative")
    weights = 1.0 / effective_number(counts + 1, beta)
    return weights / weights.mean()
