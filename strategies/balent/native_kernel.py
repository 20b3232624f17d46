"""BalEnt's posterior term compiled: ``posterior_term.cpp`` (its arithmetic in
``posterior_term_kernel.h``), built with ``torch.utils.cpp_extension`` and called as the torch
operators ``torch.ops.al_seg_balent.*``.

What it computes: on the CPU, what ``strategies.balent.torch_kernel`` does with ~200 passes of
eager torch over memory (the fit, the top class's complement, the Beta entropies by
``strategies.balent.beta_entropy``'s formula, the sum over classes), in one pass chunk by chunk
of pixels, vectorised by the compiler; and BalEnt's acquisition value in the same pass. An image's
blocks of pixels run on torch's own intra-op threads (``at::parallel_for``, OpenMP).

How it is built (``prepare``): once per machine, with ninja, into cpp_extension's build folder
(``$TORCH_EXTENSIONS_DIR``, else ``~/.cache/torch_extensions``; the temporary folder where that
cannot be written), in a folder named by a hash of the two sources, the flags (the constants of
``formula`` and ``beta_entropy`` among them, as ``-D`` flags), the compiler's identity and torch's
and Python's versions: any change builds anew beside the old build. cpp_extension's file lock in
that folder makes processes that start together (``--workers``, DDP ranks, array jobs) wait for
the first one's build and then load it; a lock older than ``STALE_LOCK_SECONDS`` (its builder
was killed) is removed with a warning.

Portable, not ``-march=native``: the arithmetic is compiled for AVX-512, AVX2 and SSE2 (x86-64;
elsewhere the compiler's default target) with ``-ffp-contract=off``, and the best that the CPU
runs is chosen when the kernel is loaded. Every operation is then rounded as written, so every
instruction set gives the same bits (tests/test_strategies/test_native_kernel.py compares them):
a build can be shared by machines, and scores do not depend on the machine that computed them.
``build()`` says which instruction set, flags, compiler and torch this process runs.

Where it is unavailable, the torch kernel runs (``strategies.balent.kernel`` decides): no C++
compiler, no ninja or a failing build give one warning (``NativeKernelWarning``) that says why;
``BENCHMARK_NATIVE_KERNEL=0`` switches it off without one.
"""
from __future__ import annotations

import hashlib
import os
import platform
import shlex
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import warnings
from contextlib import contextmanager
from pathlib import Path

import torch

from strategies.balent import formula
from strategies.balent.beta_entropy import HALF_LOG_2PI, LGAMMA_TERMS, LOG_REF_BETA_FN_EPS, PSI_TERMS, SHIFT

SOURCE = Path(__file__).with_name("posterior_term.cpp")
KERNEL = Path(__file__).with_name("posterior_term_kernel.h")  # included by SOURCE
OPERATORS = "al_seg_balent"  # torch.ops.<this>: the library's namespace in posterior_term.cpp
ENV_SWITCH = "BENCHMARK_NATIVE_KERNEL"  # "0": always the torch kernel
STALE_LOCK_SECONDS = 900  # a build takes well under a minute; a lock this old lost its builder
# Every build: optimised, each floating-point operation rounded as written (no contraction into
# fused multiply-adds: the same bits on every instruction set), no errno or trap bookkeeping.
BASE_FLAGS = ["-O3", "-ffp-contract=off", "-fno-math-errno", "-fno-trapping-math"]
TUNING_FLAGS = ["-fschedule-insns", "-fsched-pressure"]  # GCC's pre-allocation scheduling (~3%)
OPENMP_FLAGS = ["-fopenmp"]  # at::parallel_for runs on torch's OpenMP threads only with it
# tried in turn until one builds: tuned with OpenMP, then without the tuning, then without OpenMP
ATTEMPTS = (TUNING_FLAGS + OPENMP_FLAGS, OPENMP_FLAGS, [])
DTYPES = (torch.float32, torch.float64)


class NativeKernelWarning(UserWarning):
    """BalEnt's native kernel could not be built or loaded: the torch kernel runs instead."""


_lock = threading.Lock()
_state: dict[str, object] = {}


def constant_flags() -> list[str]:
    """``-D`` flags with the constants that ``formula`` and ``beta_entropy`` own (their one owner)."""
    values = {name: getattr(formula, name) for name in ("FIT_FLOOR", "FIT_TOLERANCE", "SIMPLEX_TOLERANCE", "LOG_2")}
    values.update(SHIFT=float(SHIFT), HALF_LOG_2PI=HALF_LOG_2PI, LOG_REF_BETA_FN_EPS=LOG_REF_BETA_FN_EPS)
    if len(LGAMMA_TERMS) != 6 or len(PSI_TERMS) != 6:
        raise RuntimeError("posterior_term_kernel.h evaluates 6-term remainders; beta_entropy has others")
    values.update({f"LGAMMA_C{i}": c for i, c in enumerate(LGAMMA_TERMS, 1)})
    values.update({f"PSI_C{i}": c for i, c in enumerate(PSI_TERMS, 1)})
    return [f"-D{name}={float(value)!r}" for name, value in values.items()]


def _compiler() -> list[str] | None:
    """cpp_extension's C++ compiler command (``$CXX``, else ``c++``), if it is found."""
    from torch.utils.cpp_extension import get_cxx_compiler

    words = shlex.split(get_cxx_compiler())
    return words if words and shutil.which(words[0]) else None


def _compiler_identity(compiler: list[str]) -> str:
    """The compiler's path and the first line of its ``--version`` (part of the build's name)."""
    try:
        result = subprocess.run([*compiler, "--version"], capture_output=True, text=True, timeout=60)
        version = (result.stdout.strip().splitlines() or ["?"])[0]
    except (OSError, subprocess.SubprocessError) as error:
        version = f"? ({error})"
    return f"{os.path.realpath(shutil.which(compiler[0]) or compiler[0])}: {version}"


def _build_name(flags: list[str], compiler: str) -> str:
    """``al_seg_balent_<hash>``: the hash covers what the built library depends on."""
    parts = [SOURCE.read_text(), KERNEL.read_text(), *flags, compiler, torch.__version__,
             str(torch.version.git_version), sys.implementation.cache_tag, platform.machine()]
    return f"{OPERATORS}_{hashlib.sha256(chr(0).join(parts).encode()).hexdigest()[:16]}"


def _build_roots() -> list[Path]:
    """cpp_extension's build root, then the temporary folder (if the first cannot be written)."""
    from torch.utils.cpp_extension import get_default_build_root

    configured = os.environ.get("TORCH_EXTENSIONS_DIR")
    root = Path(configured) if configured else Path(get_default_build_root())
    return [root, Path(tempfile.gettempdir()) / "al-seg-benchmark-torch-extensions"]


@contextmanager
def _ninja_on_path():
    """Make the ninja of this Python environment findable (the ``ninja`` package, or the
    interpreter's folder) when the environment's bin folder is not on ``PATH``."""
    previous = os.environ.get("PATH", "")
    if shutil.which("ninja") is None:
        folders = [os.path.dirname(sys.executable)]
        try:
            import ninja  # the PyPI package: its BIN_DIR holds the executable

            folders.insert(0, ninja.BIN_DIR)
        except (ImportError, AttributeError):
            pass
        os.environ["PATH"] = os.pathsep.join([*folders, previous])
    try:
        yield
    finally:
        os.environ["PATH"] = previous


def _clear_stale_lock(folder: Path) -> None:
    lock = folder / "lock"
    try:
        age = time.time() - lock.stat().st_mtime
    except OSError:
        return
    if age > STALE_LOCK_SECONDS:
        warnings.warn(f"removing a build lock of BalEnt's native kernel {age / 60:.0f} minutes old "
                      f"(its build was interrupted): {lock}", NativeKernelWarning, stacklevel=4)
        lock.unlink(missing_ok=True)


def _build_and_load(compiler: list[str]) -> dict:
    """Build (or find built) and load the library; the build's description."""
    from torch.utils import cpp_extension

    identity = _compiler_identity(compiler)
    failures = []
    for extra in ATTEMPTS:
        flags = BASE_FLAGS + extra + constant_flags()
        name = _build_name(flags, identity)
        for root in _build_roots():
            folder = root / name
            try:
                folder.mkdir(parents=True, exist_ok=True)
            except OSError as error:
                failures.append(f"{root}: {error.strerror or error}")
                continue
            _clear_stale_lock(folder)
            try:
                with _ninja_on_path():
                    cpp_extension.load(name, [str(SOURCE)], extra_cflags=flags,
                                       extra_ldflags=[f for f in extra if f in OPENMP_FLAGS],
                                       extra_include_paths=[str(SOURCE.parent)], build_directory=str(folder),
                                       is_python_module=False, verbose=False)
            except (RuntimeError, OSError, subprocess.SubprocessError) as error:
                lines = [line for line in str(error).strip().splitlines() if line.strip()]
                failures.append(lines[-1] if lines else type(error).__name__)
                break  # the next flags, not the next folder
            isas, parallel = getattr(torch.ops, OPERATORS).build_info()
            return dict(name=name, folder=str(folder), isa=isas[0], isas=list(isas), parallel=bool(parallel),
                        flags=" ".join(BASE_FLAGS + extra), compiler=identity, torch=torch.__version__)
    raise RuntimeError(failures[-1] if failures else "no build folder")


def _load() -> None:
    if os.environ.get(ENV_SWITCH, "1") == "0":
        _state.update(build=None, reason=f"switched off ({ENV_SWITCH}=0)")
        return
    compiler = _compiler()
    if compiler is None:
        reason = f"no C++ compiler found ({os.environ.get('CXX', 'c++')}; set CXX)"
    else:
        try:
            _state.update(build=_build_and_load(compiler), reason=None)
            return
        except RuntimeError as error:
            reason = f"it could not be built: {error}"
    _state.update(build=None, reason=reason)
    warnings.warn(f"BalEnt's native kernel is unavailable, so the torch kernel computes BalEnt's "
                  f"posterior term (same values, several times slower on a CPU): {reason}",
                  NativeKernelWarning, stacklevel=3)


def prepare() -> bool:
    """Build the kernel if this machine has not yet, and load it into this process (once per
    process; later calls return at once). True when it is available. A process that does not
    call it pays the build or the load at the kernel's first use."""
    with _lock:
        if "build" not in _state:
            _load()
        return _state["build"] is not None


def build() -> dict | None:
    """What this process runs (``prepare``s it): the instruction set (``isa``) and those the CPU
    runs, ``parallel`` (torch's threads), ``flags``, ``compiler``, ``torch``, the build's
    ``name`` and ``folder``; None where the kernel is unavailable (``unavailable_reason``)."""
    prepare()
    return _state["build"]  # type: ignore[return-value]


def unavailable_reason() -> str | None:
    """Why the native kernel is not used (None when it is)."""
    prepare()
    return _state.get("reason")  # type: ignore[return-value]


def parallel() -> bool:
    """Whether the kernel runs on torch's threads (built with OpenMP); False when unavailable."""
    info = build()
    return bool(info and info["parallel"])


def describe() -> str:
    """One line for reports: the kernel, its instruction set and threads (available or not)."""
    info = build()
    if info is None:
        return f"native kernel unavailable ({unavailable_reason()})"
    threads = "torch's threads" if info["parallel"] else "one thread (built without OpenMP)"
    return f"native C++ kernel (strategies/balent/posterior_term.cpp, {info['isa']}) on {threads}"


def takes(mean: torch.Tensor) -> bool:
    """Whether the kernel can take these statistics (CPU, float32 or float64, available)."""
    return mean.device.type == "cpu" and mean.dtype in DTYPES and prepare()


def _ops():
    if not prepare():
        raise RuntimeError(f"BalEnt's native kernel is unavailable: {unavailable_reason()}")
    return getattr(torch.ops, OPERATORS)


def posterior_term_images(mean: torch.Tensor, var: torch.Tensor, floored: bool, block: int,
                          entropy: torch.Tensor | None = None, isa: str = ""
                          ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor | None]:
    """``finite`` (float64), ``saturated`` and ``fitted`` (bool), each ``[B, P]``, from contiguous
    means and variances ``[B, C, P]`` of one dtype, in blocks of ``block`` pixels on torch's
    threads; with ``entropy`` (H, contiguous ``[B, P]``, the means' dtype) also BalEnt's
    acquisition values (float64 ``[B, P]``, else None) from the same pass. ``isa``: an
    instruction set of ``build()["isas"]`` instead of the best."""
    finite, saturated, fitted, scores = _ops().posterior_term(mean, var, floored, block, entropy, isa)
    return finite, saturated, fitted, scores if entropy is not None else None


def balent_acquisition(finite: torch.Tensor, saturated: torch.Tensor, predictive_entropy: torch.Tensor,
                       isa: str = "") -> torch.Tensor | None:
    """BalEnt's acquisition values (float64, the shape of ``finite``) from a ``PosteriorTerm``'s
    parts and H in one pass, as ``strategies.balent.formula`` defines them; None where this
    kernel cannot take the inputs (not on the CPU, H neither float32 nor float64, unavailable)."""
    if not (takes(predictive_entropy) and finite.device.type == "cpu"
            and finite.shape == predictive_entropy.shape == saturated.shape):
        return None
    return _ops().acquisition(finite.contiguous(), saturated.contiguous(), predictive_entropy.contiguous(), isa)


def beta_entropy(alpha: torch.Tensor, beta: torch.Tensor, *, floored: bool = False, isa: str = "") -> torch.Tensor:
    """The kernel's entropy of Beta(1 + alpha, beta) (CPU tensors broadcast together), for
    checking it against references; BalEnt itself calls ``posterior_term_images``."""
    alpha, beta = (t.to(torch.float64).contiguous() for t in torch.broadcast_tensors(alpha, beta))
    return _ops().beta_entropy(alpha, beta, floored, isa)


def log_positive(x: torch.Tensor, isa: str = "") -> torch.Tensor:
    """The kernel's own logarithm of positive float64 values (for the tests against 40 digits)."""
    return _ops().log_positive(x.to(torch.float64).contiguous(), isa)
