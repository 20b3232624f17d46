"""The shared math against independent references (scipy, numerical integration, loops)."""
from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.integrate
import scipy.stats
import torch

from strategies import PixelPosterior
from strategies.uncertainty import (
    BALD_FLOOR,
    bald,
    beta_entropy,
    beta_moment_fit,
    decomposition,
    entropy,
    margin,
    posterior_term,
    posterior_term_parts,
)
from tests.test_strategies.conftest import softmax_samples

F64 = torch.float64
# scipy 1.17's Beta entropy returns 0.0 for a <= 4.9e6 < b < ~1e11 (e.g. (3e4, 7e7)), a gap in
# its case split; such parameters are checked against mpmath only.
SCIPY_PARAMS = [(0.5, 0.5), (1.0, 1.0), (2.0, 3.0), (1.0 + 1e-9, 5.0), (10.0, 1e3), (1e3, 1e6),
                (63.9, 64.1), (1e8, 1.0), (1e8, 1e8), (1.5e8, 1e-3), (1.00001, 1e8), (1e-6, 1e-3)]
MPMATH_PARAMS = SCIPY_PARAMS + [(3e4, 7e7), (1e-9, 1e-6), (64.0, 1e7), (45.8, 13.3)]
# Beta(1 + alpha, beta) as BalEnt uses it, over the range its fits reach (k = alpha + beta up to
# ~1e9 at the variance clamp), with the shifted Stirling kernel's small, switch-over and large
# arguments (x + 8 in [8, 9), [15, 17), ... ).
GRID = [1e-12, 1e-9, 1e-4, 0.3, 1.0, 2.5, 7.9, 8.0, 8.1, 25.0, 1e3, 1e6, 2.5e8, 1e9]
FIT_PARAMS = [(1.0 + alpha, beta) for alpha in GRID for beta in GRID]


def _beta_entropy(a: float, b: float) -> float:
    return beta_entropy(torch.tensor(a, dtype=F64), torch.tensor(b, dtype=F64)).item()


@pytest.mark.parametrize("a,b", SCIPY_PARAMS)
def test_beta_entropy_matches_scipy(a: float, b: float) -> None:
    # scipy's own error reaches ~1e-9 at (1e8, 1e8), its asymptotic branch.
    assert _beta_entropy(a, b) == pytest.approx(scipy.stats.beta(a, b).entropy(), rel=1e-9, abs=1e-9)


def _mpmath_beta_entropy(a: float, b: float, floored: bool = False) -> float:
    mpmath = pytest.importorskip("mpmath")
    with mpmath.workdps(40):
        x, y = mpmath.mpf(a), mpmath.mpf(b)
        log_b = mpmath.log(mpmath.beta(x, y) + (mpmath.mpf(1e-32) if floored else 0))
        return float(log_b - (x - 1) * mpmath.digamma(x) - (y - 1) * mpmath.digamma(y)
                     + (x + y - 2) * mpmath.digamma(x + y))


@pytest.mark.parametrize("a,b", MPMATH_PARAMS)
def test_beta_entropy_matches_40_digit_reference(a: float, b: float) -> None:
    ref = _mpmath_beta_entropy(a, b)
    assert abs(_beta_entropy(a, b) - ref) <= 1e-13 * max(1.0, abs(ref))


def worst_error_over_the_fit_range(entropy) -> tuple[float, tuple[float, float]]:
    """Worst error of ``entropy(a, b)`` (float64 tensors in, out) against 40-digit mpmath over
    ``FIT_PARAMS``, relative where |h| > 1, and where it occurs."""
    a, b = (torch.tensor(v, dtype=F64) for v in zip(*FIT_PARAMS))
    ours = entropy(a, b).tolist()
    ref = [_mpmath_beta_entropy(x, y) for x, y in FIT_PARAMS]
    errors = [abs(o - r) / max(1.0, abs(r)) for o, r in zip(ours, ref)]
    worst = max(errors)
    return worst, FIT_PARAMS[errors.index(worst)]


def test_beta_entropy_over_the_fit_range_matches_40_digit_reference(
        record_property: pytest.RecordProperty) -> None:
    worst, where = worst_error_over_the_fit_range(beta_entropy)
    record_property("beta_entropy_worst_error_vs_mpmath", worst)
    print(f"beta entropy worst error vs 40-digit mpmath: {worst:.3g} at (a, b) = {where}")
    assert worst <= 1e-14


# the floored variant's parameters: B far above, around and far below 1e-32
FLOORED_PARAMS = [(2.0, 3.0), (30.0, 40.0), (60.0, 60.0), (200.0, 150.0), (1.5, 1e6), (3e4, 7e7),
                  (1.00001, 1e8), (1e3, 1e-9)]


@pytest.mark.parametrize("a,b", FLOORED_PARAMS)
def test_floored_beta_entropy_matches_40_digit_reference(a: float, b: float) -> None:
    """log(B + 1e-32): no effect for B >> 1e-32, the floor itself for B << 1e-32, and the
    transition around log B ~ -73.7 ((60, 60): log B = -85; (30, 40): log B = -49)."""
    ref = _mpmath_beta_entropy(a, b, floored=True)
    ours = beta_entropy(torch.tensor(a, dtype=F64), torch.tensor(b, dtype=F64), floored=True)
    assert abs(ours.item() - ref) <= 1e-12 * max(1.0, abs(ref))


def test_beta_entropy_never_positive() -> None:
    grid = torch.logspace(-6, 8, 60, dtype=F64)
    h = beta_entropy(grid[:, None] + 1.0, grid[None, :])  # Beta(alpha + 1, beta) as BalEnt uses
    assert bool((h <= 1e-15).all())


@pytest.mark.parametrize("a,b", [(0.7, 0.9), (1.0, 1.0), (2.0, 3.0), (1.5, 40.0), (30.0, 20.0)])
def test_beta_entropy_matches_numerical_integration(a: float, b: float) -> None:
    dist = scipy.stats.beta(a, b)

    def integrand(x: float) -> float:
        return -math.exp(dist.logpdf(x)) * dist.logpdf(x)

    ref, _ = scipy.integrate.quad(integrand, 0.0, 1.0, limit=200, epsabs=1e-12, epsrel=1e-10)
    assert _beta_entropy(a, b) == pytest.approx(ref, abs=1e-8)


def test_beta_entropy_is_float64_for_float32_input() -> None:
    a = torch.tensor([1e8], dtype=torch.float32)
    assert beta_entropy(a, a).dtype == F64


def test_beta_moment_fit_reproduces_mean_and_variance() -> None:
    mean = torch.tensor([0.2, 0.5, 0.9], dtype=F64)
    var = torch.tensor([0.01, 0.05, 0.001], dtype=F64)
    alpha, beta = beta_moment_fit(mean, var)
    dist = scipy.stats.beta(alpha.numpy(), beta.numpy())
    np.testing.assert_allclose(dist.mean(), mean.numpy(), rtol=1e-12)
    np.testing.assert_allclose(dist.var(), var.numpy(), rtol=1e-10)


def test_beta_moment_fit_invalid_when_variance_too_large() -> None:
    alpha, beta = beta_moment_fit(torch.tensor([0.5], dtype=F64), torch.tensor([0.3], dtype=F64))
    assert alpha.item() <= 0 or beta.item() <= 0


def test_entropy_hand_worked() -> None:
    p = torch.tensor([0.5, 0.25, 0.25, 0.0], dtype=F64).reshape(4, 1, 1)
    expected = 0.5 * math.log(2) + 2 * 0.25 * math.log(4)
    assert entropy(p).item() == pytest.approx(expected, rel=1e-14)


def test_margin_hand_worked() -> None:
    mean = torch.tensor([[0.1, 0.6, 0.3], [0.4, 0.4, 0.2]], dtype=F64).T.reshape(3, 1, 2)
    np.testing.assert_allclose(margin(mean).reshape(-1).numpy(), [-0.3, 0.0], atol=1e-15)


def test_margin_single_class() -> None:
    assert margin(torch.ones(1, 2, 2)).eq(-1).all()


def _bald_loop(probs: np.ndarray) -> np.ndarray:
    """BALD pixel by pixel in plain python: H(mean) - mean of H(sample), floored."""
    m, c, h, w = probs.shape
    out = np.zeros((h, w))
    for y in range(h):
        for x in range(w):
            mean = [sum(probs[k, j, y, x] for k in range(m)) / m for j in range(c)]
            big_h = -sum(q * math.log(q) for q in mean if q > 0)
            big_e = sum(-sum(q * math.log(q) for q in probs[k, :, y, x] if q > 0)
                        for k in range(m)) / m
            out[y, x] = max(big_h - big_e, BALD_FLOOR)
    return out


def test_bald_matches_python_loop() -> None:
    probs = softmax_samples(6, (4, 5, 3), seed=3)
    probs[:, :, 0, 0] = torch.tensor([1.0, 0, 0, 0], dtype=F64)[None]  # a certain pixel: floor
    post = PixelPosterior.from_samples(probs)
    ours = bald(post.predictive_entropy, post.expected_entropy).numpy()
    np.testing.assert_allclose(ours, _bald_loop(probs.numpy()), rtol=1e-10, atol=1e-13)
    assert ours[0, 0] == BALD_FLOOR


def test_decomposition_parts() -> None:
    post = PixelPosterior.from_samples(softmax_samples(5, (2, 3, 4, 5), seed=1))
    parts = decomposition(post)
    assert set(parts) == {"epistemic", "aleatoric", "posterior"}
    assert all(v.shape == (2, 4, 5) for v in parts.values())
    torch.testing.assert_close(parts["epistemic"],
                               bald(post.predictive_entropy, post.expected_entropy))
    torch.testing.assert_close(parts["aleatoric"], post.expected_entropy)
    mjent = posterior_term(post.mean, post.variance) + post.predictive_entropy
    torch.testing.assert_close(parts["posterior"], mjent)


def test_posterior_term_is_computed_once_per_posterior_and_floor(monkeypatch) -> None:
    from strategies import build_strategy
    from strategies.balent import kernel

    calls = []  # the kernel's one entry point: the term alone, or with BalEnt's scores
    real = kernel.posterior_term_and_scores
    monkeypatch.setattr(kernel, "posterior_term_and_scores",
                        lambda mean, var, h=None, floored=False: calls.append(floored)
                        or real(mean, var, h, floored=floored))
    post = PixelPosterior.from_samples(softmax_samples(5, (3, 4, 5), seed=2))
    exact = build_strategy("balent").score(post)
    parts = decomposition(post)  # the uncertainty record reuses BalEnt's S
    build_strategy("balent_ref").score(post)
    assert calls == [False, True]
    fresh = PixelPosterior.from_samples(softmax_samples(5, (3, 4, 5), seed=2))
    torch.testing.assert_close(decomposition(fresh)["posterior"], parts["posterior"])
    torch.testing.assert_close(build_strategy("balent").score(fresh), exact)
    assert calls == [False, True, False]  # a new posterior computes its own, once


@pytest.mark.parametrize("floored", [False, True])
def test_posterior_term_does_not_depend_on_blocks_threads_or_compaction(monkeypatch,
                                                                       floored: bool) -> None:
    """The torch kernel: the CUDA setting (one block, one worker), small blocks on a thread pool,
    and evaluating only the valid fits (gathered) or every class-pixel (masked) all give the same S."""
    import strategies.balent.torch_kernel as pt
    from strategies.balent import kernel

    probs = softmax_samples(6, (2, 7, 9, 11), seed=5, spread=0.5, scale=6.0)  # many tiny classes
    post = PixelPosterior.from_samples(probs.to(torch.float32))
    results = []
    for block, threads, compact_below in ((1 << 21, 1, 2.0), (1 << 21, 1, 0.0), (50, 2, 2.0),
                                          (50, 2, 0.0)):
        monkeypatch.setattr(pt, "BLOCK_ELEMENTS", block)
        monkeypatch.setattr(pt, "COMPACT_BELOW", compact_below)
        monkeypatch.setattr(pt.torch, "get_num_threads", lambda threads=threads: threads)
        with kernel.torch_kernel_only():
            results.append(posterior_term_parts(post.mean, post.variance, floored=floored))
    for other in results[1:]:
        torch.testing.assert_close(other.finite, results[0].finite, rtol=1e-14, atol=0.0)
        assert torch.equal(other.saturated, results[0].saturated)
        assert torch.equal(other.fitted, results[0].fitted)
    assert bool(results[0].fitted.any()) and bool((results[0].finite < 0).any())
