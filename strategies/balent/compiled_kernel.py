"""BalEnt's posterior term as one pure torch function, compiled by ``torch.compile`` (the GPU's kernel).

On a GPU the torch kernel (``torch_kernel``) runs ~170 eager float64 passes over the class-pixels
of an image (40 M at 1024x2048 and 19 classes): memory-bound, 0.2% of BALD's throughput on an
H200. ``posterior_term_and_scores`` below computes the same thing, with the same formulas and
constants (``formula``: the fit, its clamps and tolerances; ``beta_entropy``: the shift by 8,
Stirling's form, the fitted remainders, every logarithm gathered into one), as ONE function
without buffers, ``out=`` arguments or data-dependent branches, so that ``torch.compile``
(inductor: Triton on a GPU, C++ on a CPU) fuses it into a few kernels that read the statistics
once and write three values per pixel. Its differences from the torch kernel, which change no
value: the top class is the first maximal mean (``argmax``) without the tie check; every
class-pixel is evaluated (invalid fits with a stand-in Beta(1 + p, 1), masked out after) instead
of gathering the valid ones; the operations are formed in another order (rounding only; the
tests bound it against the torch kernel and the 40-digit reference).

Where it runs (``strategies.balent.kernel`` chooses): on CUDA, when torch has Triton
(``unavailable_reason``) and ``BENCHMARK_COMPILED_KERNEL`` is not ``0``. ``prepare(device)``
compiles it and checks its values on hard statistics (confident, uncertain, saturated, one-hot,
off-simplex) against the torch kernel on the same device; a failed compile or a disagreement
beyond ``SELF_CHECK_RTOL`` switches it off for the process with one warning
(``CompiledKernelWarning``), and the torch kernel runs. Uncompiled (``compiled=False``), the same
function is what the CPU tests check against the reference.
"""
from __future__ import annotations

import math
import os
import threading
import warnings

import torch

from strategies.balent.beta_entropy import (
    HALF_LOG_2PI,
    HALF_LOG_2PI_E,
    LGAMMA_TERMS,
    LOG_REF_BETA_FN_EPS,
    PSI_TERMS,
    SHIFT,
)
from strategies.balent.formula import (
    FIT_FLOOR,
    FIT_TOLERANCE,
    LOG_2,
    SIMPLEX_TOLERANCE,
    balent_acquisition,
    fit_concentration,
)

ENV_SWITCH = "BENCHMARK_COMPILED_KERNEL"  # "0": the torch kernel on a GPU
DEVICE_TYPES = ("cuda",)  # where the compiled kernel is chosen (the CPU has the native kernel)
# pixels per call on the device: one 1024x2048 image (x 19 classes: ~0.3 GB per float64 buffer)
CHUNK_PIXELS = 1 << 21
SELF_CHECK_RTOL = 1e-12  # the compiled kernel against the torch kernel, relative to max(1, |S|)
SELF_CHECK_RTOL_FLOORED = 1e-9  # the floored variant inherits log B's rounding (large numbers)


class CompiledKernelWarning(UserWarning):
    """BalEnt's compiled kernel failed to compile or disagreed with the torch kernel: the torch kernel runs."""


_lock = threading.Lock()
_state: dict[str, object] = {"failed": None, "compiled": None, "checked": set()}


def _polynomial(z: torch.Tensor, coefficients: list[float]) -> torch.Tensor:
    out = torch.full_like(z, coefficients[-1])
    for c in reversed(coefficients[:-1]):
        out = out * z + c
    return out


def _shifted(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``y = x + 8``, ``1 / P(x)`` and ``D(x)`` (``beta_entropy._shift_into``'s arithmetic)."""
    u = x * (x + 7.0)
    low = u * (u + 6.0)
    high = (u + 11.0) * (u + 11.0) - 1.0
    low_sum = 2.0 * u + 6.0
    inverse = 1.0 / (high * low)
    d = (low_sum * high + (low_sum + 16.0) * low) * inverse * (2.0 * x + 7.0)
    return x + float(SHIFT), inverse, d


def beta_entropy(alpha: torch.Tensor, beta: torch.Tensor, floored: bool = False) -> torch.Tensor:
    """Entropy of Beta(1 + alpha, beta), float64, elementwise (``beta_entropy.beta_entropy_into``'s
    formula written as one expression: a, b, s = 1 + alpha, beta, 1 + alpha + beta)."""
    k = alpha + beta
    ys, inverses, ds, ws, rs, ts = [], [], [], [], [], []
    for x in (alpha + 1.0, beta, k + 1.0):
        y, inverse, d = _shifted(x)
        w = 1.0 / y
        z = w * w
        ys.append(y), inverses.append(inverse), ds.append(d), ws.append(w)
        rs.append(_polynomial(z, LGAMMA_TERMS) * w)
        ts.append(_polynomial(z, PSI_TERMS) * z)
    v = ys[0] * ys[1] * ws[2]
    v2 = v * v
    v8 = (v2 * v2) * (v2 * v2)
    h = torch.log(v8 * torch.sqrt(v) * inverses[0] * inverses[1] / inverses[2] * ws[2])
    h = h + (HALF_LOG_2PI_E - SHIFT) - (SHIFT + 1) / 2 * (ws[0] + ws[1]) + (SHIFT + 2) / 2 * ws[2]
    h = h + rs[0] + rs[1] - rs[2]
    e = [t + d for t, d in zip(ts, ds)]
    h = h + alpha * e[0] + (beta * e[1] - e[1]) + (e[2] - k * e[2])
    if floored:
        log_b = (torch.log(ys[0] / ys[2]) * (ys[0] - 0.5) + torch.log(ys[1] / ys[2]) * (ys[1] - 0.5)
                 + (SHIFT - 0.5) * torch.log(ys[2]) + (HALF_LOG_2PI - SHIFT) + rs[0] + rs[1] - rs[2]
                 + torch.log(inverses[0] * inverses[1] / inverses[2]))
        h = h + torch.nn.functional.softplus(LOG_REF_BETA_FN_EPS - log_b, threshold=40)
    return h


def posterior_term_and_scores(mean: torch.Tensor, var: torch.Tensor, entropy: torch.Tensor | None,
                              floored: bool = False):
    """The parts of S for ``[B, C, P]`` statistics (any float dtype): ``finite`` (float64),
    ``saturated``, ``fitted`` (bool), each ``[B, P]``; with the predictive entropy ``[B, P]``,
    BalEnt's acquisition values (float64) too, else None. Pure: what ``torch.compile`` fuses."""
    p = mean.to(torch.float64)
    v = var.to(torch.float64)
    c = p.shape[1]
    top = torch.argmax(p, dim=1, keepdim=True)  # the first maximal mean
    is_top = torch.arange(c, device=p.device).view(1, c, 1) == top
    # the top class's complement from the other classes' means (torch_kernel._complement_of_the_top_class)
    others = torch.where(is_top, 0.0, p).sum(1, keepdim=True)
    on_simplex = (p.sum(1, keepdim=True) - 1.0).abs() <= SIMPLEX_TOLERANCE
    special = is_top & on_simplex
    q = torch.where(special, others, 1.0 - p)
    p = torch.where(special, 1.0 - others, p)
    candidate = (v < FIT_FLOOR) & is_top & (p > 0.5)
    p = p.clamp(min=FIT_FLOOR)
    v = v.clamp(min=FIT_FLOOR)
    k = fit_concentration(p, q, v)
    valid = k > FIT_TOLERANCE
    fitted = valid.any(1)
    saturated = (candidate & ~valid).any(1)
    k = torch.where(valid, k, 1.0)  # a stand-in Beta(1 + p, 1) where the fit is invalid
    q = torch.where(valid, q, 1.0)
    h = beta_entropy(p * k, q * k, floored)
    finite = torch.where(valid, (p * h).clamp(max=0.0), 0.0).sum(1)
    if entropy is None:
        return finite, saturated, fitted, None
    big_h = entropy.to(torch.float64)
    value = torch.where(saturated, -math.inf, finite)
    return finite, saturated, fitted, balent_acquisition((value + big_h) / (big_h + LOG_2))


def _compiled():
    with _lock:
        if _state["compiled"] is None:
            _state["compiled"] = torch.compile(posterior_term_and_scores, dynamic=True)
        return _state["compiled"]


def run(mean: torch.Tensor, var: torch.Tensor, entropy: torch.Tensor | None, floored: bool,
        *, compiled: bool = True, chunk: int = CHUNK_PIXELS):
    """``posterior_term_and_scores`` over ``[B, C, P]`` in chunks of ``chunk`` pixels (compiled
    once per process, any shape), the results concatenated: (finite, saturated, fitted, scores)."""
    fn = _compiled() if compiled else posterior_term_and_scores
    pixels = mean.shape[2]
    # always with an entropy (zeros when none is given, the scores then dropped): one graph per
    # variant, so the compile made by ``prepare`` is the one every later call uses
    h = entropy if entropy is not None else torch.zeros(mean.shape[0], pixels, dtype=mean.dtype,
                                                        device=mean.device)
    parts = [fn(mean[:, :, start:start + chunk], var[:, :, start:start + chunk], h[:, start:start + chunk],
                floored) for start in range(0, max(pixels, 1), chunk)]
    joined = [part_list[0] if len(part_list) == 1 else torch.cat(part_list, dim=1)
              for part_list in zip(*parts)]
    return (*joined[:3], None if entropy is None else joined[3])


def unavailable_reason(device_type: str) -> str | None:
    """Why the compiled kernel does not run on this device type here (None: it runs)."""
    if os.environ.get(ENV_SWITCH, "1").strip() == "0":
        return f"switched off ({ENV_SWITCH}=0)"
    if device_type not in DEVICE_TYPES:
        return f"{device_type}: not a device the compiled kernel is chosen for ({', '.join(DEVICE_TYPES)})"
    if device_type == "cuda" and not _has_triton():
        return "torch has no Triton (torch.compile's GPU back-end)"
    if _state["failed"] is not None:
        return str(_state["failed"])
    return None


def _has_triton() -> bool:
    try:
        from torch.utils._triton import has_triton
    except ImportError:  # an older torch
        return False
    return bool(has_triton())


def takes(mean: torch.Tensor) -> bool:
    """Whether the compiled kernel computes the term for these statistics (a float dtype on a
    device it is chosen for, and not switched off or failed)."""
    return (mean.is_floating_point() and unavailable_reason(mean.device.type) is None
            and prepare(mean.device))  # compiled and checked at the first use, if not before


def switch_off(reason: str) -> None:
    """For the rest of the process the torch kernel runs instead; one warning says why."""
    if _state["failed"] is None:
        _state["failed"] = f"failed here: {reason}"
        warnings.warn(f"BalEnt's compiled kernel is switched off: {reason}; the torch kernel runs "
                      f"(same values, slower on a GPU; set {ENV_SWITCH}=0 to skip it)",
                      CompiledKernelWarning, stacklevel=3)


def self_check_statistics(device: torch.device | str) -> tuple[torch.Tensor, torch.Tensor]:
    """Means and variances ``[1, C, P]`` (float32) that exercise every branch: uncertain,
    confident, saturated, one-hot with zero variance, off-simplex, ties, every fit invalid."""
    g = torch.Generator().manual_seed(0)
    pieces = []
    for spread, scale in ((1.0, 2.0), (0.5, 6.0), (0.01, 30.0), (1e-4, 8.0)):
        base = scale * torch.randn(19, 2048, generator=g, dtype=torch.float64)
        samples = torch.softmax(base + spread * torch.randn(6, 19, 2048, generator=g, dtype=torch.float64), 1)
        pieces.append((samples.mean(0), samples.var(0, unbiased=False)))
    special_mean = torch.zeros(19, 4, dtype=torch.float64)
    special_var = torch.zeros(19, 4, dtype=torch.float64)
    special_mean[0, 0] = 1.0                                   # one-hot, zero variance: saturated
    special_mean[:2, 1] = 0.5                                  # a tie
    special_var[:2, 1] = 0.01
    special_mean[:, 2] = 0.9                                   # off the simplex
    special_var[:, 2] = 0.01
    special_mean[:, 3] = 1 / 19                                # every fit invalid
    special_var[:, 3] = 0.3
    mean = torch.cat([m for m, _ in pieces] + [special_mean], 1)
    var = torch.cat([v for _, v in pieces] + [special_var], 1)
    return mean.float()[None].to(device), var.float()[None].to(device)


def worst_difference(a, b) -> float:
    """The largest difference of two terms' finite parts relative to max(1, |S|); inf where
    their saturated or fitted flags differ."""
    if not (torch.equal(a[1].cpu(), b[1].cpu()) and torch.equal(a[2].cpu(), b[2].cpu())):
        return math.inf
    scale = b[0].abs().clamp(min=1.0)
    return float(((a[0] - b[0]).abs() / scale).max()) if scale.numel() else 0.0


def prepare(device: torch.device | str) -> bool:
    """Compile the kernel for ``device`` now and check it against the torch kernel on hard
    statistics (both variants); on a failure or a disagreement, switch it off with one warning.
    True when the compiled kernel runs on ``device``. Idempotent per device type."""
    from strategies.balent import torch_kernel

    device = torch.device(device)
    if unavailable_reason(device.type) is not None:
        return False
    if device.type in _state["checked"]:
        return True
    mean, var = self_check_statistics(device)
    for floored in (False, True):
        try:
            ours = run(mean, var, None, floored)
        except Exception as error:  # noqa: BLE001  inductor/Triton errors have no common type
            switch_off(f"torch.compile failed on {device.type}: {type(error).__name__}: "
                       f"{str(error).splitlines()[0] if str(error) else ''}")
            return False
        finite = torch.empty(mean.shape[0], mean.shape[2], dtype=torch.float64, device=device)
        saturated = torch.empty(finite.shape, dtype=torch.bool, device=device)
        fitted = torch.empty_like(saturated)
        torch_kernel.posterior_term_images(mean, var, floored, finite, saturated, fitted)
        worst = worst_difference(ours, (finite, saturated, fitted))
        bound = SELF_CHECK_RTOL_FLOORED if floored else SELF_CHECK_RTOL
        if not worst <= bound:
            switch_off(f"on {device.type} it differs from the torch kernel by {worst:.3g} "
                       f"({'floored' if floored else 'exact'} variant; bound {bound:g})")
            return False
    _state["checked"].add(device.type)
    return True
