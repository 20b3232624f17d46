"""The pure math behind every built-in strategy: entropies, BALD, Beta moment fit, BalEnt.

Conventions (see /work/shared/method.md): natural logs; the class dimension is -3, so every
function here accepts any leading batch dimensions, ``[..., C, H, W]`` in and ``[..., H, W]`` out.
Everything stays on the input's device. The Beta part runs in float64 whatever the input dtype:
at alpha ~ 1e8 the lgamma and digamma terms cancel to many digits.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch

from strategies.beta_kernel import Workspace, beta_entropy_into, digammas_into

if TYPE_CHECKING:  # pragma: no cover
    from strategies.posterior import PixelPosterior

CLASS_DIM = -3
BALD_FLOOR = 1e-9  # BALD values below this are raised to it
FIT_FLOOR = 1e-9  # mean and variance are clamped from below at this before the Beta fit
# A fit with alpha <= FIT_TOLERANCE * mean is invalid: there the variance equals the largest a
# Beta allows, mean (1 - mean), up to float64 rounding (alpha / mean = mean (1 - mean) / var - 1),
# and the sign of alpha is rounding noise. Without it, samples whose class probabilities are all
# 0 or 1 flip between "invalid, contributes 0" and "alpha ~ 1e-17, h ~ -1e16" with the order in
# which the MC samples were summed.
FIT_TOLERANCE = 1e-12
# The means of one pixel sum to 1 within this (float16 samples included); only then is the top
# class's complement taken from the other classes (see _complement_of_the_top_class).
SIMPLEX_TOLERANCE = 1e-2
REF_BETA_FN_EPS = 1e-32  # the public reference code adds this to B(a, b) before its log
LOG_2 = math.log(2.0)
BLOCK_ELEMENTS = 1 << 18  # class-pixel pairs per block of the Beta computation on the CPU
GPU_BLOCK_ELEMENTS = 1 << 22  # and on a GPU (few, large kernels)


def entropy(p: torch.Tensor, dim: int = CLASS_DIM) -> torch.Tensor:
    """Shannon entropy ``-sum p log p`` along ``dim`` (0 log 0 = 0)."""
    return -torch.special.xlogy(p, p).sum(dim)


def bald(predictive_entropy: torch.Tensor, expected_entropy: torch.Tensor) -> torch.Tensor:
    """Mutual information ``H - E``, values below ``BALD_FLOOR`` raised to it. # [..., H, W]"""
    return (predictive_entropy - expected_entropy).clamp(min=BALD_FLOOR)


def beta_moment_fit(mean: torch.Tensor, var: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-class Beta(alpha, beta) matching ``mean`` and ``var`` (float64, clamped at 1e-9).

    Returns alpha and beta of the same shape as the inputs. A fit is invalid where either is not
    strictly positive (the variance exceeds what a Beta with that mean allows) or where alpha is
    below ``FIT_TOLERANCE * mean`` (the variance is at that limit up to rounding). Each class is
    fitted on its own, with complement 1 - mean; ``posterior_term`` takes the top class's
    complement from the other classes instead.
    """
    p = mean.to(torch.float64).clamp(min=FIT_FLOOR)
    v = var.to(torch.float64).clamp(min=FIT_FLOOR)
    q = torch.neg(p).add_(1.0)
    alpha, beta = torch.empty_like(p), torch.empty_like(p)
    _fit_into(p, q, v, alpha, beta)
    return alpha, beta


def _fit_into(p: torch.Tensor, q: torch.Tensor, var: torch.Tensor, alpha: torch.Tensor,
              beta: torch.Tensor) -> None:
    """``alpha = p k`` and ``beta = q k`` with ``k = p q / var - 1`` (mean p, complement q).

    The method's ``alpha = p^2 (1 - p) / var - p``, ``beta = (1/p - 1) alpha``; written this way
    1/p - 1 is never formed (it loses digits as p -> 1). ``beta`` may be ``var`` itself.
    """
    torch.mul(p, q, out=alpha).div_(var).sub_(1.0)  # k
    torch.mul(alpha, q, out=beta)
    alpha.mul_(p)


def log_beta_function(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """``log B(a, b)`` from lgamma (float64 in, float64 out)."""
    return torch.lgamma(a) + torch.lgamma(b) - torch.lgamma(a + b)


def floored_log_beta_function(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """``log(B(a, b) + 1e-32)`` as the public BalEnt reference code computes it (floor ~ -73.7)."""
    return torch.log(torch.exp(log_beta_function(a, b)) + REF_BETA_FN_EPS)


def beta_entropy(a: torch.Tensor, b: torch.Tensor, *, floored: bool = False) -> torch.Tensor:
    """Differential entropy of Beta(a, b), computed in float64 (a, b > 0; broadcast together).

    ``log B(a, b) - (a-1) psi(a) - (b-1) psi(b) + (a+b-2) psi(a+b)``, evaluated without the
    cancellation of its large terms (see ``strategies.beta_kernel``). With ``floored=True`` the
    log Beta function is the reference code's floored one (``floored_log_beta_function``),
    evaluated as that code does. Callers mask invalid fits themselves.
    """
    a, b = torch.broadcast_tensors(a.to(torch.float64), b.to(torch.float64))
    flat_a, flat_b = a.reshape(-1).contiguous(), b.reshape(-1).contiguous()
    ws = Workspace(flat_a.numel(), a.device)
    h = torch.empty_like(flat_a)
    _beta_entropy_into(flat_a, flat_b, h, ws, floored)
    return h.reshape(a.shape)


def _beta_entropy_into(a: torch.Tensor, b: torch.Tensor, h: torch.Tensor, ws: Workspace,
                       floored: bool) -> None:
    if not floored:
        return beta_entropy_into(a, b, h, ws)
    n = a.numel()
    psi_a, psi_b, psi_s = digammas_into(a, b, ws)
    s, tmp = ws("s", n), ws("g", n)
    # log(B(a, b) + 1e-32) with B from exp(lgamma(a) + lgamma(b) - lgamma(a+b)), as the
    # reference code computes it (floored_log_beta_function)
    torch.lgamma(a, out=h).add_(torch.lgamma(b, out=tmp)).sub_(torch.lgamma(s, out=tmp))
    h.exp_().add_(REF_BETA_FN_EPS).log_()
    h.sub_(torch.sub(a, 1.0, out=tmp).mul_(psi_a))
    h.sub_(torch.sub(b, 1.0, out=tmp).mul_(psi_b))
    h.add_(torch.sub(s, 2.0, out=tmp).mul_(psi_s))


def _complement_of_the_top_class(p: torch.Tensor, q: torch.Tensor, ws: Workspace) -> torch.Tensor:
    """Fill ``q = 1 - p`` for a ``[C, P]`` block of means ``p`` (float64, written in place), with
    the top class's complement taken as the sum of the other classes' means. Returns the top
    class's index ``[1, P]``.

    Rounding destroys ``1 - p`` of a dominant class: a float32 mean of 1 - 2.5e-10 is stored as
    exactly 1.0, one of 1 - 1e-7 as 1 - 1.19e-7. The other classes' means are small numbers
    stored to full relative precision, so their sum is the accurate complement; the top class's
    mean is then set to 1 minus it, so that p + q = 1 for every class. Means that do not sum to
    1 within ``SIMPLEX_TOLERANCE`` (not the means of softmax samples) keep ``1 - p``.
    """
    top = p.argmax(0, keepdim=True)  # [1, P]
    p_top = p.gather(0, top)
    p.scatter_(0, top, 0.0)
    q_top = p.sum(0, keepdim=True)  # the other classes' means: no cancellation
    on_simplex = torch.add(q_top, p_top).sub_(1.0).abs_().le(SIMPLEX_TOLERANCE)
    q_top = torch.where(on_simplex, q_top, torch.neg(p_top).add_(1.0))
    p.scatter_(0, top, torch.neg(q_top).add_(1.0))
    torch.neg(p, out=q).add_(1.0)  # exact for p >= 1/2, relative error 1e-16 below
    q.scatter_(0, top, q_top)
    return top


def _posterior_term_block(mean: torch.Tensor, var: torch.Tensor, floored: bool,
                          ws: Workspace) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """One block of ``posterior_term_parts``: ``[C, P]`` in; the finite part of S (float64),
    ``saturated`` and ``fitted`` (bool), each ``[P]``, out."""
    n, shape = mean.numel(), mean.shape
    p = ws("p", n).view(shape).copy_(mean)
    q = ws("q", n).view(shape)
    top = _complement_of_the_top_class(p, q, ws)
    v = ws("v", n).view(shape).copy_(var)
    clamped = v.gather(0, top).lt(FIT_FLOOR)  # [1, P]: the clamp raises the top class's variance
    dominant = p.gather(0, top).gt(0.5)
    p, q, v = p.clamp_(min=FIT_FLOOR).view(-1), q.view(-1), v.clamp_(min=FIT_FLOOR).view(-1)
    alpha, beta = ws("alpha", n), v  # beta is written over the variance
    _fit_into(p, q, v, alpha, beta)
    # alpha / p = beta / q = p q / var - 1 =: k; at k <= FIT_TOLERANCE the variance is the largest
    # a Beta allows up to rounding, and q = 0 leaves no Beta at all: both invalid.
    tolerance = torch.mul(p, FIT_TOLERANCE, out=ws("tolerance", n))
    valid = torch.gt(alpha, tolerance, out=ws("valid", n, torch.bool))
    valid.logical_and_(torch.gt(beta, 0.0, out=ws("beta_ok", n, torch.bool)))
    fitted = valid.view(shape).any(0)
    saturated = valid.view(shape).gather(0, top).logical_not_().logical_and_(clamped)
    saturated = saturated.logical_and_(dominant).squeeze(0)
    invalid = valid.logical_not_()  # these classes contribute 0
    # Invalid fits get a harmless stand-in Beta(2, 1) so that no NaN is ever computed.
    a = alpha.add_(1.0).masked_fill_(invalid, 2.0)
    b = beta.masked_fill_(invalid, 1.0)
    h = ws("h", n)
    _beta_entropy_into(a, b, h, ws, floored)
    finite = p.mul_(h).clamp_(max=0.0).masked_fill_(invalid, 0.0).view(shape).sum(0)
    return finite, saturated, fitted


@dataclass(frozen=True)
class PosteriorTerm:
    """BalEnt's posterior term S of every pixel, in the parts its consumers need. # [..., H, W]

    ``finite``: the sum over the classes with a valid fit (float64, always finite).
    ``saturated``: the dominant class's fit is invalid only because the variance clamp raised
    its variance above p (1 - p): S is -inf there (see ``posterior_term_parts``).
    ``fitted``: at least one class has a valid fit.
    """

    finite: torch.Tensor
    saturated: torch.Tensor
    fitted: torch.Tensor

    @property
    def value(self) -> torch.Tensor:
        """S itself: ``finite``, and -inf at saturated pixels."""
        return self.finite.masked_fill(self.saturated, float("-inf"))


def posterior_term_parts(mean: torch.Tensor, var: torch.Tensor, *,
                         floored: bool = False) -> PosteriorTerm:
    """BalEnt's posterior term ``S = sum_c min(0, p_c h_c)`` (h_c: entropy of Beta(alpha_c + 1,
    beta_c)) with where it is saturated or unfitted. # [..., C, H, W] -> [..., H, W]

    The fit uses the accurate complement of the top class (``_complement_of_the_top_class``).
    A class with an invalid fit contributes 0, except in one case. When the dominant class
    (mean p > 1/2, complement q) has p q <= 1e-9, its clamped variance 1e-9 exceeds what a Beta
    allows and its fit is invalid, although its real variance (below the clamp) is not. Just
    above that limit, q falls to the clamp, the fit's beta = q (p q / v - 1) falls to 0 and h
    behaves as -1/beta (through digamma(beta)), so S -> -inf; such a pixel ranks after every
    other. Letting the fit contribute 0 past the limit would instead make S jump to 0 and the
    most confident pixels rank first (BalEnt = H / (H + log 2) > 0, 1/BalEnt ~ 1e8). So S = -inf
    there: the exact limit, for the exact and the floored variant alike (the 1e-32 floor on B
    does not act as beta -> 0, where B(alpha + 1, beta) ~ 1/beta is huge). Classes whose fit is
    invalid because their variance is at the Beta's limit (the Bhatia-Davis bound, up to
    ``FIT_TOLERANCE``), and small classes at the mean clamp, still contribute 0.

    Evaluated in blocks of pixels with reused buffers, so the float64 temporaries neither scale
    with the image nor cost an allocation per operation.
    """
    if mean.shape != var.shape or mean.dim() < 3:
        raise ValueError(f"mean and variance must share a [..., C, H, W] shape, got "
                         f"{tuple(mean.shape)} and {tuple(var.shape)}")
    c = mean.shape[CLASS_DIM]
    spatial = mean.shape[:-3] + mean.shape[-2:]
    mean3 = mean.reshape(-1, c, mean.shape[-2] * mean.shape[-1])  # [B, C, P]
    var3 = var.reshape(mean3.shape)
    finite = torch.empty(mean3.shape[0], mean3.shape[2], dtype=torch.float64, device=mean.device)
    saturated = torch.empty(finite.shape, dtype=torch.bool, device=mean.device)
    fitted = torch.empty_like(saturated)
    block = BLOCK_ELEMENTS if mean.device.type == "cpu" else GPU_BLOCK_ELEMENTS
    step = max(1, block // max(c, 1))
    ws = Workspace(c * min(step, mean3.shape[2]), mean.device)
    for image in range(mean3.shape[0]):
        for start in range(0, mean3.shape[2], step):
            cols = slice(start, start + step)
            parts = _posterior_term_block(mean3[image, :, cols], var3[image, :, cols], floored, ws)
            for out, part in zip((finite, saturated, fitted), parts):
                out[image, cols] = part
    return PosteriorTerm(*(t.reshape(spatial) for t in (finite, saturated, fitted)))


def posterior_term(mean: torch.Tensor, var: torch.Tensor, *, floored: bool = False) -> torch.Tensor:
    """BalEnt's ``S`` (float64, -inf at saturated pixels). # [..., C, H, W] -> [..., H, W]

    See ``posterior_term_parts`` for the definition and its one exception to "an invalid fit
    contributes 0".
    """
    return posterior_term_parts(mean, var, floored=floored).value


def posterior_term_parts_of(post: PixelPosterior, *, floored: bool = False) -> PosteriorTerm:
    """``posterior_term_parts`` of a posterior, computed once per posterior and floor setting."""
    return post.derived(("posterior_term", floored),
                        lambda: posterior_term_parts(post.mean, post.variance, floored=floored))


def posterior_term_of(post: PixelPosterior, *, floored: bool = False) -> torch.Tensor:
    """``posterior_term`` of a posterior (shares ``posterior_term_parts_of``'s cached parts)."""
    return posterior_term_parts_of(post, floored=floored).value


def balanced_entropy(post: PixelPosterior, *, floored: bool = False) -> torch.Tensor:
    """BalEnt = (S + H) / (H + log 2), float64; -inf at saturated pixels. # [..., H, W]"""
    h = post.predictive_entropy.to(torch.float64)
    return (posterior_term_of(post, floored=floored) + h) / (h + LOG_2)


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
    top = post.mean.argmax(CLASS_DIM, keepdim=True)
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
