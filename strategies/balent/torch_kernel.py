"""BalEnt's posterior term in eager torch: the reference back-end, and the one on a GPU.

``posterior_term_images`` fills the parts of S (``formula.PosteriorTerm``) for ``[B, C, P]``
statistics in blocks of pixels with reused buffers, so that the float64 temporaries neither
scale with the image nor cost an allocation per operation; on a CPU the blocks are shared among
``torch.get_num_threads()`` Python threads (their operations are below torch's own parallel
grain). The fit and its constants come from ``strategies.balent.formula``, the Beta entropies
from ``strategies.balent.beta_entropy``. The native kernel computes the same, faster, on a CPU;
which of the two runs is decided in ``strategies.balent.kernel``.
"""
from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import torch

from strategies.balent.beta_entropy import Workspace, beta_entropy_into
from strategies.balent.formula import FIT_FLOOR, FIT_TOLERANCE, SIMPLEX_TOLERANCE, fit_concentration

BLOCK_ELEMENTS = 1 << 15  # class-pixel pairs per block on the CPU (working set ~ L2 cache)
GPU_BLOCK_ELEMENTS = 1 << 21  # and on a GPU (few, large kernels; ~0.6 GB of buffers)
# Below this share of valid fits, a block's entropies are evaluated on the valid ones only
# (gathered, then scattered back); above it, on every class-pixel (gathering costs more).
COMPACT_BELOW = 0.7


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


def posterior_term_images(mean: torch.Tensor, var: torch.Tensor, floored: bool, finite: torch.Tensor,
                          saturated: torch.Tensor, fitted: torch.Tensor) -> None:
    """Fill ``finite`` (float64), ``saturated`` and ``fitted`` (bool), each ``[B, P]``, from means
    and variances ``[B, C, P]`` (any float dtype, any device), block by block."""
    c, pixels = mean.shape[1], mean.shape[2]
    block = BLOCK_ELEMENTS if mean.device.type == "cpu" else GPU_BLOCK_ELEMENTS
    step = max(1, block // max(c, 1))
    jobs = [(image, start, min(start + step, pixels)) for image in range(mean.shape[0])
            for start in range(0, pixels, step)]

    def run(share: list) -> None:
        ws = Workspace(c * min(step, pixels), mean.device)
        for image, start, stop in share:
            parts = _posterior_term_block(mean[image, :, start:stop], var[image, :, start:stop],
                                          floored, ws)
            for out, part in zip((finite, saturated, fitted), parts):
                out[image, start:stop] = part

    threads = torch.get_num_threads() if mean.device.type == "cpu" else 1
    workers = min(threads, len(jobs))
    if workers <= 1:
        run(jobs)
    else:  # the blocks' ops are below torch's parallel grain: one block per thread instead
        with ThreadPoolExecutor(workers) as pool:
            for future in [pool.submit(run, jobs[i::workers]) for i in range(workers)]:
                future.result()
