"""The pure math behind every built-in strategy: entropies, BALD, margin, BalEnt and its record.

Conventions (the method is summarised in docs/writing_a_strategy.md): natural logs; the class
dimension is -3, so every function here accepts any leading batch dimensions, ``[..., C, H, W]``
in and ``[..., H, W]`` out. Everything stays on the input's device. BalEnt's posterior term (the
per-class Beta fits and their entropies, float64 whatever the input dtype) lives in
``strategies.posterior_term`` and is re-exported here.
"""
from __future__ import annotations

import math
from typing import TYPE_CHECKING

import torch

from strategies import native_kernel
from strategies.posterior_term import (  # noqa: F401
    CLASS_DIM,
    FIT_FLOOR,
    FIT_TOLERANCE,
    REF_BETA_FN_EPS,
    PosteriorTerm,
    beta_entropy,
    beta_moment_fit,
    posterior_term,
    posterior_term_and_scores,
    posterior_term_parts,
)

if TYPE_CHECKING:  # pragma: no cover
    from strategies.posterior import PixelPosterior

BALD_FLOOR = 1e-9  # BALD values below this are raised to it
LOG_2 = math.log(2.0)


def entropy(p: torch.Tensor, dim: int = CLASS_DIM) -> torch.Tensor:
    """Shannon entropy ``-sum p log p`` along ``dim`` (0 log 0 = 0)."""
    return -torch.special.xlogy(p, p).sum(dim)


def bald(predictive_entropy: torch.Tensor, expected_entropy: torch.Tensor) -> torch.Tensor:
    """Mutual information ``H - E``, values below ``BALD_FLOOR`` raised to it. # [..., H, W]"""
    return (predictive_entropy - expected_entropy).clamp(min=BALD_FLOOR)


def _posterior_term_key(floored: bool) -> tuple:
    """The key under which a posterior keeps its BalEnt posterior term (``PixelPosterior.derived``)."""
    return ("posterior_term", floored)


def posterior_term_parts_of(post: PixelPosterior, *, floored: bool = False) -> PosteriorTerm:
    """``posterior_term_parts`` of a posterior, computed once per posterior and floor setting."""
    return post.derived(_posterior_term_key(floored),
                        lambda: posterior_term_parts(post.mean, post.variance, floored=floored))


def posterior_term_of(post: PixelPosterior, *, floored: bool = False) -> torch.Tensor:
    """``posterior_term`` of a posterior (shares ``posterior_term_parts_of``'s cached parts)."""
    return posterior_term_parts_of(post, floored=floored).value


def balanced_entropy(post: PixelPosterior, *, floored: bool = False) -> torch.Tensor:
    """BalEnt = (S + H) / (H + log 2), float64; -inf at saturated pixels. # [..., H, W]"""
    h = post.predictive_entropy.to(torch.float64)
    return (posterior_term_of(post, floored=floored) + h) / (h + LOG_2)


def balent_scores(post: PixelPosterior, *, floored: bool = False) -> torch.Tensor:
    """``balent_acquisition(balanced_entropy(post))``: the scores of ``balent`` (``balent_ref``
    with ``floored``). On the CPU by the fused kernel (same values): in the pass that computes
    the posterior term (kept on ``post`` for the record), or in one pass from the kept term."""
    fused: list = []

    def compute() -> PosteriorTerm:
        parts, scores = posterior_term_and_scores(post.mean, post.variance, post.predictive_entropy,
                                                  floored=floored)
        fused.append(scores)
        return parts

    parts = post.derived(_posterior_term_key(floored), compute)
    if fused and fused[0] is not None:
        return fused[0]
    scores = native_kernel.balent_acquisition(parts.finite, parts.saturated, post.predictive_entropy)
    return scores if scores is not None else balent_acquisition(balanced_entropy(post, floored=floored))


def balent_acquisition(balent: torch.Tensor) -> torch.Tensor:
    """Acquisition value from BalEnt: 1/BalEnt if positive, BalEnt if negative, -inf otherwise.

    So every positive-BalEnt pixel ranks before every negative one; degenerate pixels
    (BalEnt exactly 0, as for a one-hot posterior, or non-finite, as for a saturated one)
    rank last.
    """
    finite = torch.isfinite(balent)
    ranked = torch.where(balent > 0, 1.0 / balent, balent)
    return torch.where(finite & (balent != 0), ranked, torch.full_like(balent, float("-inf")))


# Per-pixel regime of BalEnt (``balent_regime``); REGIME_NAMES[code] names each code.
POSITIVE, NEGATIVE, SATURATED, DEGENERATE = 0, 1, 2, 3
REGIME_NAMES = ("positive", "negative", "saturated", "degenerate")


def balent_regime(post: PixelPosterior, *, floored: bool = False) -> torch.Tensor:
    """Which branch of BalEnt's acquisition each pixel falls in, as int8 codes. # [..., H, W]

    ``SATURATED``: the dominant class is past the variance clamp, BalEnt = -inf (see
    ``posterior_term_parts``); otherwise ``DEGENERATE``: no class has a valid Beta fit (BalEnt =
    H / (H + log 2) carries no posterior term, whatever its sign), or BalEnt is 0 or NaN;
    otherwise ``POSITIVE`` or ``NEGATIVE`` by the sign of the finite BalEnt. Uses the posterior
    term cached on ``post``: free once a BalEnt strategy (same ``floored``) has scored it.
    """
    parts = posterior_term_parts_of(post, floored=floored)
    # the sign of BalEnt = (S + H) / (H + log 2) is the sign of S + H (H >= 0)
    mjent = parts.finite + post.predictive_entropy.to(torch.float64)
    regime = torch.full(mjent.shape, DEGENERATE, dtype=torch.int8, device=mjent.device)
    regime.masked_fill_(parts.fitted & (mjent > 0), POSITIVE)
    regime.masked_fill_(parts.fitted & (mjent < 0), NEGATIVE)
    return regime.masked_fill_(parts.saturated, SATURATED)


def top_class_std(post: PixelPosterior) -> torch.Tensor:
    """MC standard deviation of each pixel's top class (the argmax of the mean). # [..., H, W]

    In the posterior's dtype, one value per pixel (so the pool's median is one ``median`` call).
    """
    top = post.mean.max(CLASS_DIM, keepdim=True).indices  # (argmax over dim -3 is ~5x slower)
    return post.variance.gather(CLASS_DIM, top).squeeze(CLASS_DIM).clamp(min=0.0).sqrt()


def decomposition(post: PixelPosterior) -> dict[str, torch.Tensor]:
    """Per-pixel uncertainty split: epistemic (BALD), aleatoric (E) and posterior (MJEnt = S + H).

    Each value has shape ``[..., H, W]``; MJEnt uses the exact (not the floored) BalEnt math.
    The record averages these maps over a pool, so MJEnt stays finite: at a saturated pixel
    (S = -inf, see ``posterior_term_parts``) it is H plus the finite part of S, i.e. the
    dominant class's diverging term is left out, as an invalid fit's would be
    (``balent_regime`` counts such pixels).
    """
    epistemic = bald(post.predictive_entropy, post.expected_entropy)
    mjent = posterior_term_parts_of(post).finite + post.predictive_entropy.to(torch.float64)
    return dict(epistemic=epistemic, aleatoric=post.expected_entropy, posterior=mjent)


def margin(mean: torch.Tensor) -> torch.Tensor:
    """Negated gap between the two largest mean probabilities. # [..., C, H, W] -> [..., H, W]"""
    if mean.shape[CLASS_DIM] < 2:  # one class: the runner-up probability is 0
        return -mean.select(CLASS_DIM, 0)
    top2 = mean.topk(2, dim=CLASS_DIM).values  # [..., 2, H, W]
    return top2.select(CLASS_DIM, 1) - top2.select(CLASS_DIM, 0)
