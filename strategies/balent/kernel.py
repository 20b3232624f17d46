"""BalEnt's posterior term from one entry point, whichever kernel computes it.

Three kernels compute the parts of S (``formula.PosteriorTerm``) for ``[..., C, H, W]``
statistics: the native kernel (``native_kernel``: compiled C++, one fused pass, on a CPU), the
compiled kernel (``compiled_kernel``: one pure torch function fused by ``torch.compile``, on a GPU)
and the torch kernel (``torch_kernel``: eager torch, any device, the reference).
``posterior_term_and_scores`` is the one place that chooses (``backend_for``): the native kernel
wherever it takes the statistics (CPU, float32 or float64, available), the compiled kernel on a
GPU where torch has Triton, the torch kernel elsewhere (another dtype, no compiler, switched off,
a compiled kernel that failed its check, or within ``torch_kernel_only()``). Whether the native
or compiled kernel is available is settled once per process and device type, by
``prepare(device)`` (the harness calls it, through ``scoring_backend``, before its first cycle, so
that neither a build, a compile nor a load falls into a timed scoring; without it, the first use
settles it). The kernels give the same values to rounding (tests/test_strategies/
test_native_kernel.py, test_compiled_kernel.py), so results do not depend on which one ran;
``scoring_backend()`` records which one did.

Saturation: a class with an invalid fit contributes 0 to S, except in one case. When the
dominant class (mean p > 1/2, complement q) has p q <= 1e-9, its clamped variance 1e-9 exceeds
what a Beta allows and its fit is invalid, although its real variance (below the clamp) is not.
Just above that limit, q falls to the clamp, the fit's beta = q (p q / v - 1) falls to 0 and h
behaves as -1/beta (through digamma(beta)), so S -> -inf; such a pixel ranks after every other.
Letting the fit contribute 0 past the limit would instead make S jump to 0 and the most
confident pixels rank first (BalEnt = H / (H + log 2) > 0, 1/BalEnt ~ 1e8). So S = -inf there:
the exact limit, for the exact and the floored variant alike (the 1e-32 floor on B does not act
as beta -> 0, where B(alpha + 1, beta) ~ 1/beta is huge). Classes whose fit is invalid because
their variance is at the Beta's limit (the Bhatia-Davis bound, up to ``FIT_TOLERANCE``), and
small classes at the mean clamp, still contribute 0. The fit takes the top class's complement
from the other classes' means (``torch_kernel._complement_of_the_top_class``).
"""
from __future__ import annotations

from contextlib import contextmanager

import torch

from strategies.balent import compiled_kernel, native_kernel, torch_kernel
from strategies.balent.formula import PosteriorTerm, balanced_entropy_from, balent_acquisition
from strategies.posterior import CLASS_DIM

NATIVE_BLOCK_PIXELS = 1 << 12  # pixels per block shared among the native kernel's threads
_forced_torch = [False]  # within torch_kernel_only()


def usable_for(mean: torch.Tensor) -> bool:
    """Whether the native kernel computes the term for these statistics."""
    return backend_for(mean) == "native"


def backend_for(mean: torch.Tensor) -> str:
    """Which kernel computes the term for these statistics: "native" (a CPU), "compiled" (a GPU
    with Triton) or "torch" (anything else, and within ``torch_kernel_only()``)."""
    if _forced_torch[0]:
        return "torch"
    if native_kernel.takes(mean):
        return "native"
    if compiled_kernel.takes(mean):
        return "compiled"
    return "torch"


@contextmanager
def torch_kernel_only():
    """Within this block BalEnt's posterior term runs the torch kernel (for comparisons)."""
    previous = _forced_torch[0]
    _forced_torch[0] = True
    try:
        yield
    finally:
        _forced_torch[0] = previous


def prepare(device: torch.device | str = "cpu") -> bool:
    """Settle this process's kernel for ``device`` now: on a CPU, build the native kernel if this
    machine has not yet (once, whatever the number of processes starting together) and load it;
    on a GPU, compile the compiled kernel and check it against the torch kernel. A warning where
    it is unavailable. True when the native (CPU) or compiled (GPU) kernel runs. Call it before
    any timed scoring."""
    if torch.device(device).type == "cpu":
        return native_kernel.prepare()
    return compiled_kernel.prepare(device)


def describe() -> str:
    """One line for reports: which kernel computes BalEnt's posterior term on a CPU."""
    reason = native_kernel.unavailable_reason()
    if reason is not None:
        return f"torch kernel (native kernel unavailable: {reason})"
    return native_kernel.describe()


def scoring_backend(device: torch.device | str = "cpu") -> dict[str, str | None]:
    """Which kernel scores BalEnt on ``device``, for a run's config.json: ``balent_kernel``
    ("native" or "torch"), ``balent_kernel_isa`` (the instruction set the native kernel runs),
    ``balent_kernel_build`` (its build: flags, compiler, torch, the build's name) and
    ``balent_kernel_why_torch`` (why the torch kernel runs); the fields that do not apply are None."""
    on_cpu = torch.device(device).type == "cpu"
    if not on_cpu:
        if prepare(device):
            return dict(balent_kernel="compiled", balent_kernel_isa=None,
                        balent_kernel_build=f"torch.compile (inductor), torch {torch.__version__}",
                        balent_kernel_why_torch=None)
        why = compiled_kernel.unavailable_reason(torch.device(device).type)
        return dict(balent_kernel="torch", balent_kernel_isa=None, balent_kernel_build=None,
                    balent_kernel_why_torch=f"compiled kernel: {why}")
    info = native_kernel.build()
    if info is None:
        why = native_kernel.unavailable_reason()
        return dict(balent_kernel="torch", balent_kernel_isa=None, balent_kernel_build=None,
                    balent_kernel_why_torch=why)
    threads = "torch's threads (OpenMP)" if info["parallel"] else "one thread (no OpenMP)"
    return dict(balent_kernel="native", balent_kernel_isa=f"{info['isa']} (of {', '.join(info['isas'])})",
                balent_kernel_build=f"{info['name']}: {info['flags']}; {threads}; {info['compiler']}; "
                                    f"torch {info['torch']}",
                balent_kernel_why_torch=None)


def posterior_term_and_scores(mean: torch.Tensor, var: torch.Tensor,
                              entropy: torch.Tensor | None = None, *, floored: bool = False
                              ) -> tuple[PosteriorTerm, torch.Tensor | None]:
    """BalEnt's posterior term ``S = sum_c min(0, p_c h_c)`` (h_c: entropy of Beta(alpha_c + 1,
    beta_c)) with where it is saturated or unfitted, # [..., C, H, W] -> [..., H, W]; and with
    the predictive entropy ``entropy`` ``[..., H, W]``, BalEnt's acquisition values (float64),
    else None. The native kernel gives them in the pass that computes the term where H has the
    statistics' dtype; otherwise they come from the term in a second pass (``acquisition``)."""
    if mean.shape != var.shape or mean.dim() < 3:
        raise ValueError(f"mean and variance must share a [..., C, H, W] shape, got "
                         f"{tuple(mean.shape)} and {tuple(var.shape)}")
    c = mean.shape[CLASS_DIM]
    spatial = mean.shape[:-3] + mean.shape[-2:]
    mean3 = mean.reshape(-1, c, mean.shape[-2] * mean.shape[-1])  # [B, C, P]
    var3 = var.reshape(mean3.shape)
    scores = None
    backend = backend_for(mean)
    if backend == "compiled":
        fused = compiled_or_none(mean3, var3, entropy, spatial, floored)
        if fused is not None:
            return fused
    if var.dtype == mean.dtype and backend == "native":
        fused = (entropy is not None and entropy.dtype == mean.dtype and entropy.shape == spatial)
        h = entropy.reshape(mean3.shape[0], mean3.shape[2]).contiguous() if fused else None
        finite, saturated, fitted, scores = native_kernel.posterior_term_images(
            mean3.contiguous(), var3.contiguous(), floored, NATIVE_BLOCK_PIXELS, h)
    else:
        finite = torch.empty(mean3.shape[0], mean3.shape[2], dtype=torch.float64, device=mean.device)
        saturated = torch.empty(finite.shape, dtype=torch.bool, device=mean.device)
        fitted = torch.empty_like(saturated)
        torch_kernel.posterior_term_images(mean3, var3, floored, finite, saturated, fitted)
    term = PosteriorTerm(*(t.reshape(spatial) for t in (finite, saturated, fitted)))
    if scores is not None:
        return term, scores.reshape(spatial)
    return term, None if entropy is None else acquisition(term, entropy)


def compiled_or_none(mean3: torch.Tensor, var3: torch.Tensor, entropy: torch.Tensor | None,
                     spatial: torch.Size, floored: bool) -> tuple[PosteriorTerm, torch.Tensor | None] | None:
    """The compiled kernel's term (and scores, with ``entropy``) reshaped to ``spatial``; None
    when it fails here (then it is switched off with a warning, and the caller runs the torch kernel)."""
    fused = entropy is not None and entropy.shape == spatial
    h = entropy.reshape(mean3.shape[0], mean3.shape[2]) if fused else None
    try:
        finite, saturated, fitted, scores = compiled_kernel.run(mean3, var3, h, floored)
    except Exception as error:  # noqa: BLE001  inductor/Triton errors have no common type
        compiled_kernel.switch_off(f"{type(error).__name__}: {str(error).splitlines()[0] if str(error) else ''}")
        return None
    term = PosteriorTerm(*(t.reshape(spatial) for t in (finite, saturated, fitted)))
    if scores is None:
        return term, None if entropy is None else acquisition(term, entropy)
    return term, scores.reshape(spatial)


def acquisition(term: PosteriorTerm, entropy: torch.Tensor) -> torch.Tensor:
    """BalEnt's acquisition values from a kept term and H (``formula.balent_acquisition`` of
    ``formula.balanced_entropy_from``): by the native kernel in one pass where it takes them,
    else by the formula in torch. # [..., H, W] float64"""
    if not _forced_torch[0]:
        scores = native_kernel.balent_acquisition(term.finite, term.saturated, entropy)
        if scores is not None:
            return scores
    return balent_acquisition(balanced_entropy_from(term, entropy))


def posterior_term_parts(mean: torch.Tensor, var: torch.Tensor, *,
                         floored: bool = False) -> PosteriorTerm:
    """``posterior_term_and_scores`` without the scores. # [..., C, H, W] -> [..., H, W]"""
    return posterior_term_and_scores(mean, var, floored=floored)[0]


def posterior_term(mean: torch.Tensor, var: torch.Tensor, *, floored: bool = False) -> torch.Tensor:
    """BalEnt's ``S`` (float64, -inf at saturated pixels). # [..., C, H, W] -> [..., H, W]"""
    return posterior_term_parts(mean, var, floored=floored).value
