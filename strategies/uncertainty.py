"""The per-pixel math of the built-in strategies and of the uncertainty record.

Conventions (the method is summarised in docs/writing_a_strategy.md): natural logs; the class
dimension is -3, so every function here accepts any leading batch dimensions, ``[..., C, H, W]``
in and ``[..., H, W]`` out. Everything stays on the input's device. Defined here: BALD, margin,
the top class's MC standard deviation and the uncertainty decomposition; the Shannon entropy comes
from ``strategies.posterior`` (H and E are built with it), and BalEnt (its formulas, posterior
term, scores and regime) from ``strategies.balent``; both are re-exported so that this module
stays the one place a strategy imports its math from.
"""
from __future__ import annotations

import torch

from strategies.balent import (  # noqa: F401  (re-exported: a strategy's math in one place)
    DEGENERATE,
    FIT_FLOOR,
    FIT_TOLERANCE,
    LOG_2,
    NEGATIVE,
    POSITIVE,
    REF_BETA_FN_EPS,
    REGIME_NAMES,
    SATURATED,
    PosteriorTerm,
    balanced_entropy,
    balent_acquisition,
    balent_regime,
    balent_scores,
    beta_moment_fit,
    posterior_term,
    posterior_term_and_scores,
    posterior_term_of,
    posterior_term_parts,
    posterior_term_parts_of,
)
from strategies.balent.beta_entropy import beta_entropy  # noqa: F401
from strategies.posterior import CLASS_DIM, PixelPosterior, entropy  # noqa: F401

BALD_FLOOR = 1e-9  # BALD values below this are raised to it


def bald(predictive_entropy: torch.Tensor, expected_entropy: torch.Tensor) -> torch.Tensor:
    """Mutual information ``H - E``, values below ``BALD_FLOOR`` raised to it. # [..., H, W]"""
    return (predictive_entropy - expected_entropy).clamp(min=BALD_FLOOR)


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
    (S = -inf, see ``strategies.balent.kernel``) it is H plus the finite part of S, i.e. the
    dominant class's diverging term is left out, as an invalid fit's would be
    (``balent_regime`` counts such pixels). Shares the posterior term a BalEnt strategy kept.
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
