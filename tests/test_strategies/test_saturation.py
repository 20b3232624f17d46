"""BalEnt at saturation: a dominant class whose float32 mean rounds to 1 ranks last, not first.

The inputs go through the float32 paths the harness runs: ``SoftmaxStatistics`` folding logits
(benchmark/model/mc_dropout.py) and ``PosteriorAccumulator`` folding float32 softmax samples.
"""
from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.stats
import torch

from benchmark.model.mc_dropout import SoftmaxStatistics
from benchmark.perf.balent_reference import balent_acquisition_mpmath
from strategies import PixelPosterior, PosteriorAccumulator, build_strategy, select_top_n
from strategies.uncertainty import entropy, posterior_term, posterior_term_parts

pytestmark = pytest.mark.usefixtures("posterior_kernel")  # fused C kernel and torch code alike

C, M = 19, 20
GAPS = [10, 15, 20, 25, 30, 40, 60, 80, 100]
VARIANTS = ["balent", "balent_ref"]
# At gap 10 the pixel is confident but far from saturation (q ~ 1e-3): there balent_ref's 1e-32
# floor on B drops the class and ranks it first by design (test_builtin_strategies covers that).
# From gap ~15 on, B(alpha + 1, beta) is large (beta small) and the floor no longer acts.
RANKED_LAST = [(v, gap) for v in VARIANTS for gap in GAPS if (v, gap) != ("balent_ref", 10)]


def logits(gap: float, seed: int = 0, ordinary: int = 6) -> torch.Tensor:
    """[M, 1, C, 1, 2 + ordinary] float64 logits. Pixel 0: class 0 leads by ``gap`` (+ N(0, 0.1^2)
    per logit); pixel 1: N(0, 1.5^2), genuinely uncertain; then ordinary pixels."""
    g = torch.Generator().manual_seed(seed)
    saturated = 0.1 * torch.randn(M, C, 1, generator=g, dtype=torch.float64)
    saturated[:, 0] += gap
    uncertain = 1.5 * torch.randn(M, C, 1, generator=g, dtype=torch.float64)
    base = 3.0 * torch.randn(1, C, ordinary, generator=g, dtype=torch.float64)
    others = base + 0.5 * torch.randn(M, C, ordinary, generator=g, dtype=torch.float64)
    return torch.cat([saturated, uncertain, others], dim=-1)[:, None, :, None, :]


def from_logits(z: torch.Tensor, dtype: torch.dtype) -> PixelPosterior:
    stats = SoftmaxStatistics()
    for sample in z:  # [1, C, 1, W]
        stats.add_logits(sample.to(dtype).clone())
    return stats.finalize()[0]


def from_samples(z: torch.Tensor, dtype: torch.dtype) -> PixelPosterior:
    acc = PosteriorAccumulator()
    for sample in z:
        acc.add(torch.softmax(sample[0].to(dtype), dim=0))
    return acc.finalize()


PATHS = {"SoftmaxStatistics": from_logits, "PosteriorAccumulator": from_samples}


def ranking(scores: torch.Tensor) -> list[int]:
    """Pixels of a [1, W] score map in selection order (non-finite last, seeded ties)."""
    picks = select_top_n(scores, None, scores.numel(), torch.Generator().manual_seed(0))
    return picks[:, 1].tolist()


@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize("variant,gap", RANKED_LAST)
def test_saturated_pixel_ranks_after_the_uncertain_and_every_positive_pixel(
        path: str, variant: str, gap: float) -> None:
    z = logits(gap)
    for dtype in (torch.float32, torch.float64):
        post = PATHS[path](z, dtype)
        scores = build_strategy(variant).score(post)
        order = ranking(scores)
        assert order.index(0) > order.index(1), (dtype, scores)
        positive = [x for x in range(scores.shape[-1]) if scores[0, x] > 0]
        assert 1 in positive
        assert all(order.index(0) > order.index(x) for x in positive), (dtype, scores)
        assert not bool(torch.isnan(scores).any())


@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize("variant", VARIANTS)
@pytest.mark.parametrize("gap", GAPS)
def test_float32_and_float64_statistics_rank_alike(path: str, variant: str, gap: float) -> None:
    z = logits(gap, seed=1)
    scores = {dtype: build_strategy(variant).score(PATHS[path](z, dtype))
              for dtype in (torch.float32, torch.float64)}
    assert ranking(scores[torch.float32]) == ranking(scores[torch.float64])
    saturated = {dtype: bool(s[0, 0] == -math.inf) for dtype, s in scores.items()}
    assert saturated[torch.float32] == saturated[torch.float64] == (gap >= 25)


def test_balent_ref_floor_acts_at_gap_10_but_not_from_15() -> None:
    for gap, first in ((10, True), (15, False)):
        scores = build_strategy("balent_ref").score(from_logits(logits(gap), torch.float32))
        assert (ranking(scores)[0] == 0) == first, gap


@pytest.mark.parametrize("gap", GAPS)
def test_bald_and_entropy_also_rank_the_saturated_pixel_after_the_uncertain_one(gap: float) -> None:
    post = from_logits(logits(gap), torch.float32)
    for name in ("bald", "entropy", "margin", "balent"):
        scores = build_strategy(name).score(post)
        assert scores[0, 0] < scores[0, 1], name


def test_posterior_term_falls_to_minus_infinity_as_the_gap_grows() -> None:
    """Below saturation S is finite and falls steeply as the complement q approaches the clamp;
    past it S = -inf: the limit, not a jump back to 0 (which ranked the pixel first)."""
    g = torch.Generator().manual_seed(3)
    noise = 0.1 * torch.randn(M, C, 1, 1, generator=g, dtype=torch.float64)
    values = []
    for gap in np.arange(12.0, 30.0, 0.5):
        z = noise.clone()
        z[:, 0] += gap
        post = PixelPosterior.from_samples(torch.softmax(z, dim=1))
        values.append(posterior_term(post.mean, post.variance).item())
    finite = [v for v in values if math.isfinite(v)]
    assert finite == sorted(finite, reverse=True)  # non-increasing
    assert finite[-1] < -1e6 and values[-1] == -math.inf
    assert values.index(-math.inf) == len(finite)  # once saturated, saturated for larger gaps


def test_underflowed_complement_is_saturated_not_nan() -> None:
    z = logits(110.0)  # exp(-110) is below float32's smallest subnormal: flushed to 0
    post = from_logits(z, torch.float32)
    assert post.mean[1:, 0, 0].eq(0).all() and post.mean[0, 0, 0] == 1
    parts = posterior_term_parts(post.mean, post.variance)
    assert bool(parts.saturated[0, 0]) and parts.value[0, 0] == -math.inf
    assert math.isfinite(parts.finite[0, 0].item())


def test_fit_at_the_bhatia_davis_limit_still_contributes_zero() -> None:
    # class 0 is 1 in three samples of four: unbiased variance 1/4 > p q = 3/16, dominant and
    # invalid, but not because of the clamp: it contributes 0 and the pixel is not saturated.
    probs = torch.tensor([[1.0, 0.0], [1.0, 0.0], [1.0, 0.0], [0.0, 1.0]],
                         dtype=torch.float64)[:, :, None, None]
    post = PixelPosterior.from_samples(probs)
    parts = posterior_term_parts(post.mean, post.variance)
    assert not bool(parts.saturated.any()) and not bool(parts.fitted.any())
    assert parts.value.item() == 0.0
    h = post.predictive_entropy.item()
    assert build_strategy("balent").score(post).item() == pytest.approx((h + math.log(2)) / h)


def test_means_off_the_simplex_keep_one_minus_p() -> None:
    """Means that are not a probability vector (sum 0.65): no complement from the other classes."""
    p = np.array([0.3, 0.3, 0.05])
    v = np.array([0.01, 0.02, 0.001])
    alpha = p * p * (1 - p) / v - p
    beta = (1 / p - 1) * alpha
    expected = sum(min(0.0, pc * scipy.stats.beta(a + 1, b).entropy())
                   for pc, a, b in zip(p, alpha, beta))
    s = posterior_term(torch.tensor(p)[:, None, None], torch.tensor(v)[:, None, None]).item()
    assert s == pytest.approx(expected, rel=1e-9)


@pytest.mark.parametrize("gap", [10, 18, 22, 25, 40])
def test_saturation_matches_the_40_digit_reference(gap: float) -> None:
    """The kernel on float32 statistics (the top class's mean exactly 1.0 from gap ~17 on),
    against mpmath on the same numbers (H recomputed from them: float32's own H differs)."""
    pytest.importorskip("mpmath")
    stats = from_logits(logits(gap), torch.float32)
    mean, var = stats.mean.double(), stats.variance.double()
    post = PixelPosterior(mean=mean, variance=var, predictive_entropy=entropy(mean),
                          expected_entropy=stats.expected_entropy.double(), m=stats.m)
    ours = build_strategy("balent").score(post)[0].numpy()
    mean, var = mean[:, 0].numpy(), var[:, 0].numpy()
    for x in range(mean.shape[1]):
        ref = balent_acquisition_mpmath(mean[:, x], var[:, x])
        if math.isinf(ref):
            assert ours[x] == ref
        else:
            assert ours[x] == pytest.approx(ref, rel=1e-12), (x, ours[x], ref)
