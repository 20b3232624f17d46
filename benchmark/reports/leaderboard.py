"""The leaderboard: area under the learning curve (AULC) and final mIoU per arm (a strategy with
its selector), over seeds.

Pure pandas/scipy: frames in, frames out (files: ``benchmark.reports.tables``; printing:
``benchmark.reports.display``; the statistics: ``benchmark.reports.statistics``). One row per (dataset, model,
strategy, selection); the ``supervised`` reference (all pixels labelled) is not ranked, it only
gives "% of supervised mIoU".

- The ranked span: within (dataset, model), every arm is scored on the cycles that EVERY ranked
  run reached (0..k, k the smallest last cycle of any ranked run), so a run that stopped early
  shortens everybody's span instead of being compared on a shorter curve; ``ranked_cycles`` and
  ``note`` say so.
- AULC of one seed: trapezoid of mIoU over the labelled fraction on that span, divided by the
  fraction's span (the curve's mean height in mIoU points). Final mIoU: the mIoU at the span's end.
- Over seeds: mean and the half width of a 95% t-interval; one seed gives no interval (NaN).
- Rank: by AULC mean, descending, then final mIoU mean, descending. Exact ties (equal to 1e-9 on
  both keys) share the smaller rank (1, 1, 3).
- ``p_holm``: paired t-tests of each arm's per-seed AULC against the rank-1 arm's (shared seeds),
  adjusted together by Holm's method (the best arm is picked on the same data, so the comparisons
  are a family). ``tied_with_best``: rank 1, or ``p_holm`` >= 0.05; NA with fewer than 2 shared
  seeds.
- ``pct_of_supervised``: per seed, final mIoU / the supervised reference's final mIoU of that seed
  (of the mean over its seeds when it lacks that seed), x 100; mean and t-interval over seeds.
- ``void_share``: share of the labelled clicks whose answer was void, at the span's end, mean over
  seeds (NaN for tables without the ``void_clicks`` column).
- ``seeds_for_80pct_power``: the seeds a paired t-test of the arm's per-seed AULC against the best's,
  at the level Holm's procedure tests the arm's p-value at (``statistics.holm_levels``), would need
  for 80% power if the differences seen are the truth; empty for rank 1 and without a test, inf when
  the mean difference is nil (an object column: int, inf or None).
- How sure, from the seeds (``benchmark.reports.verdicts``): the probability of beating random, the
  bootstrap intervals and the interquartile mean.
"""
from __future__ import annotations

import math

import pandas as pd

from benchmark.records.schema import (
    ARM,
    ARM_KEY,
    KEY_COLUMNS,
    KEY_DEFAULTS,
    SUPERVISED,
    TASK,
    require_columns,
    written_order,
)
from benchmark.reports.cost import COST_COLUMNS, aulc_cost
from benchmark.reports.statistics import (
    aulc,
    descending_ranks,
    holm,
    holm_levels,
    paired_p_value,
    seeds_for_power,
    t_interval,
)
from benchmark.reports.verdicts import BOOTSTRAP_COLUMNS, PROBABILITY_COLUMNS, task_verdicts

REQUIRED_COLUMNS = [c for c in KEY_COLUMNS if c not in KEY_DEFAULTS] + ["labeled_fraction", "miou"]
GROUP = ARM_KEY
ALPHA = 0.05
TIE_DECIMALS = 9
LEADERBOARD_COLUMNS = [
    *ARM_KEY, "n_seeds", "aulc_mean", "aulc_ci95", "final_miou_mean",
    "final_miou_ci95", "pct_of_supervised", "rank", "tied_with_best",
    # extras
    "final_labeled_fraction", "supervised_miou", "n_cycles", "note",
    "pct_of_supervised_ci95", "p_holm", "ranked_cycles", "void_share",
    # how sure (appended by the verdicts issue)
    *PROBABILITY_COLUMNS, "seeds_for_80pct_power", *BOOTSTRAP_COLUMNS,
    # at equal cost (the units issue)
    *COST_COLUMNS,
]
LEADERBOARD_COLUMNS = written_order(LEADERBOARD_COLUMNS)  # the unit column last
ONE_SEED_NOTE = "1 seed, no interval"
TIED_MARKER = "≈"


def clean_cycles(cycles: pd.DataFrame) -> pd.DataFrame:
    """Check the needed columns (UsageError naming the missing ones); tables from before the
    selection or unit column get ``topn`` and ``pixel``; duplicate keys keep the last row."""
    require_columns(cycles, REQUIRED_COLUMNS, "the cycles table",
                    f"pass a cycles.csv written by `python -m benchmark run` (columns "
                    f"{', '.join(REQUIRED_COLUMNS)} are needed)")
    cycles = cycles.assign(**{key: (cycles[key] if key in cycles.columns else pd.Series(index=cycles.index, dtype=object))
                              .fillna(default) for key, default in KEY_DEFAULTS.items()})
    frame = cycles.drop_duplicates(KEY_COLUMNS, keep="last")
    return frame.sort_values(KEY_COLUMNS, kind="stable").reset_index(drop=True)


def per_seed(cycles: pd.DataFrame, last_cycle: int | None = None) -> pd.DataFrame:
    """One row per run (dataset, model, strategy, selection, seed) on cycles <= ``last_cycle``
    (all when None): aulc, final_miou, final fraction, void share, the run's own last cycle."""
    rows = []
    for key, run in clean_cycles(cycles).groupby(GROUP + ["seed"], sort=True):
        reached = int(run["cycle"].max())
        if last_cycle is not None:
            run = run[run["cycle"] <= last_cycle]
        last = run.iloc[-1]
        queries = last["queries"] if "queries" in run.columns and pd.notna(last["queries"]) else last.get("labeled_pixels")
        void = (float(last["void_clicks"]) / float(queries)
                if "void_clicks" in run.columns and queries is not None and queries else math.nan)
        rows.append(dict(zip(GROUP + ["seed"], key), aulc=aulc(run["labeled_fraction"], run["miou"]),
                         final_miou=float(last["miou"]), final_labeled_fraction=float(last["labeled_fraction"]),
                         last_cycle=reached, n_cycles=reached + 1, void_share=void))
    return pd.DataFrame(rows, columns=GROUP + ["seed", "aulc", "final_miou", "final_labeled_fraction",
                                               "last_cycle", "n_cycles", "void_share"])


def _summarise(seeds: pd.DataFrame, supervised: pd.Series, span: int) -> dict:
    aulc_mean, aulc_ci = t_interval(seeds["aulc"])
    final_mean, final_ci = t_interval(seeds["final_miou"])
    reference = seeds["seed"].map(supervised).fillna(supervised.mean() if len(supervised) else math.nan)
    pct_mean, pct_ci = t_interval(100.0 * seeds["final_miou"].to_numpy() / reference.to_numpy())
    notes = [ONE_SEED_NOTE] if len(seeds) == 1 else []
    if (seeds["last_cycle"] > span).any():
        notes.append(f"ranked on cycles 0-{span} (the span every ranked run reached); it has up to "
                     f"{int(seeds['last_cycle'].max())}")
    return dict(n_seeds=len(seeds), aulc_mean=aulc_mean, aulc_ci95=aulc_ci, final_miou_mean=final_mean,
                final_miou_ci95=final_ci, pct_of_supervised=pct_mean, pct_of_supervised_ci95=pct_ci,
                final_labeled_fraction=float(seeds["final_labeled_fraction"].mean()),
                n_cycles=int(seeds["n_cycles"].max()), ranked_cycles=span + 1,
                void_share=float(seeds["void_share"].mean()), note="; ".join(notes))


def _rank_block(block: pd.DataFrame, seeds: pd.DataFrame) -> pd.DataFrame:
    """Rank one (dataset, model) block; Holm-adjusted paired tests against the best arm."""
    ranks = descending_ranks(block["aulc_mean"], block["final_miou_mean"], TIE_DECIMALS)
    block = block.assign(rank=ranks).sort_values(["rank"] + ARM, kind="stable")
    arms = [tuple(r) for r in block[ARM].itertuples(index=False)]
    by_arm = {arm: grp.set_index("seed")["aulc"] for arm, grp in seeds.groupby(ARM)}
    raw = {arm: paired_p_value(by_arm[arms[0]], by_arm[arm]) for arm in arms[1:]}
    adjusted, levels = holm(raw), holm_levels(raw, ALPHA)
    p_holm = [math.nan] + [adjusted[arm] for arm in arms[1:]]
    tied = [True] + [pd.NA if math.isnan(p) else bool(p >= ALPHA) for p in p_holm[1:]]
    tied = [True if r == 1 else t for r, t in zip(block["rank"], tied)]
    power = [None] + [_seeds_needed(by_arm[arms[0]], by_arm[arm], levels[arm]) for arm in arms[1:]]
    power = [None if r == 1 else n for r, n in zip(block["rank"], power)]
    return block.assign(p_holm=p_holm, tied_with_best=pd.array(tied, dtype="boolean"),
                        seeds_for_80pct_power=pd.Series(power, index=block.index, dtype=object))


def _seeds_needed(best: pd.Series, other: pd.Series, level: float):
    """``seeds_for_power`` of the per-seed differences best - other over their shared seeds, as an
    int, inf, or None (no test: fewer than 2 shared seeds)."""
    shared = best.index.intersection(other.index)
    n = seeds_for_power(best.loc[shared].to_numpy(float) - other.loc[shared].to_numpy(float), level,
                        decimals=TIE_DECIMALS)
    return None if math.isnan(n) else (n if math.isinf(n) else int(n))


def ranked_seeds(cycles: pd.DataFrame):
    """Per (dataset, model) with ranked arms, in order: ((dataset, model), ``per_seed`` rows of its
    arms on the ranked span, the span's last cycle)."""
    cycles = clean_cycles(cycles)
    for task, block in cycles[cycles["strategy"] != SUPERVISED].groupby(TASK, sort=True):
        span = int(block.groupby(GROUP + ["seed"])["cycle"].max().min())
        yield task, per_seed(block, span), span


def leaderboard(cycles: pd.DataFrame) -> pd.DataFrame:
    """One row per ranked arm of every (dataset, model); see the module docstring. Columns are
    ``LEADERBOARD_COLUMNS``; rows sorted by dataset, model, rank, strategy, selection."""
    cycles = clean_cycles(cycles)
    reference = per_seed(cycles[cycles["strategy"] == SUPERVISED])
    blocks = []
    for (dataset, model), seeds, span in ranked_seeds(cycles):
        sup = reference[(reference["dataset"] == dataset) & (reference["model"] == model)]
        sup = sup.groupby("seed")["final_miou"].mean()
        rows = [dict(dataset=dataset, model=model, **dict(zip(ARM, arm)), **_summarise(grp, sup, span))
                for arm, grp in seeds.groupby(ARM, sort=True)]
        frame = pd.DataFrame(rows).assign(supervised_miou=float(sup.mean()) if len(sup) else math.nan)
        frame = frame.merge(task_verdicts((dataset, model), seeds, TIE_DECIMALS), on=ARM, how="left")
        block = cycles[(cycles["dataset"] == dataset) & (cycles["model"] == model) & (cycles["strategy"] != SUPERVISED)]
        frame = frame.merge(aulc_cost(block, ARM), on=ARM, how="left")  # benchmark.reports.cost
        blocks.append(_rank_block(frame, seeds))
    if not blocks:
        return pd.DataFrame({c: pd.Series(dtype=object) for c in LEADERBOARD_COLUMNS})
    out = pd.concat(blocks, ignore_index=True)[LEADERBOARD_COLUMNS]
    out = out.sort_values(TASK + ["rank"] + ARM, kind="stable").reset_index(drop=True)
    return out.astype({"n_seeds": "int64", "rank": "int64", "n_cycles": "int64", "ranked_cycles": "int64",
                       "tied_with_best": "boolean"})
