"""Each built-in strategy on hand-worked cases and against independent references."""
from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.stats
import torch

from benchmark.perf.balent_reference import (
    ACCURACY_BOUND,
    accuracy_samples,
    balent_acquisition_mpmath,
    balent_acquisition_scipy,
)
from strategies import PixelPosterior, build_strategy
from strategies.uncertainty import bald, posterior_term
from tests.test_strategies.conftest import softmax_samples

F64 = torch.float64


def _g(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def _posterior_from_pixels(pixels: list[list[list[float]]]) -> PixelPosterior:
    """pixels[x][k] = class probabilities of MC sample k at pixel (0, x)."""
    probs = torch.tensor(pixels, dtype=F64).permute(1, 2, 0)[:, :, None, :]  # [m, C, 1, W]
    return PixelPosterior.from_samples(probs)


def test_entropy_hand_worked() -> None:
    post = _posterior_from_pixels([[[0.5, 0.5], [1.0, 0.0]], [[0.2, 0.8], [0.2, 0.8]]])
    scores = build_strategy("entropy").score(post).reshape(-1)
    expected = [-(0.75 * math.log(0.75) + 0.25 * math.log(0.25)),
                -(0.2 * math.log(0.2) + 0.8 * math.log(0.8))]
    np.testing.assert_allclose(scores.numpy(), expected, rtol=1e-14)


def test_margin_hand_worked() -> None:
    post = _posterior_from_pixels([[[0.6, 0.3, 0.1], [0.4, 0.5, 0.1]],  # mean .5 .4 .1
                                   [[0.1, 0.1, 0.8], [0.1, 0.1, 0.8]]])
    scores = build_strategy("margin").score(post).reshape(-1)
    np.testing.assert_allclose(scores.numpy(), [-0.1, -0.7], atol=1e-15)


def test_bald_strategy_is_the_shared_bald() -> None:
    post = PixelPosterior.from_samples(softmax_samples(5, (4, 3, 3), seed=0))
    torch.testing.assert_close(build_strategy("bald").score(post),
                               bald(post.predictive_entropy, post.expected_entropy))


@pytest.mark.parametrize("seed", [0, 37, 99])
def test_random_is_uniform_and_reproducible(seed: int) -> None:
    post = PixelPosterior.from_samples(softmax_samples(2, (3, 100, 100), seed=0))
    strategy = build_strategy("random")
    scores = strategy.score(post, generator=_g(seed))
    assert scores.shape == (100, 100)
    assert scipy.stats.kstest(scores.reshape(-1).numpy(), "uniform").pvalue > 1e-6
    assert torch.equal(scores, strategy.score(post, generator=_g(seed)))
    assert not torch.equal(scores, strategy.score(post, generator=_g(seed + 1)))


def test_random_ignores_the_posterior() -> None:
    a = PixelPosterior.from_samples(softmax_samples(2, (3, 4, 4), seed=0))
    b = PixelPosterior.from_samples(softmax_samples(3, (3, 4, 4), seed=1))
    strategy = build_strategy("random")
    assert torch.equal(strategy.score(a, generator=_g(5)), strategy.score(b, generator=_g(5)))


def _posterior_with_bald(values: list[float], copies: int) -> PixelPosterior:
    """A batch of ``copies`` identical images [1, W] whose BALD is ``values`` (H=log 2)."""
    big_h = torch.full((copies, 1, len(values)), math.log(2.0), dtype=F64)
    expected = big_h - torch.tensor(values, dtype=F64)
    stats = torch.full((copies, 2, 1, len(values)), 0.5, dtype=F64)
    return PixelPosterior(mean=stats, variance=stats * 0.1, predictive_entropy=big_h,
                          expected_entropy=expected, m=2)


@pytest.mark.parametrize("beta", [1.0, 2.0])
@pytest.mark.parametrize("seed", [0, 99])
def test_pbald_first_pick_frequencies_follow_bald_to_the_beta(beta: float, seed: int) -> None:
    values = [0.05, 0.1, 0.2, 0.3, 0.35]
    draws = 20000
    scores = build_strategy(dict(type="pbald", beta=beta)).score(
        _posterior_with_bald(values, draws), generator=_g(seed))  # [draws, 1, 5]
    counts = np.bincount(scores.reshape(draws, -1).argmax(1).numpy(), minlength=len(values))
    weights = np.array(values) ** beta
    expected = draws * weights / weights.sum()
    assert scipy.stats.chisquare(counts, expected).pvalue > 1e-6, (counts, expected)


def test_pbald_beta_parameter() -> None:
    assert build_strategy(dict(type="pbald", beta=2.0)).beta == 2.0
    assert build_strategy("pbald").beta == 1.0
    with pytest.raises(ValueError, match="beta"):
        build_strategy(dict(type="pbald", beta=0.0))


def _worst_relative_error(ours: np.ndarray, ref: np.ndarray) -> float:
    assert np.array_equal(np.isfinite(ours), np.isfinite(ref))
    finite = np.isfinite(ref)
    return float(np.max(np.abs(ours[finite] - ref[finite]) / np.abs(ref[finite])))


@pytest.mark.usefixtures("posterior_kernel")
def test_balent_matches_scipy_float64(record_property: pytest.RecordProperty) -> None:
    post = PixelPosterior.from_samples(accuracy_samples())
    ours = build_strategy("balent").score(post).numpy()
    ref = balent_acquisition_scipy(post.mean.numpy(), post.variance.numpy())
    worst = _worst_relative_error(ours, ref)
    record_property("balent_worst_rel_error_vs_scipy_float64", worst)
    print(f"balent worst relative error vs scipy float64 formula: {worst:.3g}")
    # The straight float64 formula itself is off by up to ~2e-7 (lgamma/digamma cancellation).
    assert worst < 1e-6


@pytest.mark.usefixtures("posterior_kernel")
def test_balent_matches_40_digit_reference(record_property: pytest.RecordProperty) -> None:
    pytest.importorskip("mpmath")
    post = PixelPosterior.from_samples(accuracy_samples())
    ours = build_strategy("balent").score(post).numpy()
    mean, var = post.mean.numpy(), post.variance.numpy()
    ref = np.array([[balent_acquisition_mpmath(mean[:, y, x], var[:, y, x])
                     for x in range(mean.shape[2])] for y in range(mean.shape[1])])
    worst = _worst_relative_error(ours, ref)
    record_property("balent_worst_rel_error_vs_mpmath", worst)
    print(f"balent worst relative error vs 40-digit mpmath: {worst:.3g}")
    assert worst < ACCURACY_BOUND


def _confident_and_uncertain() -> PixelPosterior:
    """Pixel 0: confident (small variance); pixel 1: genuinely uncertain."""
    confident = softmax_samples(20, (5, 1, 1), 7, spread=0.05, scale=8.0)
    uncertain = softmax_samples(20, (5, 1, 1), 8, spread=1.5, scale=0.3)
    return PixelPosterior.from_samples(torch.cat([confident, uncertain], dim=-1))


@pytest.mark.usefixtures("posterior_kernel")
def test_balent_ref_floor_drops_the_class_term_for_confident_pixels() -> None:
    post = _confident_and_uncertain()
    exact = posterior_term(post.mean, post.variance)[0]
    floored = posterior_term(post.mean, post.variance, floored=True)[0]
    assert exact[0] < -1.0  # the exact posterior term of a confident pixel is large and negative
    assert abs(floored[0]) < 1e-3  # the floor makes h_c hugely positive: min(0, .) drops it


@pytest.mark.usefixtures("posterior_kernel")
def test_balent_ref_ranks_the_confident_pixel_first_where_balent_ranks_it_last() -> None:
    post = _confident_and_uncertain()
    exact = build_strategy("balent").score(post).reshape(-1)
    ref = build_strategy("balent_ref").score(post).reshape(-1)
    assert exact[1] > exact[0]  # exact: the uncertain pixel first
    assert ref[0] > ref[1]  # reference code: the confident pixel first


@pytest.mark.usefixtures("posterior_kernel")
def test_balent_one_hot_pixel_ranks_last() -> None:
    post = _posterior_from_pixels([[[1.0, 0.0, 0.0]] * 4, [[0.5, 0.3, 0.2], [0.2, 0.3, 0.5]] * 2])
    scores = build_strategy("balent").score(post).reshape(-1)
    assert scores[0] == float("-inf") and math.isfinite(scores[1])


@pytest.mark.usefixtures("posterior_kernel")
def test_balent_fit_at_the_beta_variance_limit_is_invalid_in_any_sample_order() -> None:
    # class 2 takes the values 0, 1/3, 0, 1: unbiased variance 2/9 = mean (1 - mean), the largest a
    # Beta allows; alpha is 0 in exact arithmetic and +-1e-17 after rounding, depending on order.
    third = 1.0 / 3.0
    samples = [[1.0, 0.0, 0.0], [third, third, third], [1.0, 0.0, 0.0], [0.0, 0.0, 1.0]]
    scores = set()
    for order in ([0, 1, 2, 3], [0, 3, 2, 1], [3, 2, 1, 0], [1, 3, 0, 2]):
        post = _posterior_from_pixels([[samples[k] for k in order]])
        scores.add(round(build_strategy("balent").score(post).item(), 12))
    mean = np.array([7 / 12, 1 / 12, 1 / 3])[:, None, None]
    var = np.array([0.25, 1 / 36, 2 / 9])[:, None, None]
    assert scores == {round(float(balent_acquisition_scipy(mean, var)[0, 0]), 12)}
    assert scores.pop() > 0  # class 2 contributes 0; the pixel is not pushed to the far negative end
