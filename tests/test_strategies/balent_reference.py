"""Independent BalEnt references written from method.md: scipy float64 and mpmath (40 digits)."""
from __future__ import annotations

import math

import numpy as np
from scipy.special import digamma, gammaln


def balent_acquisition_scipy(mean: np.ndarray, var: np.ndarray) -> np.ndarray:
    """BalEnt acquisition values [H, W] from mean, var [C, H, W], straight from the formula."""
    p = np.maximum(mean, 1e-9)
    v = np.maximum(var, 1e-9)
    alpha = p * p * (1 - p) / v - p
    beta = (1 / p - 1) * alpha
    valid = (alpha > 1e-12 * p) & (beta > 0)  # at the Beta's variance limit up to rounding: invalid
    a = np.where(valid, alpha, 1.0)
    b = np.where(valid, beta, 1.0)
    h = (gammaln(a + 1) + gammaln(b) - gammaln(a + b + 1) - a * digamma(a + 1)
         - (b - 1) * digamma(b) + (a + b - 1) * digamma(a + b + 1))
    s = np.where(valid, np.minimum(0.0, p * h), 0.0).sum(0)
    with np.errstate(divide="ignore", invalid="ignore"):
        big_h = -np.where(mean > 0, mean * np.log(mean), 0.0).sum(0)
        balent = (s + big_h) / (big_h + math.log(2))
        return np.where(balent > 0, 1 / balent, np.where(balent < 0, balent, -np.inf))


def balent_acquisition_mpmath(mean: np.ndarray, var: np.ndarray, dps: int = 40) -> float:
    """The acquisition value of ONE pixel (mean, var: [C]) in multi-precision arithmetic."""
    import mpmath

    with mpmath.workdps(dps):
        s = mpmath.mpf(0)
        big_h = mpmath.mpf(0)
        for mu, sigma2 in zip(mean.tolist(), var.tolist()):
            if mu > 0:
                big_h -= mpmath.mpf(mu) * mpmath.log(mu)
            p, v = mpmath.mpf(max(mu, 1e-9)), mpmath.mpf(max(sigma2, 1e-9))
            alpha = p * p * (1 - p) / v - p
            beta = (1 / p - 1) * alpha
            if alpha <= 1e-12 * p or beta <= 0:  # invalid, or at the limit up to rounding
                continue
            h = (mpmath.log(mpmath.beta(alpha + 1, beta)) - alpha * mpmath.digamma(alpha + 1)
                 - (beta - 1) * mpmath.digamma(beta) + (alpha + beta - 1)
                 * mpmath.digamma(alpha + beta + 1))
            s += min(mpmath.mpf(0), p * h)
        balent = (s + big_h) / (big_h + mpmath.log(2))
        if balent > 0:
            return float(1 / balent)
        return float(balent) if balent < 0 else -math.inf
