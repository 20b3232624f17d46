"""BalEnt as the method defines it: the formulas, in torch, with no kernel and no compiler in them.

The method is in docs/writing_a_strategy.md (built-ins; "BalEnt at saturation" for the two points
where it departs from a literal reading). Per pixel, with means p_c and variances v_c of m MC
samples (class dimension -3):

1. a Beta fit by moments per class (``beta_moment_fit``, ``fit_concentration``), valid where
   alpha, beta > 0 beyond rounding (``FIT_TOLERANCE``), means and variances clamped at ``FIT_FLOOR``;
2. the posterior term S = sum_c min(0, p_c h_c), h_c the differential entropy of
   Beta(alpha_c + 1, beta_c), kept in the parts its consumers need (``PosteriorTerm``; computed by
   the kernels behind ``strategies.balent.kernel``, the entropy's arithmetic in
   ``strategies.balent.beta_entropy``);
3. BalEnt = (S + H) / (H + log 2) (``balanced_entropy_from``) and the acquisition value
   (``balent_acquisition``): 1/BalEnt where positive, BalEnt where negative, -inf otherwise;
4. the regime each pixel is in (``regime_from``: positive, negative, saturated, degenerate).

The constants here are the one owner of their values: the torch kernel reads them, and the
native kernel is built with them (``strategies.balent.native_kernel``).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch

FIT_FLOOR = 1e-9  # mean and variance are clamped from below at this before the Beta fit
# A fit with alpha <= FIT_TOLERANCE * mean is invalid: there the variance equals the largest a
# Beta allows, mean (1 - mean), up to float64 rounding (alpha / mean = mean (1 - mean) / var - 1),
# and the sign of alpha is rounding noise. Without it, samples whose class probabilities are all
# 0 or 1 flip between "invalid, contributes 0" and "alpha ~ 1e-17, h ~ -1e16" with the order in
# which the MC samples were summed.
FIT_TOLERANCE = 1e-12
# The means of one pixel sum to 1 within this (float16 samples included); only then is the top
# class's complement taken from the other classes (see torch_kernel._complement_of_the_top_class).
SIMPLEX_TOLERANCE = 1e-2
REF_BETA_FN_EPS = 1e-32  # the public reference code adds this to B(a, b) before its log
LOG_2 = math.log(2.0)  # BalEnt's denominator H + log 2

# Per-pixel regime of BalEnt (``regime_from``); REGIME_NAMES[code] names each code.
POSITIVE, NEGATIVE, SATURATED, DEGENERATE = 0, 1, 2, 3
REGIME_NAMES = ("positive", "negative", "saturated", "degenerate")


def beta_moment_fit(mean: torch.Tensor, var: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-class Beta(alpha, beta) matching ``mean`` and ``var`` (float64, clamped at 1e-9).

    Returns alpha and beta of the same shape as the inputs. A fit is invalid where either is not
    strictly positive (the variance exceeds what a Beta with that mean allows) or where alpha is
    below ``FIT_TOLERANCE * mean`` (the variance is at that limit up to rounding). Each class is
    fitted on its own, with complement 1 - mean; the posterior term takes the top class's
    complement from the other classes instead.
    """
    p = mean.to(torch.float64).clamp(min=FIT_FLOOR)
    v = var.to(torch.float64).clamp(min=FIT_FLOOR)
    q = torch.neg(p).add_(1.0)
    k = fit_concentration(p, q, v)
    return p * k, q * k


def fit_concentration(p: torch.Tensor, q: torch.Tensor, var: torch.Tensor,
                      out: torch.Tensor | None = None) -> torch.Tensor:
    """``k = p q / var - 1``: the moment fit of mean p (complement q) is Beta(p k, q k).

    The method's ``alpha = p^2 (1 - p) / var - p``, ``beta = (1/p - 1) alpha``; written this way
    1/p - 1 is never formed (it loses digits as p -> 1), and alpha + beta = k exactly.
    """
    return torch.mul(p, q, out=out).div_(var).sub_(1.0)


@dataclass(frozen=True)
class PosteriorTerm:
    """BalEnt's posterior term S of every pixel, in the parts its consumers need. # [..., H, W]

    ``finite``: the sum over the classes with a valid fit (float64, always finite).
    ``saturated``: the dominant class's fit is invalid only because the variance clamp raised
    its variance above p (1 - p): S is -inf there (see ``strategies.balent.kernel``).
    ``fitted``: at least one class has a valid fit.
    """

    finite: torch.Tensor
    saturated: torch.Tensor
    fitted: torch.Tensor

    @property
    def value(self) -> torch.Tensor:
        """S itself: ``finite``, and -inf at saturated pixels."""
        return self.finite.masked_fill(self.saturated, float("-inf"))


def balanced_entropy_from(term: PosteriorTerm, predictive_entropy: torch.Tensor) -> torch.Tensor:
    """BalEnt = (S + H) / (H + log 2), float64; -inf at saturated pixels. # [..., H, W]"""
    h = predictive_entropy.to(torch.float64)
    return (term.value + h) / (h + LOG_2)


def balent_acquisition(balent: torch.Tensor) -> torch.Tensor:
    """Acquisition value from BalEnt: 1/BalEnt if positive, BalEnt if negative, -inf otherwise.

    So every positive-BalEnt pixel ranks before every negative one; degenerate pixels
    (BalEnt exactly 0, as for a one-hot posterior, or non-finite, as for a saturated one)
    rank last.
    """
    finite = torch.isfinite(balent)
    ranked = torch.where(balent > 0, 1.0 / balent, balent)
    return torch.where(finite & (balent != 0), ranked, torch.full_like(balent, float("-inf")))


def regime_from(term: PosteriorTerm, predictive_entropy: torch.Tensor) -> torch.Tensor:
    """Which branch of BalEnt's acquisition each pixel falls in, as int8 codes. # [..., H, W]

    ``SATURATED``: the dominant class is past the variance clamp, BalEnt = -inf; otherwise
    ``DEGENERATE``: no class has a valid Beta fit (BalEnt = H / (H + log 2) carries no posterior
    term, whatever its sign), or BalEnt is 0 or NaN; otherwise ``POSITIVE`` or ``NEGATIVE`` by
    the sign of the finite BalEnt.
    """
    # the sign of BalEnt = (S + H) / (H + log 2) is the sign of S + H (H >= 0)
    mjent = term.finite + predictive_entropy.to(torch.float64)
    regime = torch.full(mjent.shape, DEGENERATE, dtype=torch.int8, device=mjent.device)
    regime.masked_fill_(term.fitted & (mjent > 0), POSITIVE)
    regime.masked_fill_(term.fitted & (mjent < 0), NEGATIVE)
    return regime.masked_fill_(term.saturated, SATURATED)
