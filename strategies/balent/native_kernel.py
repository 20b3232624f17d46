"""BalEnt's posterior term as compiled C (``posterior_term.c``), built on first use.

The C code does on the CPU what ``strategies.balent.torch_kernel`` does with ~200 passes of
eager torch over memory: the fit, the top class's complement, the Beta entropies
(``strategies.balent.beta_entropy``'s formula) and the sum over classes, chunk by chunk of pixels,
vectorised by the compiler; and BalEnt's acquisition value from that term in one pass. It is built
once per machine with the system's C compiler (the one that built mmcv) into a cache folder and
loaded with ctypes. Built with OpenMP where the compiler has it, it spreads an image's blocks over
torch's own OpenMP threads (the runtime torch loaded, shared by name), so that they work instead of
spinning beside threads of ours; without OpenMP it runs on one thread. Where it cannot be built (no
compiler), where it is switched off (``BENCHMARK_NATIVE_KERNEL=0``) and on a GPU, the torch code
runs instead (``strategies.balent.kernel`` decides): same results to rounding
(tests/test_strategies/test_native_kernel.py).
"""
from __future__ import annotations

import ctypes
import hashlib
import logging
import os
import platform
import shutil
import subprocess
import sysconfig
import tempfile
import threading
from pathlib import Path

import torch

from strategies.balent import formula
from strategies.balent.beta_entropy import HALF_LOG_2PI, LGAMMA_TERMS, LOG_REF_BETA_FN_EPS, PSI_TERMS, SHIFT

SOURCE = Path(__file__).with_name("posterior_term.c")
ENV_SWITCH = "BENCHMARK_NATIVE_KERNEL"  # "0": always the torch code
ENV_CACHE = "BENCHMARK_NATIVE_CACHE"  # where the compiled library is kept
BASE_FLAGS = ["-O3", "-std=gnu99", "-fno-math-errno", "-fno-trapping-math", "-fPIC", "-shared"]
# tried in turn until the compiler accepts one: this CPU's vector instructions, and GCC's
# pre-allocation scheduling (it interleaves the loops' independent chains; ~3% here)
TUNING_FLAGS = (["-march=native", "-fschedule-insns", "-fsched-pressure"], ["-march=native"], [])
# each tuning is tried with OpenMP first (several threads: posterior_term_images), then without
OPENMP_FLAGS = ["-fopenmp"]
DTYPES = {torch.float32: "posterior_term_images_float32", torch.float64: "posterior_term_images_float64"}
ACQUISITION = {torch.float32: "balent_acquisition_float32", torch.float64: "balent_acquisition_float64"}
_P, _I64, _INT = ctypes.c_void_p, ctypes.c_int64, ctypes.c_int
SIGNATURES = {  # the library's functions and their arguments (all but the last return nothing)
    **{name: [_P, _P, _I64, _I64, _I64, _I64, _INT, _INT, _P, _P, _P, _P, _P] for name in DTYPES.values()},
    **{name: [_P, _P, _P, _I64, _P] for name in ACQUISITION.values()},
    "beta_entropy_float64": [_P, _P, _I64, _INT, _P],
    "log_positive_float64": [_P, _I64, _P],
    "posterior_term_parallel": [],  # returns int: 1 if built with OpenMP
}

log = logging.getLogger(__name__)
_lock = threading.Lock()
_state: dict[str, object] = {}


def _source_text() -> str:
    """The C source with the constants of ``strategies.balent.formula`` and ``beta_entropy``
    (their one owner) prepended as macros."""
    values = {name: getattr(formula, name)
              for name in ("FIT_FLOOR", "FIT_TOLERANCE", "SIMPLEX_TOLERANCE", "LOG_2")}
    values.update(SHIFT=float(SHIFT), HALF_LOG_2PI=HALF_LOG_2PI, LOG_REF_BETA_FN_EPS=LOG_REF_BETA_FN_EPS)
    values.update({f"LGAMMA_C{i}": c for i, c in enumerate(LGAMMA_TERMS, 1)})
    values.update({f"PSI_C{i}": c for i, c in enumerate(PSI_TERMS, 1)})
    if len(LGAMMA_TERMS) != 6 or len(PSI_TERMS) != 6:
        raise RuntimeError("posterior_term.c evaluates 6-term remainders; beta_entropy has others")
    macros = [f"#define {name} ({float(value)!r})" for name, value in values.items()]
    return "\n".join(macros) + "\n" + SOURCE.read_text()


def _compiler() -> str | None:
    """``$CC``, then the compiler Python was built with, then ``cc`` and ``gcc`` (first word each)."""
    for command in (os.environ.get("CC", ""), sysconfig.get_config_var("CC") or "", "cc", "gcc"):
        words = command.split()
        path = shutil.which(words[0]) if words else None
        if path:
            return path
    return None


def _cpu_signature() -> str:
    """What ``-march=native`` depends on: the CPU's feature flags where Linux lists them."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith(("flags", "Features")):
                return line
    except OSError:
        pass
    return f"{platform.machine()} {platform.processor()}"


def _cache_folder() -> Path:
    configured = os.environ.get(ENV_CACHE)
    if configured:
        return Path(configured)
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "al-seg-benchmark" / "native"


def _build(compiler: str, text: str) -> Path:
    """The library for this source, compiler and CPU: compiled once, then reused from the cache
    (the user's cache folder, else the temporary folder)."""
    flags = [flag for tuning in TUNING_FLAGS for flag in tuning] + OPENMP_FLAGS
    key = hashlib.sha256("\0".join([text, compiler, _cpu_signature(), *BASE_FLAGS, *flags])
                         .encode()).hexdigest()[:20]
    name = f"posterior_term-{key}{sysconfig.get_config_var('SHLIB_SUFFIX') or '.so'}"
    unwritable = []
    for folder in (_cache_folder(), Path(tempfile.gettempdir()) / "al-seg-benchmark-native"):
        target = folder / name
        if target.exists():
            return target
        try:
            folder.mkdir(parents=True, exist_ok=True)
            with tempfile.TemporaryDirectory(dir=folder) as scratch:
                return _compile(compiler, text, Path(scratch), target)
        except OSError as error:
            unwritable.append(f"{folder}: {error.strerror or error}")
    raise RuntimeError(f"no writable folder for the compiled kernel ({'; '.join(unwritable)})")


def _compile(compiler: str, text: str, scratch: Path, target: Path) -> Path:
    source = scratch / SOURCE.name
    source.write_text(text)
    failure = ""
    for attempt, flags in enumerate(BASE_FLAGS + tuning + extra for tuning in TUNING_FLAGS
                                    for extra in (OPENMP_FLAGS, [])):
        built = scratch / f"{attempt}-{target.name}"
        result = subprocess.run([compiler, *flags, str(source), "-o", str(built)],
                                capture_output=True, text=True)
        if result.returncode != 0:
            lines = result.stderr.strip().splitlines()
            failure = lines[-1] if lines else f"exit status {result.returncode}"
            continue
        try:  # built is not yet loadable everywhere (an OpenMP runtime the loader cannot find)
            ctypes.CDLL(str(built))
        except OSError as error:
            failure = str(error)
            continue
        os.replace(built, target)  # atomic: concurrent builders agree
        return target
    raise RuntimeError(f"{compiler} could not build {SOURCE.name}: {failure}")


def _load() -> None:
    if os.environ.get(ENV_SWITCH, "1") == "0":
        _state.update(library=None, reason=f"switched off ({ENV_SWITCH}=0)")
        return
    compiler = _compiler()
    if compiler is None:
        _state.update(library=None, reason="no C compiler found (set CC)")
        return
    try:
        library = ctypes.CDLL(str(_build(compiler, _source_text())))
    except (RuntimeError, OSError) as error:
        _state.update(library=None, reason=str(error))
        log.warning("BalEnt's fused kernel is unavailable, using the torch code: %s", error)
        return
    for name, argtypes in SIGNATURES.items():
        function = getattr(library, name)
        function.restype, function.argtypes = None, argtypes
    library.posterior_term_parallel.restype = ctypes.c_int
    _state.update(library=library, reason=None, parallel=bool(library.posterior_term_parallel()))


def library() -> ctypes.CDLL | None:
    """The loaded kernel, or None (``unavailable_reason`` says why). Built on the first call."""
    with _lock:
        if "library" not in _state:
            _load()
        return _state["library"]  # type: ignore[return-value]


def unavailable_reason() -> str | None:
    """Why the fused kernel is not used (None when it is)."""
    library()
    return _state.get("reason")  # type: ignore[return-value]


def takes(mean: torch.Tensor) -> bool:
    """Whether the kernel can take these statistics (CPU, float32 or float64, built)."""
    return mean.device.type == "cpu" and mean.dtype in DTYPES and library() is not None


def parallel() -> bool:
    """Whether the kernel runs on several threads (built with OpenMP); False when unavailable."""
    return library() is not None and bool(_state.get("parallel"))


def describe() -> str:
    """One line for reports: the built kernel and its threads (None where it is unavailable)."""
    threads = "torch's OpenMP threads" if parallel() else "one thread (built without OpenMP)"
    return f"fused C kernel (strategies/balent/posterior_term.c) on {threads}"


def posterior_term_images(mean: torch.Tensor, var: torch.Tensor, floored: bool, finite: torch.Tensor,
                          saturated: torch.Tensor, fitted: torch.Tensor, threads: int, block: int,
                          entropy: torch.Tensor | None = None, scores: torch.Tensor | None = None) -> None:
    """Fill ``finite`` (float64), ``saturated`` and ``fitted`` (bool), each ``[B, P]`` and
    contiguous, from contiguous means and variances ``[B, C, P]`` of one dtype, in blocks of
    ``block`` pixels on up to ``threads`` threads (one where the kernel is not ``parallel``).
    With ``entropy`` (H, contiguous ``[B, P]``, the means' dtype), also BalEnt's acquisition
    values into ``scores`` (float64 ``[B, P]``) in the same pass."""
    if mean.dtype != var.dtype or not (mean.is_contiguous() and var.is_contiguous()):
        raise ValueError("means and variances must be contiguous and share a dtype")
    if entropy is not None and (entropy.dtype != mean.dtype or not entropy.is_contiguous()
                                or scores is None or entropy.shape != finite.shape):
        raise ValueError("the entropy must be contiguous, [B, P] and in the means' dtype, with scores")
    images, c, p = mean.shape
    extra = (entropy.data_ptr(), scores.data_ptr()) if entropy is not None else (None, None)
    getattr(library(), DTYPES[mean.dtype])(mean.data_ptr(), var.data_ptr(), images, c, p,
                                           max(block, 1), int(floored), max(threads, 1),
                                           finite.data_ptr(), saturated.data_ptr(), fitted.data_ptr(),
                                           *extra)


def beta_entropy(alpha: torch.Tensor, beta: torch.Tensor, *, floored: bool = False) -> torch.Tensor:
    """The C kernel's entropy of Beta(1 + alpha, beta) (float64 CPU tensors of one shape), for
    checking it against references; BalEnt itself calls ``posterior_term_images``."""
    alpha, beta = (t.to(torch.float64).contiguous() for t in torch.broadcast_tensors(alpha, beta))
    out = torch.empty_like(alpha)
    library().beta_entropy_float64(alpha.data_ptr(), beta.data_ptr(), alpha.numel(), int(floored),
                                   out.data_ptr())
    return out


def balent_acquisition(finite: torch.Tensor, saturated: torch.Tensor,
                       predictive_entropy: torch.Tensor) -> torch.Tensor | None:
    """BalEnt's acquisition values (float64, the shape of ``finite``) from a ``PosteriorTerm``'s
    parts and H in one pass, as ``strategies.balent.formula`` defines them; None where this
    kernel cannot take the inputs (not on the CPU, H neither float32 nor float64, unavailable)."""
    if not (takes(predictive_entropy) and finite.device.type == "cpu"
            and finite.shape == predictive_entropy.shape == saturated.shape):
        return None
    finite, saturated = finite.contiguous(), saturated.contiguous()
    entropy = predictive_entropy.contiguous()
    out = torch.empty(finite.shape, dtype=torch.float64)
    getattr(library(), ACQUISITION[entropy.dtype])(finite.data_ptr(), saturated.data_ptr(),
                                                   entropy.data_ptr(), finite.numel(), out.data_ptr())
    return out
