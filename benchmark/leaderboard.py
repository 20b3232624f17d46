"""The leaderboard: area under the learning curve (AULC) and final mIoU per strategy, over seeds.

Pure pandas/scipy: frames in, frames out (files: ``benchmark.tables``; printing:
``benchmark.display``). One row per (dataset, model, strategy); the ``supervised`` reference (all pixels
labelled) is not ranked, it only gives "% of supervised mIoU".

- AULC of one seed: trapezoid of mIoU over the labelled fraction, divided by the fraction's span,
  so it is the curve's mean height in mIoU points (a one-point curve's AULC is that point's mIoU).
- Final mIoU of one seed: the mIoU at that seed's last cycle.
- Over seeds: mean and the half width of a 95% t-interval; one seed gives no interval (NaN).
- Rank within (dataset, model): by AULC mean, descending, then final mIoU mean, descending. Exact
  ties (equal to 1e-9 on both keys) share the smaller rank ("min"/competition ranking: 1, 1, 3).
- ``tied_with_best``: a paired t-test on per-seed AULC against the rank-1 strategy over the seeds
  both have, at alpha 0.05, cannot tell the two apart.
"""
from __future__ import annotations

import math

import numpy as np
import pandas as pd
from scipy import stats

from benchmark.records import KEY_COLUMNS, RUN_KEY, SUPERVISED, require_columns

REQUIRED_COLUMNS = KEY_COLUMNS + ["labeled_fraction", "miou"]
GROUP = RUN_KEY[:-1]  # (dataset, model, strategy)
ALPHA = 0.05
CONFIDENCE = 0.95
TIE_DECIMALS = 9
LEADERBOARD_COLUMNS = [
    "dataset", "model", "strategy", "n_seeds", "aulc_mean", "aulc_ci95", "final_miou_mean",
    "final_miou_ci95", "pct_of_supervised", "rank", "tied_with_best",
    # extras
    "final_labeled_fraction", "supervised_miou", "n_cycles", "note",
]
ONE_SEED_NOTE = "1 seed, no interval"
TIED_MARKER = "≈"


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


def clean_cycles(cycles: pd.DataFrame) -> pd.DataFrame:
    """Check the needed columns (UsageError naming the missing ones); drop duplicate keys keeping the last."""
    require_columns(cycles, REQUIRED_COLUMNS, "the cycles table",
                    f"pass a cycles.csv written by `python -m benchmark run` (columns "
                    f"{', '.join(REQUIRED_COLUMNS)} are needed)")
    frame = cycles.drop_duplicates(KEY_COLUMNS, keep="last")
    return frame.sort_values(KEY_COLUMNS, kind="stable").reset_index(drop=True)


def per_seed(cycles: pd.DataFrame) -> pd.DataFrame:
    """One row per (dataset, model, strategy, seed): aulc, final_miou, final fraction, cycles."""
    rows = []
    for key, run in clean_cycles(cycles).groupby(GROUP + ["seed"], sort=True):
        last = run.iloc[-1]
        rows.append(dict(zip(GROUP + ["seed"], key), aulc=aulc(run["labeled_fraction"], run["miou"]),
                         final_miou=float(last["miou"]), final_labeled_fraction=float(last["labeled_fraction"]),
                         last_cycle=int(last["cycle"]), n_cycles=len(run)))
    return pd.DataFrame(rows, columns=GROUP + ["seed", "aulc", "final_miou", "final_labeled_fraction",
                                               "last_cycle", "n_cycles"])


def _paired_tied(best: pd.Series, other: pd.Series):
    """True/False: a paired t-test (alpha 0.05) cannot / can tell ``other`` from ``best``.

    Both are per-seed AULC indexed by seed; only shared seeds count. Fewer than 2 -> pd.NA.
    """
    shared = best.index.intersection(other.index)
    if len(shared) < 2:
        return pd.NA
    a, b = best.loc[shared].to_numpy(float), other.loc[shared].to_numpy(float)
    diff = a - b
    if np.ptp(diff) <= 1e-12 * max(1.0, float(np.abs(diff).max())):  # no spread: the t-test degenerates
        return bool(abs(float(diff.mean())) <= 1e-9)
    return bool(stats.ttest_rel(a, b).pvalue >= ALPHA)


def _summarise(seeds: pd.DataFrame) -> dict:
    aulc_mean, aulc_ci = t_interval(seeds["aulc"])
    final_mean, final_ci = t_interval(seeds["final_miou"])
    notes = []
    if len(seeds) == 1:
        notes.append(ONE_SEED_NOTE)
    if seeds["last_cycle"].nunique() > 1:
        notes.append("seeds stop at different cycles")
    return dict(n_seeds=len(seeds), aulc_mean=aulc_mean, aulc_ci95=aulc_ci, final_miou_mean=final_mean,
                final_miou_ci95=final_ci, final_labeled_fraction=float(seeds["final_labeled_fraction"].mean()),
                n_cycles=int(seeds["n_cycles"].max()), note="; ".join(notes))


def _rank_block(block: pd.DataFrame, seeds: pd.DataFrame) -> pd.DataFrame:
    """Rank one (dataset, model) block and mark the strategies tied with the best."""
    a = block["aulc_mean"].round(TIE_DECIMALS).fillna(-np.inf).to_numpy()
    f = block["final_miou_mean"].round(TIE_DECIMALS).fillna(-np.inf).to_numpy()
    better = (a[None, :] > a[:, None]) | ((a[None, :] == a[:, None]) & (f[None, :] > f[:, None]))
    block = block.assign(rank=better.sum(axis=1) + 1).sort_values(["rank", "strategy"], kind="stable")
    best_name = block["strategy"].iloc[0]
    by_strategy = {name: grp.set_index("seed")["aulc"] for name, grp in seeds.groupby("strategy")}
    tied = [True if r == 1 else _paired_tied(by_strategy[best_name], by_strategy[name])
            for name, r in zip(block["strategy"], block["rank"])]
    return block.assign(tied_with_best=pd.array(tied, dtype="boolean"))


def leaderboard(cycles: pd.DataFrame) -> pd.DataFrame:
    """One row per (dataset, model, strategy) other than ``supervised``; see the module docstring.

    Duplicate rows of one (dataset, model, strategy, seed, cycle) key keep the last. Columns are
    ``LEADERBOARD_COLUMNS``; ``*_ci95`` is the 95% t-interval half width over seeds (NaN for one
    seed). ``pct_of_supervised`` = 100 * final_miou_mean / mean over seeds of the supervised
    reference's final mIoU for the same (dataset, model), NaN without one. ``tied_with_best`` is
    True for rank 1 and for a strategy a paired t-test on per-seed AULC over the seeds it shares
    with the rank-1 strategy cannot tell apart from it (p >= 0.05), False when it can, and NA when
    they share fewer than 2 seeds. Rows sorted by dataset, model, rank, strategy.
    """
    seeds = per_seed(cycles)
    is_ref = seeds["strategy"] == SUPERVISED
    ref = seeds[is_ref].groupby(["dataset", "model"])["final_miou"].mean()
    ranked = seeds[~is_ref]
    blocks = []
    for (dataset, model), dm_seeds in ranked.groupby(["dataset", "model"], sort=True):
        rows = [dict(dataset=dataset, model=model, strategy=name, **_summarise(grp))
                for name, grp in dm_seeds.groupby("strategy", sort=True)]
        block = pd.DataFrame(rows)
        sup = float(ref.get((dataset, model), math.nan))
        block["supervised_miou"] = sup
        block["pct_of_supervised"] = 100.0 * block["final_miou_mean"] / sup if sup else math.nan
        blocks.append(_rank_block(block, dm_seeds))
    if not blocks:
        return pd.DataFrame({c: pd.Series(dtype=object) for c in LEADERBOARD_COLUMNS})
    out = pd.concat(blocks, ignore_index=True)[LEADERBOARD_COLUMNS]
    out = out.sort_values(["dataset", "model", "rank", "strategy"], kind="stable").reset_index(drop=True)
    return out.astype({"n_seeds": "int64", "rank": "int64", "n_cycles": "int64", "tied_with_best": "boolean"})
