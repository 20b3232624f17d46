"""BalEnt's acquisition value written out from the method, independently of ``strategies/``: the
references that the GPU check (``perf --gpu-check``) and the CPU kernels' tests compare ``balent``
against.

Both follow docs/writing_a_strategy.md ("BalEnt at saturation"): the top class's complement is
the sum of the other classes' means (when the means sum to 1 within 1%), and a pixel whose
dominant class has a fit that is invalid only because the variance clamp raised its variance is
saturated (S = -inf). ``balent_acquisition_scipy`` is the straight float64 formula (off by up to
~2e-7 from lgamma/digamma cancellation); ``balent_acquisition_mpmath`` evaluates one pixel at 40
digits. ``accuracy_samples`` are the pixel groups both are checked on.
"""
from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import torch
from scipy.special import digamma, gammaln

FLOOR, TOLERANCE, SIMPLEX_TOLERANCE = 1e-9, 1e-12, 1e-2  # the method's constants, restated
ACCURACY_BOUND = 1e-12  # how far the kernels may be from the 40-digit values (relative)


def softmax_samples(m: int, shape: tuple[int, ...], seed: int, *, spread: float = 1.0,
                    scale: float = 2.0, dtype: torch.dtype = torch.float64) -> torch.Tensor:
    """MC-dropout-like probabilities [m, *shape]: softmax(shared logits + per-sample noise), from
    a seeded CPU generator (the tests' samples too)."""
    g = torch.Generator().manual_seed(seed)
    base = scale * torch.randn(shape, generator=g, dtype=torch.float64)
    noise = spread * torch.randn((m, *shape), generator=g, dtype=torch.float64)
    return torch.softmax(base + noise, dim=-3).to(dtype)


def accuracy_samples() -> torch.Tensor:
    """[20, 5, 8, 40] float64: confident, uncertain, constant, near-degenerate, ordinary pixels."""
    groups = [softmax_samples(20, (5, 8, 8), 1, spread=0.01, scale=6.0),
              softmax_samples(20, (5, 8, 8), 2, spread=2.0, scale=0.1),
              softmax_samples(1, (5, 8, 8), 3, scale=3.0).expand(20, 5, 8, 8),
              softmax_samples(20, (5, 8, 8), 4, spread=1e-4, scale=8.0),
              softmax_samples(20, (5, 8, 8), 5)]
    return torch.cat(groups, dim=-1)


def _mean_and_complement(mean: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Means and complements [C, H, W], float64, with the top class's complement summed from
    the other classes; and the index of the top class [H, W]."""
    mean = mean.astype(np.float64)
    top = mean.argmax(0)
    is_top = np.arange(mean.shape[0])[:, None, None] == top[None]
    others = np.where(is_top, 0.0, mean).sum(0)
    p_top = np.take_along_axis(mean, top[None], 0)[0]
    others = np.where(np.abs(others + p_top - 1) <= SIMPLEX_TOLERANCE, others, 1 - p_top)
    return (np.where(is_top, 1 - others, mean), np.where(is_top, others, 1 - mean), is_top)


def balent_acquisition_scipy(mean: np.ndarray, var: np.ndarray) -> np.ndarray:
    """BalEnt acquisition values [H, W] from mean, var [C, H, W], straight from the formula."""
    p, q, is_top = _mean_and_complement(mean)
    p = np.maximum(p, FLOOR)
    v = np.maximum(var, FLOOR)
    alpha = p * p * q / v - p
    beta = q / p * alpha
    valid = (alpha > TOLERANCE * p) & (beta > 0)  # at the Beta's variance limit up to rounding: invalid
    saturated = (is_top & ~valid & (var < FLOOR) & (p > 0.5)).any(0)
    a = np.where(valid, alpha, 1.0)
    b = np.where(valid, beta, 1.0)
    h = (gammaln(a + 1) + gammaln(b) - gammaln(a + b + 1) - a * digamma(a + 1)
         - (b - 1) * digamma(b) + (a + b - 1) * digamma(a + b + 1))
    s = np.where(valid, np.minimum(0.0, p * h), 0.0).sum(0)
    with np.errstate(divide="ignore", invalid="ignore"):
        big_h = -np.where(mean > 0, mean * np.log(mean), 0.0).sum(0)
        balent = (s + big_h) / (big_h + math.log(2))
        score = np.where(balent > 0, 1 / balent, np.where(balent < 0, balent, -np.inf))
    return np.where(saturated, -np.inf, score)


def balent_acquisition_mpmath(mean: Sequence[float], var: Sequence[float], dps: int = 40) -> float:
    """The acquisition value of ONE pixel (the means and variances of its C classes) at ``dps``
    digits: the Beta fit by moments, S = sum min(0, p h), BalEnt = (S + H) / (H + log 2), then
    1/BalEnt, BalEnt or -inf."""
    import mpmath

    with mpmath.workdps(dps):
        means = [mpmath.mpf(float(mu)) for mu in mean]
        top = max(range(len(means)), key=lambda c: means[c])
        others = mpmath.fsum(means[c] for c in range(len(means)) if c != top)
        if abs(others + means[top] - 1) > SIMPLEX_TOLERANCE:
            others = 1 - means[top]
        s = mpmath.mpf(0)
        big_h = -mpmath.fsum(mu * mpmath.log(mu) for mu in means if mu > 0)
        for c, sigma2 in enumerate(float(v) for v in var):
            p = 1 - others if c == top else means[c]
            q = others if c == top else 1 - means[c]
            p, v = max(p, mpmath.mpf(FLOOR)), max(mpmath.mpf(sigma2), mpmath.mpf(FLOOR))
            alpha = p * p * q / v - p
            beta = q / p * alpha
            if alpha <= TOLERANCE * p or beta <= 0:  # invalid, or at the limit up to rounding
                if c == top and sigma2 < FLOOR and p > 0.5:
                    return -math.inf  # saturated: the limit of S as beta -> 0 is -inf
                continue
            h = (mpmath.log(mpmath.beta(alpha + 1, beta)) - alpha * mpmath.digamma(alpha + 1)
                 - (beta - 1) * mpmath.digamma(beta) + (alpha + beta - 1)
                 * mpmath.digamma(alpha + beta + 1))
            s += min(mpmath.mpf(0), p * h)
        balent = (s + big_h) / (big_h + mpmath.log(2))
        if balent > 0:
            return float(1 / balent)
        return float(balent) if balent < 0 else -math.inf
