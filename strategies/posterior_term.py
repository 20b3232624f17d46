"""BalEnt's posterior term S = sum_c min(0, p_c h_c): per-class Beta fits and their entropies.

The method is in docs/writing_a_strategy.md (built-ins; "BalEnt at saturation" for the two points
where it departs from a literal reading). Everything here is float64 whatever the input dtype, on
the input's device, over ``[..., C, H, W]`` in and ``[..., H, W]`` out; the entropies come from
``strategies.beta_kernel``, or, on the CPU, the whole term from the compiled loop of
``strategies.native_kernel`` (same arithmetic, tested against this code).
"""
from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import torch

from strategies import native_kernel
from strategies.beta_kernel import Workspace, beta_entropy_into

CLASS_DIM = -3
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
BLOCK_ELEMENTS = 1 << 15  # class-pixel pairs per block on the CPU (working set ~ L2 cache)
GPU_BLOCK_ELEMENTS = 1 << 21  # and on a GPU (few, large kernels; ~0.6 GB of buffers)
# Below this share of valid fits, a block's entropies are evaluated on the valid ones only
# (gathered, then scattered back); above it, on every class-pixel (gathering costs more).
COMPACT_BELOW = 0.7
NATIVE_BLOCK_PIXELS = 1 << 12  # pixels per block for the fused C kernel's threads (strategies.native_kernel)


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
    k = fit_concentration(p, q, v)
    return p * k, q * k


def fit_concentration(p: torch.Tensor, q: torch.Tensor, var: torch.Tensor,
                      out: torch.Tensor | None = None) -> torch.Tensor:
    """``k = p q / var - 1``: the moment fit of mean p (complement q) is Beta(p k, q k).

    The method's ``alpha = p^2 (1 - p) / var - p``, ``beta = (1/p - 1) alpha``; written this way
    1/p - 1 is never formed (it loses digits as p -> 1), and alpha + beta = k exactly.
    """
    return torch.mul(p, q, out=out).div_(var).sub_(1.0)


def beta_entropy(a: torch.Tensor, b: torch.Tensor, *, floored: bool = False) -> torch.Tensor:
    """Differential entropy of Beta(a, b), computed in float64 (a, b > 0; broadcast together).

    ``log B(a, b) - (a-1) psi(a) - (b-1) psi(b) + (a+b-2) psi(a+b)``, evaluated without the
    cancellation of its large terms (see ``strategies.beta_kernel``). With ``floored=True`` log B
    is the reference code's floored ``log(B(a, b) + 1e-32)``. Callers mask invalid fits themselves.
    """
    a, b = torch.broadcast_tensors(a.to(torch.float64), b.to(torch.float64))
    shape, n = a.shape, a.numel()
    ws = Workspace(n, a.device)
    x = ws("x", 3 * n).view(3, n)
    x[0].copy_(a.reshape(-1))
    x[1].copy_(b.reshape(-1))
    torch.add(x[0], x[1], out=x[2])
    alpha, k = torch.sub(x[0], 1.0), torch.sub(x[2], 1.0)
    h = torch.empty(n, dtype=torch.float64, device=a.device)
    beta_entropy_into(x, alpha, k, h, ws, floored)
    return h.reshape(shape)


def _top_class(p: torch.Tensor, ws: Workspace) -> torch.Tensor:
    """Bool ``[C, P]``: the largest mean of each column, the first one if several tie."""
    n = p.numel()
    is_top = torch.eq(p, p.amax(0, keepdim=True), out=ws("is_top", n, torch.bool).view(p.shape))
    if not bool(is_top.sum(0).eq(1).all()):  # exact ties, NaN (rare): argmax (slow) settles them
        is_top.zero_().scatter_(0, p.max(0, keepdim=True).indices, True)
    return is_top


def _complement_of_the_top_class(p: torch.Tensor, q: torch.Tensor, is_top: torch.Tensor,
                                 ws: Workspace) -> None:
    """Fill ``q = 1 - p`` for a ``[C, P]`` block of means ``p`` (float64, written in place), with
    the top class's complement taken as the sum of the other classes' means.

    Rounding destroys ``1 - p`` of a dominant class: a float32 mean of 1 - 2.5e-10 is stored as
    exactly 1.0, one of 1 - 1e-7 as 1 - 1.19e-7. The other classes' means are small numbers
    stored to full relative precision, so their sum is the accurate complement; the top class's
    mean is then set to 1 minus it, so that p + q = 1 for every class. Means that do not sum to
    1 within ``SIMPLEX_TOLERANCE`` (not the means of softmax samples) keep ``1 - p``.
    """
    q.copy_(p).masked_fill_(is_top, 0.0)
    others = q.sum(0)  # [P]: no cancellation
    on_simplex = p.sum(0).sub_(1.0).abs_().le(SIMPLEX_TOLERANCE)  # [P]
    special = torch.logical_and(is_top, on_simplex, out=ws("special", p.numel(), torch.bool)
                                .view(p.shape))
    torch.sub(1.0, p, out=q)  # 1 - p: exact for p >= 1/2, relative error 1e-16 below
    torch.where(special, others, q, out=q)
    torch.where(special, torch.neg(others).add_(1.0), p, out=p)


def _entropies_into(p: torch.Tensor, q: torch.Tensor, k: torch.Tensor, h: torch.Tensor,
                    ws: Workspace, floored: bool) -> None:
    """``h`` = entropy of Beta(1 + p k, q k), flat ``[n]`` (every fit valid: p, q, k > 0)."""
    n = h.numel()
    x = ws("x", 3 * n).view(3, n)  # rows a = 1 + alpha, b = beta, s = 1 + k
    alpha = torch.mul(p, k, out=ws("alpha", n))
    torch.add(alpha, 1.0, out=x[0])
    torch.mul(q, k, out=x[1])
    torch.add(k, 1.0, out=x[2])
    beta_entropy_into(x, alpha, k, h, ws, floored)


def _posterior_term_block(mean: torch.Tensor, var: torch.Tensor, floored: bool,
                          ws: Workspace) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """One block of ``posterior_term_parts``: ``[C, P]`` in; the finite part of S (float64),
    ``saturated`` and ``fitted`` (bool), each ``[P]``, out."""
    n, shape = mean.numel(), mean.shape
    p = ws("p", n).view(shape).copy_(mean)
    v = ws("v", n).view(shape).copy_(var)
    q = ws("q", n).view(shape)
    is_top = _top_class(p, ws)
    _complement_of_the_top_class(p, q, is_top, ws)
    # a saturated candidate: the dominant class, with a variance the clamp raises
    candidate = torch.lt(v, FIT_FLOOR, out=ws("candidate", n, torch.bool).view(shape))
    dominant = torch.gt(p, 0.5, out=ws("dominant", n, torch.bool).view(shape))
    candidate.logical_and_(is_top).logical_and_(dominant)
    p, q, v = p.clamp_(min=FIT_FLOOR).view(-1), q.view(-1), v.clamp_(min=FIT_FLOOR).view(-1)
    k = fit_concentration(p, q, v, out=ws("k", n))  # alpha = p k, beta = q k
    # k <= FIT_TOLERANCE: the variance is the largest a Beta allows, up to rounding (and q = 0,
    # a top class whose other classes all underflowed, gives k = -1): invalid
    valid = torch.gt(k, FIT_TOLERANCE, out=ws("valid", n, torch.bool))
    fitted = valid.view(shape).any(0)
    saturated = candidate.logical_and_(valid.logical_not().view(shape)).any(0)
    contribution = ws("contribution", n)
    n_valid = int(valid.count_nonzero()) if n else 0
    if n_valid < COMPACT_BELOW * n:  # evaluate the valid fits only
        index = valid.nonzero().squeeze(1)
        parts = [torch.index_select(t, 0, index, out=ws(name, n_valid))
                 for t, name in ((p, "p_valid"), (q, "q_valid"), (k, "k_valid"))]
        h = ws("h", n_valid)
        _entropies_into(*parts, h, ws, floored)
        contribution.zero_().index_copy_(0, index, h.mul_(parts[0]).clamp_(max=0.0))
    else:  # every class-pixel, invalid fits with a stand-in Beta(1 + p, 1) masked out after
        invalid = valid.logical_not_()
        k.masked_fill_(invalid, 1.0)
        q.masked_fill_(invalid, 1.0)
        _entropies_into(p, q, k, contribution, ws, floored)
        contribution.mul_(p).clamp_(max=0.0).masked_fill_(invalid, 0.0)
    return contribution.view(shape).sum(0), saturated, fitted


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

    On the CPU (float32/float64 statistics) by the compiled kernel of ``strategies.native_kernel``
    where it is available (on torch's OpenMP threads where it was built with OpenMP); otherwise in
    blocks of pixels with reused buffers, so the float64 temporaries neither scale with the image
    nor cost an allocation per operation.
    """
    return posterior_term_and_scores(mean, var, None, floored=floored)[0]


def posterior_term_and_scores(mean: torch.Tensor, var: torch.Tensor,
                              entropy: torch.Tensor | None, *, floored: bool = False
                              ) -> tuple[PosteriorTerm, torch.Tensor | None]:
    """``posterior_term_parts``, and with the predictive entropy ``entropy`` ``[..., H, W]``
    BalEnt's acquisition values (``uncertainty.balent_acquisition`` of BalEnt, float64) from the
    same pass where the compiled kernel can give them (CPU, H in the statistics' dtype); None
    for the scores otherwise, when the caller computes them from the parts."""
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
    threads = torch.get_num_threads() if mean.device.type == "cpu" else 1
    if var.dtype == mean.dtype and native_kernel.usable_for(mean):
        fused = (entropy is not None and entropy.dtype == mean.dtype
                 and entropy.shape == mean.shape[:-3] + mean.shape[-2:])
        h = entropy.reshape(finite.shape).contiguous() if fused else None
        scores = torch.empty_like(finite) if fused else None
        native_kernel.posterior_term_images(mean3.contiguous(), var3.contiguous(), floored, finite,
                                            saturated, fitted, threads, NATIVE_BLOCK_PIXELS, h, scores)
        return (PosteriorTerm(*(t.reshape(spatial) for t in (finite, saturated, fitted))),
                scores.reshape(spatial) if fused else None)
    block = BLOCK_ELEMENTS if mean.device.type == "cpu" else GPU_BLOCK_ELEMENTS
    step = max(1, block // max(c, 1))
    jobs = [(image, start, min(start + step, mean3.shape[2])) for image in range(mean3.shape[0])
            for start in range(0, mean3.shape[2], step)]

    def run(share: list) -> None:
        ws = Workspace(c * min(step, mean3.shape[2]), mean.device)
        for image, start, stop in share:
            parts = _posterior_term_block(mean3[image, :, start:stop], var3[image, :, start:stop],
                                          floored, ws)
            for out, part in zip((finite, saturated, fitted), parts):
                out[image, start:stop] = part

    workers = min(threads, len(jobs))
    if workers <= 1:
        run(jobs)
    else:  # the blocks' ops are below torch's parallel grain: one block per thread instead
        with ThreadPoolExecutor(workers) as pool:
            for future in [pool.submit(run, jobs[i::workers]) for i in range(workers)]:
                future.result()
    return PosteriorTerm(*(t.reshape(spatial) for t in (finite, saturated, fitted))), None


def posterior_term(mean: torch.Tensor, var: torch.Tensor, *, floored: bool = False) -> torch.Tensor:
    """BalEnt's ``S`` (float64, -inf at saturated pixels). # [..., C, H, W] -> [..., H, W]

    See ``posterior_term_parts`` for the definition and its one exception to "an invalid fit
    contributes 0".
    """
    return posterior_term_parts(mean, var, floored=floored).value
