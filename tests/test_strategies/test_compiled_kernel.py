"""BalEnt's compiled kernel (strategies/balent/compiled_kernel.py), the GPU's back-end: its pure
function against the torch kernel and the 40-digit reference (eager, on the CPU: the math), the
entry point's choice of back-end, the switch-off with a warning when a compiled kernel fails its
check, and one real ``torch.compile`` of it on the CPU through the entry point (inductor's C++
back-end; on a GPU the same function goes to Triton, checked by ``perf --gpu-check``)."""
from __future__ import annotations

import warnings

import pytest
import torch

import strategies.balent.kernel as kernel
from strategies import PixelPosterior, build_strategy
from strategies.balent import compiled_kernel, native_kernel
from strategies.balent.formula import balanced_entropy_from, balent_acquisition
from tests.test_strategies.conftest import softmax_samples
from tests.test_strategies.test_native_kernel import FAMILIES, _assert_same
from tests.test_strategies.test_uncertainty import FLOORED_PARAMS, _mpmath_beta_entropy, worst_error_over_the_fit_range

F64 = torch.float64


@pytest.fixture
def fresh_state(monkeypatch):
    """The compiled kernel's process state, restored after the test."""
    saved = {key: (set(value) if isinstance(value, set) else value)
             for key, value in compiled_kernel._state.items()}
    yield compiled_kernel._state
    compiled_kernel._state.clear()
    compiled_kernel._state.update(saved)


def _torch_term(mean: torch.Tensor, var: torch.Tensor, floored: bool):
    with kernel.torch_kernel_only():
        return kernel.posterior_term_parts(mean, var, floored=floored)


def _eager_term(mean: torch.Tensor, var: torch.Tensor, floored: bool, chunk: int = 1 << 21):
    c = mean.shape[-3]
    mean3 = mean.reshape(-1, c, mean.shape[-2] * mean.shape[-1])
    finite, saturated, fitted, _ = compiled_kernel.run(mean3, var.reshape(mean3.shape), None, floored,
                                                       compiled=False, chunk=chunk)
    spatial = mean.shape[:-3] + mean.shape[-2:]
    return kernel.PosteriorTerm(*(t.reshape(spatial) for t in (finite, saturated, fitted)))


def test_beta_entropy_over_the_fit_range_matches_40_digit_reference() -> None:
    worst, where = worst_error_over_the_fit_range(lambda a, b: compiled_kernel.beta_entropy(a - 1.0, b))
    print(f"compiled kernel's beta entropy worst error vs 40-digit mpmath: {worst:.3g} at {where}")
    assert worst <= 1e-14


@pytest.mark.parametrize("a,b", FLOORED_PARAMS)
def test_floored_beta_entropy_matches_40_digit_reference(a: float, b: float) -> None:
    ours = compiled_kernel.beta_entropy(torch.tensor([a - 1.0], dtype=F64), torch.tensor([b], dtype=F64),
                                        floored=True).item()
    ref = _mpmath_beta_entropy(a, b, floored=True)
    assert abs(ours - ref) <= 1e-8 * max(1.0, abs(ref))


@pytest.mark.parametrize("floored", [False, True])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("family", range(len(FAMILIES)))
def test_the_function_matches_the_torch_kernel(family: int, dtype: torch.dtype, floored: bool) -> None:
    probs = softmax_samples(10, (2, 11, 24, 29), seed=family, **FAMILIES[family]).to(dtype)
    post = PixelPosterior.from_samples(probs)
    ours = _eager_term(post.mean, post.variance, floored)
    _assert_same(ours, _torch_term(post.mean, post.variance, floored), rtol=1e-12 if not floored else 1e-9)
    if family == 3:
        assert bool(ours.saturated.any())


def test_the_self_check_statistics_and_chunks_match_the_torch_kernel() -> None:
    """Every branch (saturated, one-hot, tie, off-simplex, every fit invalid) and a pixel count
    split into uneven chunks give the torch kernel's values and flags."""
    mean, var = compiled_kernel.self_check_statistics("cpu")
    reference = _torch_term(mean[:, :, None, :], var[:, :, None, :], False)
    for chunk in (1 << 21, 1000):
        ours = _eager_term(mean[:, :, None, :], var[:, :, None, :], False, chunk=chunk)
        _assert_same(ours, reference)
    assert bool(reference.saturated.any()) and not bool(reference.fitted.all())


def test_the_scores_in_the_same_pass_equal_the_formula() -> None:
    post = PixelPosterior.from_samples(softmax_samples(8, (7, 9, 31), seed=3, spread=0.3, scale=5.0).float())
    mean3 = post.mean.reshape(1, 7, -1)
    finite, saturated, fitted, scores = compiled_kernel.run(
        mean3, post.variance.reshape(mean3.shape), post.predictive_entropy.reshape(1, -1), False, compiled=False)
    term = kernel.PosteriorTerm(finite.reshape(9, 31), saturated.reshape(9, 31), fitted.reshape(9, 31))
    expected = balent_acquisition(balanced_entropy_from(term, post.predictive_entropy))
    torch.testing.assert_close(scores.reshape(9, 31), expected, rtol=0, atol=0)


def test_the_entry_point_chooses_the_compiled_kernel_on_cuda_only_with_triton(monkeypatch, fresh_state) -> None:
    monkeypatch.delenv(compiled_kernel.ENV_SWITCH, raising=False)
    monkeypatch.setattr(compiled_kernel, "_has_triton", lambda: False)
    assert "Triton" in compiled_kernel.unavailable_reason("cuda")
    monkeypatch.setattr(compiled_kernel, "_has_triton", lambda: True)
    assert compiled_kernel.unavailable_reason("cuda") is None
    assert "not a device" in compiled_kernel.unavailable_reason("cpu")  # the CPU has the native kernel
    monkeypatch.setenv(compiled_kernel.ENV_SWITCH, "0")
    assert "switched off" in compiled_kernel.unavailable_reason("cuda")
    assert kernel.backend_for(torch.zeros(2, 1, 1)) in ("native", "torch")  # a CPU tensor: never compiled


def test_a_compiled_kernel_that_disagrees_is_switched_off_with_a_warning(monkeypatch, fresh_state) -> None:
    """A compiled function whose values are off (what a miscompiled Triton kernel would give) fails
    the self-check: one warning, and the entry point runs another kernel with the right values."""
    monkeypatch.setattr(compiled_kernel, "DEVICE_TYPES", ("cpu",))
    monkeypatch.setattr(native_kernel, "takes", lambda mean: False)
    fresh_state.update(failed=None, checked=set())

    def wrong(mean, var, entropy, floored=False):
        finite, saturated, fitted, scores = compiled_kernel.posterior_term_and_scores(mean, var, entropy, floored)
        return finite * (1 + 1e-9), saturated, fitted, scores

    fresh_state["compiled"] = wrong
    post = PixelPosterior.from_samples(softmax_samples(6, (5, 6, 7), seed=1).float())
    with pytest.warns(compiled_kernel.CompiledKernelWarning, match="differs from the torch kernel"):
        assert kernel.backend_for(post.mean) == "torch"
    assert "failed here" in compiled_kernel.unavailable_reason("cpu")
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # once only
        ours = kernel.posterior_term_parts(post.mean, post.variance)
    _assert_same(ours, _torch_term(post.mean, post.variance, False))


def test_a_compile_error_is_switched_off_with_a_warning(monkeypatch, fresh_state) -> None:
    monkeypatch.setattr(compiled_kernel, "DEVICE_TYPES", ("cpu",))
    fresh_state.update(failed=None, checked=set())

    def broken(*args):
        raise RuntimeError("triton: out of resources\nmore")

    fresh_state["compiled"] = broken
    with pytest.warns(compiled_kernel.CompiledKernelWarning, match="torch.compile failed on cpu: RuntimeError"):
        assert compiled_kernel.prepare("cpu") is False


def test_torch_compile_through_the_entry_point_matches_the_torch_kernel(monkeypatch, fresh_state) -> None:
    """The real thing on the CPU (inductor's C++ back-end, ~1 minute of compiling here): with the
    compiled kernel chosen for the CPU and the native kernel out of the way, BalEnt's scores and
    term come from the compiled function and equal the torch kernel's."""
    monkeypatch.setattr(compiled_kernel, "DEVICE_TYPES", ("cpu",))
    monkeypatch.setattr(native_kernel, "takes", lambda mean: False)
    fresh_state.update(failed=None, checked=set(), compiled=None)
    with warnings.catch_warnings():
        warnings.simplefilter("error", compiled_kernel.CompiledKernelWarning)
        assert compiled_kernel.prepare("cpu") is True  # compiled, and passed its self-check
    post = PixelPosterior.from_samples(softmax_samples(10, (2, 11, 24, 29), seed=3, **FAMILIES[3]).float())
    assert kernel.backend_for(post.mean) == "compiled"
    assert kernel.scoring_backend("cpu")["balent_kernel"] in ("native", "torch")  # what a CPU run records
    ours = kernel.posterior_term_parts(post.mean, post.variance)
    _assert_same(ours, _torch_term(post.mean, post.variance, False))
    scores = build_strategy("balent").score(replace_post(post))
    with kernel.torch_kernel_only():
        expected = build_strategy("balent").score(replace_post(post))
    torch.testing.assert_close(scores, expected, rtol=1e-12, atol=0)


def replace_post(post: PixelPosterior) -> PixelPosterior:
    """A copy without the cached term (each strategy computes its own)."""
    from dataclasses import replace

    return replace(post)
