"""BalEnt's fused C kernel (strategies/posterior_term.c) against the 40-digit reference and against
the torch code it replaces on the CPU; and what happens where it cannot be built."""
from __future__ import annotations

import ast
import math
import os
import subprocess
import sys

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
    results = []
    for block, threads in ((1 << 20, 1), (97, 2), (64, 3)):
        monkeypatch.setattr(pt, "NATIVE_BLOCK_PIXELS", block)
        monkeypatch.setattr(pt.torch, "get_num_threads", lambda threads=threads: threads)
        results.append(pt.posterior_term_parts(post.mean, post.variance))
    for other in results[1:]:
        assert torch.equal(other.finite, results[0].finite)
        assert torch.equal(other.saturated, results[0].saturated)


def _fresh_process(env: dict, code: str) -> tuple[str, str]:
    full = {**os.environ, **env, "PYTHONPATH": str(REPO_ROOT)}
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=full,
                            cwd=REPO_ROOT, timeout=120)
    assert result.returncode == 0, result.stderr
    return result.stdout, result.stderr


PROBE = ("import torch; from strategies.balent import kernel; from strategies.uncertainty import "
         "posterior_term; print(kernel.describe()); "
         "print(posterior_term(torch.full((2, 1, 3), 0.5), torch.full((2, 1, 3), 0.01)).tolist())")


@pytest.mark.parametrize("env,expected", [
    ({native_kernel.ENV_SWITCH: "0"}, "switched off"),
    ({"CC": "/nonexistent/cc", "PATH": "/nonexistent"}, "no C compiler found"),
    ({"CC": "false"}, "could not build"),
])
def test_without_the_kernel_the_torch_code_runs(tmp_path, env: dict, expected: str) -> None:
    """No compiler, a failing compiler or the switch: the reason is said, and S is still computed
    (by the torch code) with the same value."""
    env = {**env, native_kernel.ENV_CACHE: str(tmp_path)}
    out, err = _fresh_process(env, PROBE)
    assert "torch kernel" in out and expected in out
    assert ("using the torch code" in err) == (expected == "could not build")  # a failure is warned
    native, _ = _fresh_process({}, PROBE)
    assert "fused C kernel" in native
    values = [ast.literal_eval(text.strip().splitlines()[-1]) for text in (out, native)]
    assert values[0][0] == pytest.approx(values[1][0], rel=1e-13)


def test_the_compiled_library_is_cached(tmp_path) -> None:
    env = {native_kernel.ENV_CACHE: str(tmp_path)}
    _fresh_process(env, PROBE)
    built = list(tmp_path.iterdir())
    assert len(built) == 1 and built[0].name.startswith("posterior_term-")
    stamp = built[0].stat().st_mtime_ns
    _fresh_process(env, PROBE)
    assert [p.stat().st_mtime_ns for p in tmp_path.iterdir()] == [stamp]


@pytest.mark.skipif(not os.path.exists("/proc/self/maps"), reason="reads Linux's /proc/self/maps")
def test_the_kernel_shares_torchs_openmp_runtime(tmp_path) -> None:
    """Built with OpenMP, the kernel's blocks run in the OpenMP runtime torch itself loaded: one
    such runtime in the process (a second one would put two thread pools on the same cores)."""
    code = ("import torch; from strategies.balent import native_kernel; from strategies.uncertainty import "
            "posterior_term; torch.set_num_threads(2); "
            "posterior_term(torch.rand(3, 5, 64, 64), torch.full((3, 5, 64, 64), 0.01)); "
            "print(native_kernel.parallel()); "
            "print(sorted({line.split()[-1] for line in open('/proc/self/maps') "
            "if 'omp' in line.rsplit('/', 1)[-1]}))")
    out, _ = _fresh_process({native_kernel.ENV_CACHE: str(tmp_path)}, code)
    parallel, runtimes = out.strip().splitlines()[-2:]
    if parallel != "True":
        pytest.skip("this machine's compiler builds the kernel without OpenMP")
    assert len(ast.literal_eval(runtimes)) == 1, runtimes


def test_a_compiler_without_openmp_gives_a_one_thread_kernel(tmp_path) -> None:
    """A compiler that refuses -fopenmp: the kernel is built without it, says so, runs on one
    thread and gives the same values."""
    compiler = native_kernel._compiler()
    if compiler is None:
        pytest.skip("no C compiler")
    wrapper = tmp_path / "cc-without-openmp"
    wrapper.write_text('#!/bin/sh\nfor a in "$@"; do [ "$a" = "-fopenmp" ] && '
                       f'{{ echo "no OpenMP here" >&2; exit 1; }}; done\nexec {compiler} "$@"\n')
    wrapper.chmod(0o755)
    env = {"CC": str(wrapper), native_kernel.ENV_CACHE: str(tmp_path / "cache")}
    out, err = _fresh_process(env, PROBE)
    assert "fused C kernel" in out and "one thread (built without OpenMP)" in out, out + err
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
