"""The pure math behind every built-in strategy: entropies, BALD, Beta moment fit, BalEnt.

Conventions (see /work/shared/method.md): natural logs; the class dimension is -3, so every
function here accepts any leading batch dimensions, ``[..., C, H, W]`` in and ``[..., H, W]`` out.
Everything stays on the input's device. The Beta part runs in float64 whatever the input dtype:
at alpha ~ 1e8 the lgamma and digamma terms cancel to many digits.
"""
from __future__ import annotations

import math
from typing import TYPE_CHECKING

import torch

if TYPE_CHECKING:  # pragma: no cover
    from strategies.posterior import PixelPosterior

CLASS_DIM = -3
BALD_FLOOR = 1e-9  # BALD values below this are raised to it
FIT_FLOOR = 1e-9  # mean and variance are clamped from below at this before the Beta fit
REF_BETA_FN_EPS = 1e-32  # the public reference code adds this to B(a, b) before its log
LOG_2 = math.log(2.0)
HALF_LOG_2PI_E = 0.5 * (math.log(2.0 * math.pi) + 1.0)
STIRLING_SWITCH = 64.0  # lgamma/digamma directly below, Stirling series above


def entropy(p: torch.Tensor, dim: int = CLASS_DIM) -> torch.Tensor:
    """Shannon entropy ``-sum p log p`` along ``dim`` (0 log 0 = 0)."""
    return -torch.special.xlogy(p, p).sum(dim)


def bald(predictive_entropy: torch.Tensor, expected_entropy: torch.Tensor) -> torch.Tensor:
    """Mutual information ``H - E``, values below ``BALD_FLOOR`` raised to it. # [..., H, W]"""
    return (predictive_entropy - expected_entropy).clamp(min=BALD_FLOOR)


def beta_moment_fit(mean: torch.Tensor, var: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-class Beta(alpha, beta) matching ``mean`` and ``var`` (float64, clamped at 1e-9).

    Returns alpha and beta of the same shape as the inputs. A fit is invalid where either is not
    strictly positive (the variance exceeds what a Beta with that mean allows).
    """
    p = mean.to(torch.float64).clamp(min=FIT_FLOOR)
    v = var.to(torch.float64).clamp(min=FIT_FLOOR)
    alpha = p * p * (1.0 - p) / v - p
    beta = alpha * (1.0 - p) / p  # = (1/p - 1) alpha; 1/p - 1 would lose digits as p -> 1
    return alpha, beta


def log_beta_function(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """``log B(a, b)`` from lgamma (float64 in, float64 out)."""
    return torch.lgamma(a) + torch.lgamma(b) - torch.lgamma(a + b)


def floored_log_beta_function(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """``log(B(a, b) + 1e-32)`` as the public BalEnt reference code computes it (floor ~ -73.7)."""
    return torch.log(torch.exp(log_beta_function(a, b)) + REF_BETA_FN_EPS)


def _entropy_parts(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``(lgamma(x) - (x-1) digamma(x) + x, digamma(x))`` to full float64 accuracy, x > 0.

    Below ``STIRLING_SWITCH`` directly; above it from the Stirling series, in which the terms
    that grow like x cancel analytically (the direct form loses ~7 digits at x ~ 1e8).
    """
    big = x >= STIRLING_SWITCH
    small_x = torch.where(big, 1.0, x)
    psi_small = torch.digamma(small_x)
    g_small = torch.lgamma(small_x) - (small_x - 1.0) * psi_small + small_x
    big_x = torch.where(big, x, STIRLING_SWITCH)
    y = 1.0 / big_x
    y2 = y * y
    r = y * (1 / 12 - y2 * (1 / 360 - y2 * (1 / 1260 - y2 * (1 / 1680 - y2 / 1188))))
    t = y2 * (1 / 12 - y2 * (1 / 120 - y2 * (1 / 252 - y2 * (1 / 240 - y2 / 132))))
    log_x = torch.log(big_x)
    g_big = 0.5 * log_x + HALF_LOG_2PI_E - 0.5 * y + r + (big_x - 1.0) * t
    psi_big = log_x - 0.5 * y - t
    return torch.where(big, g_big, g_small), torch.where(big, psi_big, psi_small)


def beta_entropy(a: torch.Tensor, b: torch.Tensor, *, floored: bool = False) -> torch.Tensor:
    """Differential entropy of Beta(a, b), computed in float64 (a, b > 0).

    ``log B(a, b) - (a-1) psi(a) - (b-1) psi(b) + (a+b-2) psi(a+b)``, evaluated without the
    cancellation of its large terms (see ``_entropy_parts``). With ``floored=True`` the log Beta
    function is the reference code's floored one (``floored_log_beta_function``), evaluated
    as that code does. Callers mask invalid fits themselves.
    """
    a = a.to(torch.float64)
    b = b.to(torch.float64)
    g_a, psi_a = _entropy_parts(a)
    g_b, psi_b = _entropy_parts(b)
    g_s, psi_s = _entropy_parts(a + b)
    if not floored:  # G(a) + G(b) - G(a+b) - psi(a+b), the linear terms cancelled exactly
        return g_a + g_b - g_s - psi_s
    return (floored_log_beta_function(a, b) - (a - 1.0) * psi_a - (b - 1.0) * psi_b
            + (a + b - 2.0) * psi_s)


def posterior_term(mean: torch.Tensor, var: torch.Tensor, *, floored: bool = False) -> torch.Tensor:
    """BalEnt's ``S = sum_c min(0, p_c h_c)`` with h_c the entropy of Beta(alpha_c + 1, beta_c).

    Classes with an invalid moment fit contribute 0. float64. # [..., C, H, W] -> [..., H, W]
    """
    alpha, beta = beta_moment_fit(mean, var)  # [..., C, H, W]
    valid = (alpha > 0) & (beta > 0)
    # Invalid fits get a harmless stand-in Beta(2, 1) so that no NaN is ever computed.
    h = beta_entropy(torch.where(valid, alpha + 1.0, 2.0), torch.where(valid, beta, 1.0),
                     floored=floored)
    p = mean.to(torch.float64).clamp(min=FIT_FLOOR)
    contribution = torch.where(valid, (p * h).clamp(max=0.0), torch.zeros_like(h))
    return contribution.sum(CLASS_DIM)


def balanced_entropy(mean: torch.Tensor, var: torch.Tensor, predictive_entropy: torch.Tensor,
                     *, floored: bool = False) -> torch.Tensor:
    """BalEnt = (S + H) / (H + log 2), float64. # [..., H, W]"""
    h = predictive_entropy.to(torch.float64)
    return (posterior_term(mean, var, floored=floored) + h) / (h + LOG_2)


def balent_acquisition(balent: torch.Tensor) -> torch.Tensor:
    """Acquisition value from BalEnt: 1/BalEnt if positive, BalEnt if negative, -inf otherwise.

    So every positive-BalEnt pixel ranks before every negative one; degenerate pixels
    (BalEnt exactly 0, as for a one-hot posterior, or non-finite) rank last.
    """
    finite = torch.isfinite(balent)
    ranked = torch.where(balent > 0, 1.0 / balent, balent)
    return torch.where(finite & (balent != 0), ranked, torch.full_like(balent, float("-inf")))


def decomposition(post: PixelPosterior) -> dict[str, torch.Tensor]:
    """Per-pixel uncertainty split: epistemic (BALD), aleatoric (E) and posterior (MJEnt = S + H).

    Each value has shape ``[..., H, W]``; MJEnt uses the exact (not the floored) BalEnt math.
    """
    epistemic = bald(post.predictive_entropy, post.expected_entropy)
    mjent = posterior_term(post.mean, post.variance) + post.predictive_entropy.to(torch.float64)
    return dict(epistemic=epistemic, aleatoric=post.expected_entropy, posterior=mjent)


def margin(mean: torch.Tensor) -> torch.Tensor:
    """Negated gap between the two largest mean probabilities. # [..., C, H, W] -> [..., H, W]"""
    if mean.shape[CLASS_DIM] < 2:  # one class: the runner-up probability is 0
        return -mean.select(CLASS_DIM, 0)
    top2 = mean.topk(2, dim=CLASS_DIM).values  # [..., 2, H, W]
    return top2.select(CLASS_DIM, 1) - top2.select(CLASS_DIM, 0)
