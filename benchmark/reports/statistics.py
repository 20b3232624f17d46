"""The statistics behind the leaderboard: area under a learning curve, t-intervals over seeds,
paired t-tests and Holm's correction, ranks; and how sure a verdict is with few seeds: bootstrap
intervals over seeds, the interquartile mean, the probability that one arm beats another, and the
seeds a paired test needs for a given power. Pure numpy/scipy, arrays in, numbers out."""
from __future__ import annotations

import math
import warnings
import zlib

import numpy as np
import pandas as pd
from scipy import stats

CONFIDENCE = 0.95


def aulc(fractions, mious) -> float:
    """Area under the mIoU curve over the labelled fraction, divided by the fraction's span.

    Points are sorted by fraction first. A straight line ``a + b * f`` on [f0, f1] gives exactly
    ``a + b * (f0 + f1) / 2``. A single point, or a zero span, gives that (last) point's mIoU.
    """
    x = np.asarray(fractions, dtype=float).reshape(-1)
    y = np.asarray(mious, dtype=float).reshape(-1)
    if x.shape != y.shape:
        raise ValueError(f"aulc: {x.size} fractions but {y.size} mIoU values")
    if x.size == 0:
        return math.nan
    order = np.argsort(x, kind="stable")
    x, y = x[order], y[order]
    span = x[-1] - x[0]
    if x.size == 1 or span == 0:
        return float(y[-1])
    return float(np.trapezoid(y, x) / span)


def t_interval(values) -> tuple[float, float]:
    """(mean, half width of the 95% t-interval) of ``values``; NaNs are dropped.

    With fewer than two values the half width is NaN (no interval); with none both are NaN.
    """
    v = np.asarray(values, dtype=float).reshape(-1)
    v = v[~np.isnan(v)]
    if v.size == 0:
        return math.nan, math.nan
    mean = float(v.mean())
    if v.size < 2:
        return mean, math.nan
    sem = float(v.std(ddof=1)) / math.sqrt(v.size)
    return mean, float(stats.t.ppf(0.5 + CONFIDENCE / 2, v.size - 1) * sem)


def paired_p_value(a: pd.Series, b: pd.Series) -> float:
    """Two-sided p-value of a paired t-test of ``a`` against ``b`` (both indexed by seed) over
    their shared seeds; NaN with fewer than 2 shared seeds. Differences without spread (the test
    degenerates) give 1 when they are all 0 and 0 otherwise."""
    shared = a.index.intersection(b.index)
    if len(shared) < 2:
        return math.nan
    x, y = a.loc[shared].to_numpy(float), b.loc[shared].to_numpy(float)
    diff = x - y
    if np.ptp(diff) <= 1e-12 * max(1.0, float(np.abs(diff).max())):
        return 1.0 if abs(float(diff.mean())) <= 1e-9 else 0.0
    return float(stats.ttest_rel(x, y).pvalue)


def holm(p_values: dict) -> dict:
    """Holm's step-down adjustment of a family of p-values (NaN entries are left out of the
    family and stay NaN): the k-th smallest of m becomes max over j <= k of min(1, (m-j+1) p_(j))."""
    valid = sorted((p, key) for key, p in p_values.items() if not math.isnan(p))
    adjusted, running = {key: math.nan for key in p_values}, 0.0
    for rank, (p, key) in enumerate(valid):
        running = max(running, min(1.0, (len(valid) - rank) * p))
        adjusted[key] = running
    return adjusted


def holm_levels(p_values: dict, alpha: float) -> dict:
    """The level Holm's step-down procedure tests each raw p-value at: alpha / (m - k) for the k-th
    smallest (k from 0) of the m valid ones, ordered as ``holm`` orders them; NaN entries stay NaN.
    ``holm(p)[key] < alpha`` holds exactly when ``p[key]`` and every smaller p are below their levels."""
    valid = sorted((p, key) for key, p in p_values.items() if not math.isnan(p))
    levels = {key: math.nan for key in p_values}
    for rank, (_, key) in enumerate(valid):
        levels[key] = alpha / (len(valid) - rank)
    return levels


def descending_ranks(primary, secondary, decimals: int) -> np.ndarray:
    """Ranks along the last axis by ``primary`` then ``secondary``, both descending (NaN last);
    values equal to ``decimals`` decimals on both keys share the smaller rank (1, 1, 3)."""
    a = np.nan_to_num(np.round(np.asarray(primary, dtype=float), decimals), nan=-np.inf)
    f = np.nan_to_num(np.round(np.asarray(secondary, dtype=float), decimals), nan=-np.inf)
    ahead = (a[..., None, :] > a[..., :, None]) | ((a[..., None, :] == a[..., :, None]) & (f[..., None, :] > f[..., :, None]))
    return ahead.sum(axis=-1) + 1


# -- how sure: few-seed statistics (rliable: Agarwal et al., NeurIPS 2021) -------------------------
BOOTSTRAP_RESAMPLES = 10_000
BOOTSTRAP_SEED = 0
IQM_MIN_VALUES = 5


def interquartile_mean(values) -> float:
    """The mean of the middle half: ``scipy.stats.trim_mean(values, 0.25)`` (a quarter of the values,
    rounded down, cut at each end); NaN with fewer than ``IQM_MIN_VALUES`` values (NaNs dropped)."""
    v = np.asarray(values, dtype=float).reshape(-1)
    v = v[~np.isnan(v)]
    return float(stats.trim_mean(v, 0.25)) if v.size >= IQM_MIN_VALUES else math.nan


def win_scores(x, y, decimals: int) -> np.ndarray:
    """Element-wise 1 where ``x > y``, 0.5 where they are equal to ``decimals`` decimals, 0 where
    ``x < y``; NaN where either is NaN. Their mean is the probability that x beats y, ties half."""
    x = np.round(np.asarray(x, dtype=float), decimals)
    y = np.round(np.asarray(y, dtype=float), decimals)
    score = np.where(x > y, 1.0, np.where(x == y, 0.5, 0.0))
    return np.where(np.isnan(x) | np.isnan(y), np.nan, score)


def bootstrap_draws(n: int, stratum: str, resamples: int = BOOTSTRAP_RESAMPLES) -> np.ndarray:
    """``[resamples, n]`` indices of ``n`` seeds drawn with replacement for one stratum (a task).

    The generator is seeded with ``BOOTSTRAP_SEED`` and the stratum's name, so a task always gets the
    same draws whatever else is in the table (same input, same intervals), and two tasks independent
    ones. Every statistic of a task is resampled with these draws: the same seeds for every arm.
    """
    rng = np.random.default_rng([BOOTSTRAP_SEED, zlib.crc32(stratum.encode())])
    return rng.integers(0, n, size=(resamples, n))


def resampled_means(matrix, draws) -> np.ndarray:
    """``[resamples, columns]``: the mean over the drawn rows (seeds) of each column of ``matrix``
    ``[seeds, columns]``, NaN cells left out (NaN when a draw holds none of a column's values)."""
    sample = np.asarray(matrix, dtype=float)[np.asarray(draws)]  # [resamples, n, columns]
    present = ~np.isnan(sample)
    count = present.sum(axis=1)
    total = np.where(present, sample, 0.0).sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(count > 0, total / np.maximum(count, 1), np.nan)


def percentile_interval(samples, confidence: float = CONFIDENCE) -> tuple[np.ndarray, np.ndarray]:
    """The (low, high) percentile interval of bootstrap ``samples`` ``[resamples, ...]`` along axis 0
    (NaN resamples left out; NaN where there is none)."""
    s = np.asarray(samples, dtype=float)
    tail = 100 * (1 - confidence) / 2
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # an all-NaN column: NaN, said by the result
        low, high = np.nanpercentile(s, [tail, 100 - tail], axis=0)
    return low, high


POWER = 0.8
MAX_SEEDS = 10**9


def paired_t_power(effect: float, n: int, alpha: float) -> float:
    """Power of a two-sided paired t-test at level ``alpha`` with ``n`` pairs when the differences'
    mean is ``effect`` standard deviations: P(|T| > t_crit) for T noncentral t (n - 1 degrees of
    freedom, noncentrality effect * sqrt(n)). The lower tail P(T < -t_crit) is taken as the upper
    tail of -T (noncentrality negated): scipy's ``nct.cdf`` far below a large noncentrality is NaN."""
    df, nc = n - 1, effect * math.sqrt(n)
    critical = stats.t.isf(alpha / 2, df)
    return float(stats.nct.sf(critical, df, nc) + stats.nct.sf(critical, df, -nc))


def seeds_for_power(differences, alpha: float, power: float = POWER, decimals: int = 9) -> float:
    """The fewest seeds (>= 2) at which a two-sided paired t-test at level ``alpha`` has ``power``,
    if the per-seed ``differences`` observed are the truth (effect = their mean / their standard
    deviation). NaN with fewer than 2 differences; inf when their mean is 0 (to ``decimals``
    decimals) or more than ``MAX_SEEDS`` would be needed; 2 when they have no spread (every seed
    showed the same non-zero difference: any paired test separates them)."""
    d = np.asarray(differences, dtype=float).reshape(-1)
    d = d[~np.isnan(d)]
    if d.size < 2 or math.isnan(alpha):
        return math.nan
    mean = float(d.mean())
    if round(abs(mean), decimals) == 0:
        return math.inf
    spread = float(d.std(ddof=1))
    if spread <= 1e-12 * abs(mean):
        return 2
    effect = abs(mean) / spread
    low, high = 1, 2  # power(low) < power <= power(high), searched by doubling then bisection
    while paired_t_power(effect, high, alpha) < power:
        if high >= MAX_SEEDS:
            return math.inf
        low, high = high, min(2 * high, MAX_SEEDS)
    while high - low > 1:
        middle = (low + high) // 2
        low, high = (low, middle) if paired_t_power(effect, middle, alpha) >= power else (middle, high)
    return high
