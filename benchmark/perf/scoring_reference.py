"""The inputs and the independent side of the strategy-scoring benchmark: seeded synthetic
MC-dropout samples, and every built-in strategy's score written out plainly in float64 from the
method (docs/writing_a_strategy.md), independently of ``strategies/``."""
from __future__ import annotations

import math

import torch


class Samples:
    """Sample k is softmax(base + noise_k) over C classes, float32, from seeded generators only."""

    def __init__(self, classes: int, height: int, width: int, device: str, seed: int = 0) -> None:
        g = torch.Generator().manual_seed(seed)
        self.shape, self.device, self.seed = (classes, height, width), device, seed
        self.base = (3.0 * torch.randn(self.shape, generator=g)).to(device)  # [C, H, W] logits

    def __call__(self, k: int) -> torch.Tensor:
        g = torch.Generator().manual_seed(self.seed * 1_000_003 + k + 1)
        noise = torch.randn(self.shape, generator=g).to(self.device)
        return torch.softmax(self.base + noise, dim=0)  # [C, H, W] float32


# the strategies written out below (the built-in ones that score pixels from the MC samples alone)
REFERENCED = ("random", "entropy", "margin", "bald", "pbald", "balent", "balent_ref")


def reference_scores(name: str, probs: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Scores [H, W] of strategy ``name`` from the stacked samples ``probs`` [m, C, H, W]."""
    p = probs.to(torch.float64)
    m = p.shape[0]
    mean = p.mean(0)  # [C, H, W]
    var = p.var(0, correction=1) if m > 1 else torch.zeros_like(mean)
    big_h = -torch.special.xlogy(mean, mean).sum(0)  # [H, W]
    big_e = -torch.special.xlogy(p, p).sum(1).mean(0)  # [H, W]
    shape = tuple(big_h.shape)
    if name == "random":
        return torch.rand(shape, generator=generator, dtype=torch.float64).to(p.device)
    if name == "entropy":
        return big_h
    if name == "margin":
        top2 = mean.topk(2, dim=0).values
        return top2[1] - top2[0]
    bald = (big_h - big_e).clamp(min=1e-9)
    if name == "bald":
        return bald
    if name == "pbald":
        u = torch.rand(shape, generator=generator, dtype=torch.float64).to(p.device)
        return torch.log(bald) - torch.log(-torch.log(u.clamp(min=torch.finfo(u.dtype).tiny)))
    if name in ("balent", "balent_ref"):
        return _reference_balent(mean, var, big_h, floored=name == "balent_ref")
    raise KeyError(f"no reference for strategy {name!r}")


def _reference_balent(mean: torch.Tensor, var: torch.Tensor, big_h: torch.Tensor,
                      floored: bool) -> torch.Tensor:
    """Steps 1-6 of the method straight from the formula (log B from lgamma; float64), with the
    top class's complement summed from the other classes and saturated pixels at -inf (see
    docs/writing_a_strategy.md, "BalEnt at saturation")."""
    top = mean.argmax(0, keepdim=True)
    is_top = torch.zeros_like(mean, dtype=torch.bool).scatter_(0, top, True)
    others = torch.where(is_top, 0.0, mean).sum(0)  # [H, W]: the top class's complement
    mean = torch.where(is_top, 1 - others, mean)  # (means of softmax samples sum to 1)
    p, v = mean.clamp(min=1e-9), var.clamp(min=1e-9)
    q = torch.where(is_top, others, 1 - p)
    alpha = p * p * q / v - p
    beta = q / p * alpha
    valid = (alpha > 1e-12 * p) & (beta > 0)  # invalid, or at the Beta's variance limit up to rounding
    saturated = (is_top & ~valid & (var < 1e-9) & (p > 0.5)).any(0)
    a, b = torch.where(valid, alpha, 1.0), torch.where(valid, beta, 1.0)
    log_b = torch.lgamma(a + 1) + torch.lgamma(b) - torch.lgamma(a + b + 1)
    if floored:  # the public reference code: log(B + 1e-32)
        log_b = torch.log(torch.exp(log_b) + 1e-32)
    h = (log_b - a * torch.digamma(a + 1) - (b - 1) * torch.digamma(b)
         + (a + b - 1) * torch.digamma(a + b + 1))
    s = torch.where(valid, torch.clamp(p * h, max=0.0), 0.0).sum(0)
    balent = (s + big_h) / (big_h + math.log(2))
    score = torch.where(balent > 0, 1 / balent, balent)
    return torch.where(torch.isfinite(balent) & (balent != 0) & ~saturated, score, -math.inf)
