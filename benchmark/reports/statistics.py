"""The statistics behind the leaderboard: area under a learning curve, t-intervals over seeds,
paired t-tests and Holm's correction. Pure numpy/scipy."""
from __future__ import annotations

import math

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
