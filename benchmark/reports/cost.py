"""Learning curves against annotation cost: ``aulc_cost``, the area under mIoU against
``cumulative_cost`` per run, over the cost span every ranked run of a (dataset, model) covers.

Every run's curve is piecewise linear between its cycles. The span is [the largest first cost,
the smallest last cost] over the ranked runs of the block (cycle 0 costs the same for every unit
with the default costs, so it starts there; the cheapest-reaching run ends it), and a run's
``aulc_cost`` is its curve's integral over the span divided by the span: its mean mIoU over equal
cost. Runs whose span is a single point give their mIoU there; tables without ``cumulative_cost``
(written before it existed) give NaN. Pure numpy/pandas.
"""
from __future__ import annotations

import math

import numpy as np
import pandas as pd

from benchmark.reports.statistics import t_interval

COST_COLUMNS = ["aulc_cost_mean", "aulc_cost_ci95", "cost_span_start", "cost_span_end"]


def curve_mean(costs, mious, start: float, end: float) -> float:
    """Mean of the piecewise-linear curve (costs, mious) over [start, end] (its value at ``start``
    when end <= start); NaN if the curve does not cover the interval."""
    x = np.asarray(costs, dtype=float)
    y = np.asarray(mious, dtype=float)
    keep = np.isfinite(x) & np.isfinite(y)
    x, y = x[keep], y[keep]
    if x.size == 0 or not (x.min() <= start + 1e-9 and x.max() >= end - 1e-9):
        return math.nan
    order = np.argsort(x, kind="stable")
    x, y = x[order], y[order]
    if end <= start:
        return float(np.interp(start, x, y))
    inner = (x > start) & (x < end)
    xs = np.concatenate([[start], x[inner], [end]])
    ys = np.concatenate([[np.interp(start, x, y)], y[inner], [np.interp(end, x, y)]])
    return float(np.trapezoid(ys, xs) / (end - start))


def aulc_cost(cycles: pd.DataFrame, group: list[str]) -> pd.DataFrame:
    """Per arm of ``cycles`` (one (dataset, model) block, ranked runs only; ``group`` the arm's
    columns): ``COST_COLUMNS``, the mean and 95% half width of the per-seed ``aulc_cost``."""
    if "cumulative_cost" not in cycles.columns or cycles["cumulative_cost"].isna().all():
        return pd.DataFrame(columns=group + COST_COLUMNS)
    runs = cycles.dropna(subset=["cumulative_cost"]).groupby(group + ["seed"], sort=True)
    start = float(runs["cumulative_cost"].min().max())
    end = float(runs["cumulative_cost"].max().min())
    per_seed = pd.DataFrame([dict(zip(group, key[:-1]), aulc=curve_mean(run["cumulative_cost"], run["miou"], start, end))
                             for key, run in runs])
    rows = []
    for arm, seeds in per_seed.groupby(group, sort=True):
        mean, half = t_interval(seeds["aulc"])
        rows.append(dict(zip(group, arm if isinstance(arm, tuple) else (arm,)), aulc_cost_mean=mean,
                         aulc_cost_ci95=half, cost_span_start=start, cost_span_end=end))
    return pd.DataFrame(rows, columns=group + COST_COLUMNS)
