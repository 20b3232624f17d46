"""BalEnt of a ``PixelPosterior``: its posterior term computed once and shared, the balanced
entropy, the acquisition scores of ``balent`` and ``balent_ref``, and the regime.

The term is kept on the posterior (``PixelPosterior.derived``, one entry per floor setting), so
a BalEnt strategy and the uncertainty record (``strategies.uncertainty.decomposition``,
``balent_regime``) pay for the Beta entropies once. Every computation goes through
``strategies.balent.kernel``.
"""
from __future__ import annotations

import torch

from strategies.balent import kernel
from strategies.balent.formula import PosteriorTerm, balanced_entropy_from, regime_from
from strategies.posterior import PixelPosterior


def _posterior_term_key(floored: bool) -> tuple:
    """The key under which a posterior keeps its BalEnt posterior term (``PixelPosterior.derived``)."""
    return ("posterior_term", floored)


def posterior_term_parts_of(post: PixelPosterior, *, floored: bool = False) -> PosteriorTerm:
    """``kernel.posterior_term_parts`` of a posterior, computed once per posterior and floor setting."""
    return post.derived(_posterior_term_key(floored),
                        lambda: kernel.posterior_term_and_scores(post.mean, post.variance,
                                                                 floored=floored)[0])


def posterior_term_of(post: PixelPosterior, *, floored: bool = False) -> torch.Tensor:
    """``kernel.posterior_term`` of a posterior (shares ``posterior_term_parts_of``'s cached parts)."""
    return posterior_term_parts_of(post, floored=floored).value


def balanced_entropy(post: PixelPosterior, *, floored: bool = False) -> torch.Tensor:
    """BalEnt = (S + H) / (H + log 2), float64; -inf at saturated pixels. # [..., H, W]"""
    return balanced_entropy_from(posterior_term_parts_of(post, floored=floored), post.predictive_entropy)


def balent_scores(post: PixelPosterior, *, floored: bool = False) -> torch.Tensor:
    """``balent_acquisition(balanced_entropy(post))``: the scores of ``balent`` (``balent_ref``
    with ``floored``). With the term not yet kept on ``post``, in the pass that computes it
    (then kept for the record); otherwise from the kept term. # [..., H, W] float64"""
    fresh: list = []

    def compute() -> PosteriorTerm:
        term, scores = kernel.posterior_term_and_scores(post.mean, post.variance,
                                                        post.predictive_entropy, floored=floored)
        fresh.append(scores)
        return term

    term = post.derived(_posterior_term_key(floored), compute)
    return fresh[0] if fresh else kernel.acquisition(term, post.predictive_entropy)


def balent_regime(post: PixelPosterior, *, floored: bool = False) -> torch.Tensor:
    """Which branch of BalEnt's acquisition each pixel falls in (``formula.regime_from``), as
    int8 codes. # [..., H, W]

    Uses the posterior term cached on ``post``: free once a BalEnt strategy (same ``floored``)
    has scored it.
    """
    return regime_from(posterior_term_parts_of(post, floored=floored), post.predictive_entropy)
