"""The few-seed statistics of benchmark.reports.statistics against independent computations: scipy's
noncentral t for the power, a brute-force pair count, Holm's procedure spelled out, the middle of a
sorted list, and the exact bootstrap distribution of small samples."""
from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
from scipy import integrate, stats

from benchmark.reports.statistics import (
    BOOTSTRAP_RESAMPLES,
    bootstrap_draws,
    descending_ranks,
    holm,
    holm_levels,
    interquartile_mean,
    paired_t_power,
    percentile_interval,
    resampled_means,
    seeds_for_power,
    win_scores,
)


def power_by_definition(effect, n, alpha):
    """P(reject) of a two-sided one-sample t-test at level alpha on n normal values whose mean is
    effect standard deviations, by integrating over the sample standard deviation: with
    S = sd / sigma (n - 1 degrees of freedom, S^2 (n - 1) chi-square) the test rejects when
    |Z + effect sqrt(n)| > t_crit S, Z standard normal. No noncentral t involved."""
    df, shift = n - 1, effect * np.sqrt(n)
    critical = stats.t.isf(alpha / 2, df)

    def integrand(s):
        density = stats.chi2.pdf(df * s * s, df) * 2 * df * s
        return (stats.norm.sf(critical * s - shift) + stats.norm.cdf(-critical * s - shift)) * density

    return integrate.quad(integrand, 0, np.inf, limit=200)[0]


def is_fewest_seeds(n, differences, alpha, power=0.8) -> bool:
    """``n`` reaches ``power`` and ``n - 1`` does not (power grows with n); 2 is the fewest a test takes."""
    d = np.asarray(differences, float)
    effect = abs(d.mean()) / d.std(ddof=1)
    return power_by_definition(effect, n, alpha) >= power and (n == 2 or power_by_definition(effect, n - 1, alpha) < power)


@pytest.mark.parametrize("differences,alpha", [
    ([1.0, 2.0, 0.5, 1.5], 0.05),
    ([0.3, -0.1, 0.4], 0.05 / 6),      # the smallest Holm level of six comparisons
    ([2.0, 2.5, 1.0, 3.0, 2.2], 0.025),
    ([0.1, -0.3, 0.2, 0.05], 0.05),   # a small effect: many seeds
    ([3.79, 3.96, 4.14, 4.32, 4.5], 0.0125),  # a large effect: scipy's nct.cdf of the lower tail is NaN here
])
def test_seeds_for_power_is_the_fewest_seeds_reaching_80_percent(differences, alpha):
    n = seeds_for_power(differences, alpha)
    assert is_fewest_seeds(n, differences, alpha)
    effect = abs(np.mean(differences)) / np.std(differences, ddof=1)
    assert paired_t_power(effect, n, alpha) >= 0.8 > (paired_t_power(effect, n - 1, alpha) if n > 2 else 0)


def test_a_one_standard_deviation_effect_needs_ten_seeds_at_5_percent():
    # the textbook figure: a paired t-test with d = 1 reaches 80% power at n = 10 (0.803)
    a = 1 / math.sqrt(2)
    assert seeds_for_power([1 - a, 1 + a], 0.05) == 10  # mean 1, standard deviation 1
    assert seeds_for_power([0.0, 2.0], 0.05) == 18  # d = 1 / sqrt(2): about twice the seeds
    assert power_by_definition(1.0, 10, 0.05) == pytest.approx(0.803, abs=1e-3)
    assert paired_t_power(1.0, 10, 0.05) == pytest.approx(power_by_definition(1.0, 10, 0.05), rel=1e-12)


def test_seeds_for_power_edge_cases():
    assert seeds_for_power([1.0, -1.0, 0.5, -0.5], 0.05) == math.inf  # no difference on average
    assert seeds_for_power([2.0, 2.0, 2.0], 0.05) == 2  # the same difference on every seed
    assert math.isnan(seeds_for_power([1.0], 0.05))  # one seed: no spread, no test
    assert math.isnan(seeds_for_power([1.0, 2.0], math.nan))  # no level: no test


def test_holm_levels_are_the_levels_holm_compares_each_p_value_with():
    rng = np.random.default_rng(3)
    for _ in range(200):
        m = int(rng.integers(1, 7))
        p = {k: float(v) for k, v in enumerate(rng.uniform(0, 0.06, m) ** rng.uniform(0.5, 2))}
        levels, adjusted = holm_levels(p, 0.05), holm(p)
        order = sorted(p, key=lambda k: (p[k], k))
        assert [levels[k] for k in order] == pytest.approx([0.05 / (m - i) for i in range(m)])
        for i, k in enumerate(order):  # Holm's step-down: rejected iff it and every smaller p pass
            assert (adjusted[k] < 0.05) == all(p[j] < levels[j] for j in order[:i + 1])
    assert math.isnan(holm_levels({"a": math.nan, "b": 0.01}, 0.05)["a"])
    assert holm_levels({"a": math.nan, "b": 0.01}, 0.05)["b"] == 0.05


def test_win_scores_average_to_the_brute_force_pair_count():
    x = np.array([3.0, 1.0, 2.0, 5.0, 4.0])
    y = np.array([1.0, 1.0, 3.0, 4.0, np.nan])
    scores = win_scores(x, y, 9)
    assert np.isnan(scores[4])
    pairs = [(a, b) for a, b in zip(x, y) if not np.isnan(b)]
    expected = sum(1.0 if a > b else 0.5 if a == b else 0.0 for a, b in pairs) / len(pairs)
    assert np.nanmean(scores) == expected == pytest.approx(2.5 / 4)
    assert win_scores([1.0 + 1e-12], [1.0], 9)[0] == 0.5  # equal to 9 decimals: a tie


@pytest.mark.parametrize("values,middle", [
    ([5.0, 1.0, 4.0, 2.0, 3.0], [2.0, 3.0, 4.0]),            # 5 values: one cut at each end
    ([8.0, 1.0, 7.0, 2.0, 6.0, 3.0, 5.0, 4.0], [3.0, 4.0, 5.0, 6.0]),  # 8: two at each end
])
def test_interquartile_mean_is_the_mean_of_the_middle_half(values, middle):
    assert interquartile_mean(values) == pytest.approx(np.mean(middle))


def test_interquartile_mean_needs_five_values():
    assert math.isnan(interquartile_mean([1.0, 2.0, 3.0, 4.0]))
    assert math.isnan(interquartile_mean([1.0, 2.0, 3.0, 4.0, np.nan]))


def test_bootstrap_draws_are_fixed_per_stratum_and_differ_between_strata():
    a, b, c = bootstrap_draws(4, "toy/fpn"), bootstrap_draws(4, "toy/fpn"), bootstrap_draws(4, "toy/deeplab")
    assert a.shape == (BOOTSTRAP_RESAMPLES, 4) and a.min() == 0 and a.max() == 3
    assert np.array_equal(a, b) and not np.array_equal(a, c)


def test_resampled_means_leave_out_missing_values():
    matrix = np.array([[1.0, 10.0], [3.0, np.nan], [5.0, 30.0]])
    draws = np.array([[0, 1, 2], [1, 1, 1], [2, 2, 0]])
    means = resampled_means(matrix, draws)
    assert means[:, 0] == pytest.approx([3.0, 3.0, 11 / 3])
    assert means[0, 1] == pytest.approx(20.0) and np.isnan(means[1, 1]) and means[2, 1] == pytest.approx(70 / 3)


def exact_bootstrap_means(values):
    """Every one of the n^n equally likely resamples of ``values``: their means."""
    n = len(values)
    return np.array([np.mean([values[i] for i in draw]) for draw in itertools.product(range(n), repeat=n)])


def test_the_percentile_interval_approaches_the_exact_bootstrap_distribution():
    values = np.array([20.1, 22.4, 19.3, 25.0, 21.7])
    low, high = percentile_interval(resampled_means(values[:, None], bootstrap_draws(5, "any")))
    exact = exact_bootstrap_means(values)
    exact_low, exact_high = np.percentile(exact, [2.5, 97.5])
    tolerance = 0.02 * np.ptp(exact)
    assert low[0] == pytest.approx(exact_low, abs=tolerance) and high[0] == pytest.approx(exact_high, abs=tolerance)


def test_descending_ranks_share_the_smaller_rank_and_put_nan_last():
    ranks = descending_ranks([3.0, 5.0, 5.0, np.nan, 1.0], [0.0, 1.0, 1.0, 9.0, 0.0], 9)
    assert list(ranks) == list(stats.rankdata([-3.0, -5.0, -5.0, np.inf, -1.0], method="min").astype(int))
    assert list(descending_ranks([5.0, 5.0], [1.0, 2.0], 9)) == [2, 1]  # the second key breaks a tie
    batch = descending_ranks(np.array([[1.0, 2.0], [2.0, 1.0]]), np.zeros((2, 2)), 9)
    assert batch.tolist() == [[2, 1], [1, 2]]  # along the last axis, one row per resample
