"""BalEnt's native kernel (strategies/balent/posterior_term.cpp) against the 40-digit reference and
against the torch kernel; its instruction sets against each other; its argument checks; how it is
built (once, however many processes start together; cached by source, flags, compiler and torch),
and what happens where it cannot be built. The build tests build into temporary
TORCH_EXTENSIONS_DIRs, in fresh processes."""
from __future__ import annotations

import ast
import math
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import strategies.balent.kernel as pt
from strategies import PixelPosterior, build_strategy
from strategies.balent import native_kernel
from tests.test_strategies.conftest import REPO_ROOT, require_native_kernel, softmax_samples
from tests.test_strategies.test_uncertainty import (
    FLOORED_PARAMS,
    _mpmath_beta_entropy,
    worst_error_over_the_fit_range,
)

F64 = torch.float64


@pytest.fixture(autouse=True)
def _native() -> None:
    require_native_kernel()


def _both(mean: torch.Tensor, var: torch.Tensor, floored: bool) -> tuple[pt.PosteriorTerm, pt.PosteriorTerm]:
    native = pt.posterior_term_parts(mean, var, floored=floored)
    with pt.torch_kernel_only():
        reference = pt.posterior_term_parts(mean, var, floored=floored)
    return native, reference


def _assert_same(native: pt.PosteriorTerm, reference: pt.PosteriorTerm, rtol: float = 1e-12) -> None:
    assert torch.equal(native.saturated, reference.saturated)
    assert torch.equal(native.fitted, reference.fitted)
    scale = reference.finite.abs().clamp(min=1.0)
    worst = ((native.finite - reference.finite).abs() / scale).max().item() if scale.numel() else 0.0
    assert worst <= rtol, f"fused kernel differs from the torch code by {worst:.3g}"


def test_entropy_over_the_fit_range_matches_40_digit_reference(record_property) -> None:
    worst, where = worst_error_over_the_fit_range(
        lambda a, b: native_kernel.beta_entropy(a - 1.0, b))  # the kernel takes alpha = a - 1
    record_property("native_beta_entropy_worst_error_vs_mpmath", worst)
    print(f"fused kernel's beta entropy worst error vs 40-digit mpmath: {worst:.3g} at (a, b) = {where}")
    assert worst <= 1e-14


@pytest.mark.parametrize("a,b", FLOORED_PARAMS)
def test_floored_entropy_matches_40_digit_reference(a: float, b: float) -> None:
    """The reference code's log(B + 1e-32): where it is far above 0, log B is a large number whose
    rounding (1e-16 of it) the result inherits, as in the torch code."""
    ref = _mpmath_beta_entropy(a, b, floored=True)
    ours = native_kernel.beta_entropy(torch.tensor([a - 1.0], dtype=F64), torch.tensor([b], dtype=F64),
                                      floored=True).item()
    assert abs(ours - ref) <= 1e-8 * max(1.0, abs(ref))


FAMILIES = [dict(spread=1.0, scale=2.0), dict(spread=0.5, scale=6.0), dict(spread=0.05, scale=12.0),
            dict(spread=0.01, scale=30.0), dict(spread=1e-4, scale=8.0)]


@pytest.mark.parametrize("floored", [False, True])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("family", range(len(FAMILIES)))
def test_matches_the_torch_code(family: int, dtype: torch.dtype, floored: bool) -> None:
    """Uncertain, confident, saturated (scale 30: a quarter of the pixels) and near-deterministic
    posteriors, through the float32 and float64 statistics the harness makes."""
    probs = softmax_samples(10, (2, 11, 24, 29), seed=family, **FAMILIES[family]).to(dtype)
    post = PixelPosterior.from_samples(probs)
    native, reference = _both(post.mean, post.variance, floored)
    _assert_same(native, reference, rtol=1e-12 if not floored else 1e-9)
    if family == 3:
        assert bool(native.saturated.any())


@settings(max_examples=40, deadline=None)
@given(classes=st.integers(1, 23), height=st.integers(1, 9), width=st.integers(1, 150),
       seed=st.integers(0, 2**16), scale=st.sampled_from([0.1, 3.0, 25.0]),
       floored=st.booleans(), transpose=st.booleans())
def test_any_shape_and_layout_matches_the_torch_code(classes, height, width, seed, scale, floored,
                                                     transpose) -> None:
    """Pixel counts that are not a multiple of the kernel's chunk, one class, and statistics that
    are not contiguous (a transposed view) give the torch code's values and flags."""
    probs = softmax_samples(4, (classes, height, width), seed=seed, scale=scale).to(torch.float32)
    post = PixelPosterior.from_samples(probs)
    mean, var = post.mean, post.variance
    if transpose:
        mean, var = mean.transpose(-1, -2), var.transpose(-1, -2)
    _assert_same(*_both(mean, var, floored), rtol=1e-12 if not floored else 1e-9)


def test_degenerate_means_match_the_torch_code() -> None:
    """NaN, infinite, tied, off-simplex and zero-variance pixels: same values, flags, no crash."""
    rows = [([0.5, 0.5, 0.0], [0.01, 0.01, 0.0]),           # tie for the top class
            ([float("nan"), 0.5, 0.5], [0.01, 0.01, 0.01]),  # a NaN mean
            ([float("inf"), 0.0, 0.0], [0.0, 0.0, 0.0]),     # an infinite mean
            ([0.9, 0.9, 0.9], [0.01, 0.01, 0.01]),           # off the simplex
            ([1.0, 0.0, 0.0], [0.0, 0.0, 0.0]),              # one-hot, zero variance: saturated
            ([0.6, 0.3, 0.1], [float("nan"), 0.01, 0.01]),   # a NaN variance
            ([0.4, 0.35, 0.25], [0.3, 0.3, 0.3])]            # every fit invalid
    mean = torch.tensor([r[0] for r in rows], dtype=torch.float32).T[:, None, :]
    var = torch.tensor([r[1] for r in rows], dtype=torch.float32).T[:, None, :]
    native, reference = _both(mean, var, floored=False)
    _assert_same(native, reference)
    assert native.saturated[0].tolist() == [False, False, True, False, True, False, False]
    assert native.fitted[0, -1].item() is False


def test_blocks_and_threads_do_not_change_the_result(monkeypatch) -> None:
    probs = softmax_samples(6, (3, 7, 40, 50), seed=9, spread=0.5, scale=6.0)
    post = PixelPosterior.from_samples(probs.to(torch.float32))
    results, threads_before = [], torch.get_num_threads()
    try:
        for block, threads in ((1 << 20, 1), (97, 2), (64, 3)):
            monkeypatch.setattr(pt, "NATIVE_BLOCK_PIXELS", block)
            torch.set_num_threads(threads)
            results.append(pt.posterior_term_parts(post.mean, post.variance))
    finally:
        torch.set_num_threads(threads_before)
    for other in results[1:]:
        assert torch.equal(other.finite, results[0].finite)
        assert torch.equal(other.saturated, results[0].saturated)


@pytest.mark.parametrize("floored", [False, True])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_every_instruction_set_gives_the_same_bits(dtype: torch.dtype, floored: bool) -> None:
    """Built without contracting multiply-adds, the AVX-512, AVX2 and SSE2 paths (those this CPU
    runs) give identical terms, flags, scores, entropies and logarithms: results do not depend on
    the machine's instruction set."""
    isas = native_kernel.build()["isas"]
    probs = softmax_samples(8, (2, 11, 37, 53), seed=3, spread=0.3, scale=12.0).to(dtype)
    post = PixelPosterior.from_samples(probs)
    mean, var = post.mean.reshape(2, 11, -1), post.variance.reshape(2, 11, -1)
    h = post.predictive_entropy.reshape(2, -1)
    alpha = torch.logspace(-12, 9, 4001, dtype=F64)
    beta = alpha.flip(0)
    best = None
    for isa in isas:
        out = (*native_kernel.posterior_term_images(mean, var, floored, 777, h, isa=isa),
               native_kernel.beta_entropy(alpha, beta, floored=floored, isa=isa),
               native_kernel.log_positive(alpha, isa=isa))
        if best is None:
            best = out
            assert bool(out[1].any()), "no saturated pixel: the test would miss that branch"
        assert all(torch.equal(a.nan_to_num(), b.nan_to_num()) for a, b in zip(out, best)), isa
    print(f"instruction sets compared: {', '.join(isas)}")


def test_every_tensor_argument_is_checked() -> None:
    """Wrong device-side layout, dtype or shape: a RuntimeError that names the argument, never a
    wrong result or a crash."""
    ops = getattr(torch.ops, native_kernel.OPERATORS)
    mean = torch.full((1, 3, 10), 1 / 3)
    var = torch.full((1, 3, 10), 0.01)
    h = torch.full((1, 10), 1.0)
    bad = [
        (lambda: ops.posterior_term(mean.to(torch.int32), var, False, 64, None, ""), "float32 or float64"),
        (lambda: ops.posterior_term(mean, var.double(), False, 64, None, ""), "differ in dtype"),
        (lambda: ops.posterior_term(mean, var[:, :2], False, 64, None, ""), "differ in shape"),
        (lambda: ops.posterior_term(mean[0], var[0], False, 64, None, ""), "[B, C, P]"),
        (lambda: ops.posterior_term(mean.transpose(1, 2).contiguous().transpose(1, 2), var, False, 64, None, ""),
         "contiguous"),
        (lambda: ops.posterior_term(mean, var, False, 0, None, ""), "block_pixels"),
        (lambda: ops.posterior_term(mean, var, False, 64, h.double(), ""), "means' dtype"),
        (lambda: ops.posterior_term(mean, var, False, 64, h[:, :5], ""), "[B, P]"),
        (lambda: ops.posterior_term(mean, var, False, 64, None, "avx9000"), "avx9000"),
        (lambda: ops.acquisition(h.double(), torch.zeros(1, 10), h, ""), "bool"),
        (lambda: ops.acquisition(h.float(), torch.zeros(1, 10, dtype=torch.bool), h, ""), "float64"),
        (lambda: ops.acquisition(h.double(), torch.zeros(1, 9, dtype=torch.bool), h, ""), "share a shape"),
        (lambda: ops.beta_entropy(h.double(), h.float(), False, ""), "float64"),
        (lambda: ops.log_positive(h.double()[:, ::2], ""), "contiguous"),
    ]
    for call, message in bad:
        with pytest.raises(RuntimeError, match=message.replace("[", r"\[").replace("]", r"\]")):
            call()


def _fresh_process(env: dict, code: str, timeout: float = 600) -> tuple[str, str]:
    full = {**os.environ, **env, "PYTHONPATH": str(REPO_ROOT)}
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=full,
                            cwd=REPO_ROOT, timeout=timeout)
    assert result.returncode == 0, result.stderr
    return result.stdout, result.stderr


PROBE = ("import torch; from strategies.balent import kernel; from strategies.uncertainty import "
         "posterior_term; print(kernel.describe()); print(kernel.scoring_backend()['balent_kernel_build']); "
         "print(posterior_term(torch.full((2, 1, 3), 0.5), torch.full((2, 1, 3), 0.01)).tolist())")


@pytest.mark.parametrize("env,expected", [
    ({native_kernel.ENV_SWITCH: "0"}, "switched off"),
    ({"CXX": "/nonexistent/c++"}, "no C++ compiler found"),
    ({"CXX": "false"}, "could not be built"),
])
def test_without_the_kernel_the_torch_kernel_runs(tmp_path, env: dict, expected: str) -> None:
    """No compiler, a failing compiler or the switch: the torch kernel computes S, with the same
    value; the reason is said, and where the kernel was wanted (not switched off) one warning."""
    env = {**env, "TORCH_EXTENSIONS_DIR": str(tmp_path)}
    out, err = _fresh_process(env, PROBE)
    assert "torch kernel" in out and expected in out
    warned = [line for line in err.splitlines() if "NativeKernelWarning" in line]
    assert len(warned) == (0 if expected == "switched off" else 1), err
    if warned:
        assert "the torch kernel computes BalEnt's posterior term" in warned[0] and expected in warned[0]
    native, _ = _fresh_process({}, PROBE)
    assert "native C++ kernel" in native
    values = [ast.literal_eval(text.strip().splitlines()[-1]) for text in (out, native)]
    assert values[0][0] == pytest.approx(values[1][0], rel=1e-13)


def _logging_compiler(tmp_path: Path, refuse: str = "") -> tuple[Path, Path]:
    """A C++ compiler that logs each call (and refuses those with the argument ``refuse``)."""
    compiler = native_kernel._compiler()
    if compiler is None:
        pytest.skip("no C++ compiler")
    log, wrapper = tmp_path / "calls.log", tmp_path / "logging-c++"
    refusal = (f'for a in "$@"; do [ "$a" = "{refuse}" ] && {{ echo "no {refuse} here" >&2; exit 1; }}; done\n'
               if refuse else "")
    wrapper.write_text(f'#!/bin/sh\necho "$*" >> {log}\n{refusal}exec {" ".join(compiler)} "$@"\n')
    wrapper.chmod(0o755)
    return wrapper, log


def _compiles(log: Path) -> list[str]:
    calls = log.read_text().splitlines() if log.exists() else []
    return [call for call in calls if " -c " in f" {call} " and "posterior_term.cpp" in call]


def test_processes_started_together_build_once_and_later_ones_reuse_it(tmp_path) -> None:
    """Three processes that start at once on an empty TORCH_EXTENSIONS_DIR (as --workers, DDP
    ranks or array tasks do): one compiles, the others wait on the build's lock and load its
    library; a later process compiles nothing."""
    wrapper, log = _logging_compiler(tmp_path)
    env = {**os.environ, "CXX": str(wrapper), "TORCH_EXTENSIONS_DIR": str(tmp_path / "extensions"),
           "PYTHONPATH": str(REPO_ROOT)}
    processes = [subprocess.Popen([sys.executable, "-c", PROBE], env=env, cwd=REPO_ROOT, text=True,
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE) for _ in range(3)]
    outputs = [process.communicate(timeout=600) for process in processes]
    for process, (out, err) in zip(processes, outputs):
        assert process.returncode == 0, err
        assert "native C++ kernel" in out, out + err
    assert len({out.splitlines()[1] for out, _ in outputs}) == 1  # one build, the same for all
    assert len(_compiles(log)) == 1, log.read_text()
    built = list((tmp_path / "extensions").iterdir())
    assert len(built) == 1 and built[0].name.startswith(native_kernel.OPERATORS)
    library = next(built[0].glob("*.so"))
    stamp = library.stat().st_mtime_ns
    _fresh_process({"CXX": str(wrapper), "TORCH_EXTENSIONS_DIR": str(tmp_path / "extensions")}, PROBE)
    assert len(_compiles(log)) == 1 and library.stat().st_mtime_ns == stamp


def test_the_build_is_named_by_what_it_depends_on(monkeypatch) -> None:
    """Sources, flags (the constants among them), compiler and torch each give another build folder."""
    flags = native_kernel.BASE_FLAGS + native_kernel.constant_flags()
    name = native_kernel._build_name(flags, "g++ 12.2.0")
    assert name.startswith(native_kernel.OPERATORS + "_")
    assert native_kernel._build_name(flags, "g++ 12.2.0") == name
    assert native_kernel._build_name(flags + ["-DEXTRA"], "g++ 12.2.0") != name
    assert native_kernel._build_name(flags, "g++ 13.1.0") != name
    monkeypatch.setattr(native_kernel.torch, "__version__", "0.0.0")
    assert native_kernel._build_name(flags, "g++ 12.2.0") != name
    assert any(flag.startswith("-DFIT_FLOOR=1e-09") for flag in flags)


def test_a_stale_lock_is_removed_with_a_warning(tmp_path) -> None:
    """A build lock left by a killed build would make every later process wait forever."""
    (tmp_path / "lock").write_text("")
    native_kernel._clear_stale_lock(tmp_path)  # fresh: another process is building
    assert (tmp_path / "lock").exists()
    old = time.time() - native_kernel.STALE_LOCK_SECONDS - 60
    os.utime(tmp_path / "lock", (old, old))
    with pytest.warns(native_kernel.NativeKernelWarning, match="build lock"):
        native_kernel._clear_stale_lock(tmp_path)
    assert not (tmp_path / "lock").exists()


@pytest.mark.skipif(not os.path.exists("/proc/self/maps"), reason="reads Linux's /proc/self/maps")
def test_the_kernel_shares_torchs_openmp_runtime() -> None:
    """Built with OpenMP, the kernel's blocks run in the OpenMP runtime torch itself loaded: one
    such runtime in the process (a second one would put two thread pools on the same cores)."""
    code = ("import torch; from strategies.balent import native_kernel; from strategies.uncertainty import "
            "posterior_term; torch.set_num_threads(2); "
            "posterior_term(torch.rand(3, 5, 64, 64), torch.full((3, 5, 64, 64), 0.01)); "
            "print(native_kernel.parallel()); "
            "print(sorted({line.split()[-1] for line in open('/proc/self/maps') "
            "if 'omp' in line.rsplit('/', 1)[-1]}))")
    out, _ = _fresh_process({}, code)
    parallel, runtimes = out.strip().splitlines()[-2:]
    if parallel != "True":
        pytest.skip("this machine's compiler builds the kernel without OpenMP")
    assert len(ast.literal_eval(runtimes)) == 1, runtimes


def test_a_compiler_without_openmp_gives_a_one_thread_kernel(tmp_path) -> None:
    """A compiler that refuses -fopenmp: the kernel is built without it, says so, runs on one
    thread and gives the same values."""
    wrapper, _ = _logging_compiler(tmp_path, refuse="-fopenmp")
    env = {"CXX": str(wrapper), "TORCH_EXTENSIONS_DIR": str(tmp_path / "extensions")}
    out, err = _fresh_process(env, PROBE)
    assert "native C++ kernel" in out and "one thread (built without OpenMP)" in out, out + err
    native, _ = _fresh_process({}, PROBE)
    assert out.strip().splitlines()[-1] == native.strip().splitlines()[-1]


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_acquisition_matches_the_torch_formula(dtype: torch.dtype) -> None:
    """``balent_scores`` in one fused pass equals ``balent_acquisition(balanced_entropy(post))``,
    -inf (saturated, BalEnt 0, NaN, infinite) pixels included."""
    from strategies.uncertainty import balanced_entropy, balent_acquisition

    probs = softmax_samples(10, (11, 20, 30), seed=4, spread=0.05, scale=20.0).to(dtype)
    post = PixelPosterior.from_samples(probs)
    parts = pt.posterior_term_parts(post.mean, post.variance)
    entropy = post.predictive_entropy.clone()
    entropy[0, :4] = torch.tensor([float("nan"), float("inf"), 0.0, -math.log(2.0)], dtype=dtype)
    finite = parts.finite.clone()
    finite[1, :2] = torch.tensor([float("nan"), 0.0], dtype=F64)
    fused = native_kernel.balent_acquisition(finite, parts.saturated, entropy)
    balent = (finite.masked_fill(parts.saturated, float("-inf")) + entropy.to(F64)) / (
        entropy.to(F64) + math.log(2.0))
    expected = balent_acquisition(balent)
    assert torch.equal(torch.isinf(fused), torch.isinf(expected)) and bool(parts.saturated.any())
    torch.testing.assert_close(fused, expected, rtol=1e-15, atol=0.0)
    fresh = PixelPosterior.from_samples(probs)  # and through the strategy's own path
    with pt.torch_kernel_only():
        reference = balent_acquisition(balanced_entropy(fresh))
    torch.testing.assert_close(build_strategy("balent").score(PixelPosterior.from_samples(probs)),
                               reference, rtol=1e-12, atol=0.0)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_scores_in_the_term_pass_equal_the_separate_pass(dtype: torch.dtype) -> None:
    """BalEnt's scores computed in the posterior term's pass (``balent`` on a fresh posterior)
    are the one-pass acquisition of the kept term, bit for bit; an entropy of another dtype
    gives no fused scores (the caller's separate pass runs instead)."""
    probs = softmax_samples(8, (2, 11, 30, 41), seed=6, spread=0.05, scale=25.0).to(dtype)
    post = PixelPosterior.from_samples(probs)
    parts, scores = pt.posterior_term_and_scores(post.mean, post.variance, post.predictive_entropy)
    separate = native_kernel.balent_acquisition(parts.finite, parts.saturated, post.predictive_entropy)
    assert scores is not None and bool(parts.saturated.any())
    assert torch.equal(scores, separate)
    _assert_same(parts, pt.posterior_term_parts(post.mean, post.variance), rtol=0.0)
    other = post.predictive_entropy.to(torch.float64 if dtype == torch.float32 else torch.float32)
    scores = pt.posterior_term_and_scores(post.mean, post.variance, other)[1]
    assert torch.equal(scores, native_kernel.balent_acquisition(parts.finite, parts.saturated, other))
