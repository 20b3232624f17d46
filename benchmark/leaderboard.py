"""The leaderboard: area under the learning curve (AULC) and final mIoU per strategy, over seeds.

Pure pandas/scipy. One row per (dataset, model, strategy); the ``supervised`` reference (all pixels
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
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import stats

from benchmark.errors import UsageError
from benchmark.fileio import write_csv_atomic, write_text_atomic

SUPERVISED = "supervised"
KEYS = ["dataset", "model", "strategy", "seed", "cycle"]
REQUIRED_COLUMNS = KEYS + ["labeled_fraction", "miou"]
GROUP = ["dataset", "model", "strategy"]
RUN_KEY = GROUP + ["seed"]
TEXT_COLUMNS = GROUP
INTEGER_COLUMNS = ["seed", "cycle"]
REQUIRED_KIND = {"seed": "an integer", "cycle": "an integer", "labeled_fraction": "a number in (0, 1]"}
MISSING_TEXT = {"", "nan"}
MAX_LISTED = 5
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
    missing = [c for c in REQUIRED_COLUMNS if c not in cycles.columns]
    if missing:
        raise UsageError(f"cycles table lacks column(s) {', '.join(missing)}: pass a cycles.csv written by "
                         f"`python -m benchmark run` (columns {', '.join(REQUIRED_COLUMNS)} are needed)")
    frame = cycles.drop_duplicates(KEYS, keep="last")
    return frame.sort_values(KEYS, kind="stable").reset_index(drop=True)


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


def format_csv(frame: pd.DataFrame) -> str:
    """The leaderboard as CSV text with fixed float formatting (identical input, identical bytes)."""
    return frame.to_csv(index=False, lineterminator="\n", float_format="%.6f")


def _garbled(frame: pd.DataFrame, mask: pd.Series, column: str, why: str) -> str:
    lines = [f"line {i + 2} ({frame.at[i, column]!r})" for i in frame.index[mask.to_numpy()][:MAX_LISTED]]
    more = f" and {int(mask.sum()) - MAX_LISTED} more" if mask.sum() > MAX_LISTED else ""
    return f"column {column} {why}: {', '.join(lines)}{more}"


def _typed(frame: pd.DataFrame, path: Path) -> pd.DataFrame:
    """Text cells to numbers; UsageError naming the lines whose needed cells are garbled."""
    problems, out = [], frame.copy()
    for column in frame.columns:
        text = frame[column].str.strip()
        if column in TEXT_COLUMNS:
            bad = text.eq("")
            if bad.any():
                problems.append(_garbled(frame, bad, column, "is empty"))
            out[column] = text
            continue
        number = pd.to_numeric(text.where(~text.str.lower().isin(MISSING_TEXT)), errors="coerce")
        bad = number.isna() & ~text.str.lower().isin(MISSING_TEXT)
        if column not in REQUIRED_COLUMNS:  # an extra or unused column: numbers if it holds only numbers
            out[column] = frame[column] if bad.any() else number
            continue
        if column in INTEGER_COLUMNS:
            bad |= number.isna() | (number % 1 != 0)
        elif column == "labeled_fraction":
            bad |= number.isna() | (number <= 0) | (number > 1)
        if bad.any():
            problems.append(_garbled(frame, bad, column, "is not " + REQUIRED_KIND.get(column, "a number")))
        out[column] = number.astype("int64" if column in INTEGER_COLUMNS and not bad.any() else "float64")
    if problems:
        raise UsageError(f"{path} is garbled, {'; '.join(problems)}: fix or delete those lines (a deleted "
                         "cycles.csv is rebuilt from the run folders under runs/ by `python -m benchmark leaderboard`)")
    return out


def read_cycles_csv(path) -> pd.DataFrame:
    """A cycles.csv, checked: UsageError (one line, saying what to do) if it is missing, not a CSV,
    lacks a needed column or has a garbled cell in one (the lines are named). Header lines repeated
    inside the file (``cat a.csv b.csv``) are dropped; duplicate keys keep the last row."""
    path = Path(path)
    if not path.is_file():
        raise UsageError(f"no cycles.csv in {path.parent}: run `python -m benchmark run` first or pass --results")
    try:
        frame = pd.read_csv(path, dtype=str, keep_default_na=False)
    except (pd.errors.EmptyDataError, pd.errors.ParserError, UnicodeDecodeError) as exc:
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise UsageError(f"cannot read {path} as CSV ({reason}): rerun `python -m benchmark run` "
                         "(or --resume) to rewrite it") from None
    missing = [c for c in REQUIRED_COLUMNS if c not in frame.columns]
    if missing:
        raise UsageError(f"{path} lacks column(s) {', '.join(missing)}: pass a cycles.csv written by "
                         f"`python -m benchmark run` (columns {', '.join(REQUIRED_COLUMNS)} are needed)")
    header = (frame == pd.Series(frame.columns, index=frame.columns)).all(axis=1)
    return clean_cycles(_typed(frame[~header], path))


def _run_keys(frame: pd.DataFrame) -> set:
    return set(frame[RUN_KEY].itertuples(index=False, name=None))


def sync_tables(results_dir) -> None:
    """Bring ``cycles.csv`` and ``class_iou.csv`` up to date with the run folders under ``runs/``.

    A run found under ``runs/`` replaces its rows; rows of runs that have no folder here (tables
    merged from another machine) are kept, so this never loses results. Without such rows the two
    tables are rewritten exactly as ``benchmark run`` writes them.
    """
    from benchmark.records import collect_tables, write_tables

    results_dir = Path(results_dir)
    if not (results_dir / "runs").is_dir():
        return
    path = results_dir / "cycles.csv"
    old = read_cycles_csv(path) if path.is_file() else None
    runs_cycles, runs_iou = collect_tables(results_dir)
    local = _run_keys(runs_cycles)
    if old is None or _run_keys(old) <= local:
        write_tables(results_dir)
        return
    kept = ~pd.Series([k in local for k in old[RUN_KEY].itertuples(index=False, name=None)], index=old.index)
    cycles = pd.concat([old[kept], runs_cycles], ignore_index=True)
    write_csv_atomic(cycles.sort_values(KEYS, kind="stable").reset_index(drop=True), path)
    try:
        old_iou = pd.read_csv(results_dir / "class_iou.csv") if (results_dir / "class_iou.csv").is_file() \
            else runs_iou.iloc[:0]
        old_iou = old_iou[[k not in local for k in old_iou[RUN_KEY].itertuples(index=False, name=None)]]
    except (OSError, KeyError, ValueError, pd.errors.EmptyDataError, pd.errors.ParserError):
        return  # an unreadable class_iou.csv is left as it is: the leaderboard does not need it
    ious = pd.concat([old_iou, runs_iou], ignore_index=True)
    write_csv_atomic(ious.sort_values(KEYS + ["class"], kind="stable").reset_index(drop=True),
                     results_dir / "class_iou.csv")


def rebuild_leaderboard(results_dir) -> pd.DataFrame:
    """Read ``results_dir/cycles.csv``, write ``results_dir/leaderboard.csv``, return the frame."""
    results_dir = Path(results_dir)
    frame = leaderboard(read_cycles_csv(results_dir / "cycles.csv"))
    write_text_atomic(results_dir / "leaderboard.csv", format_csv(frame))
    return frame


def _cell(mean: float, ci: float, n_seeds: int) -> str:
    if pd.isna(mean):
        return "n/a"
    if n_seeds < 2 or pd.isna(ci):
        return f"{mean:.2f}"
    return f"{mean:.2f} ± {ci:.2f}"


def _tied_cell(rank: int, value) -> str:
    if rank == 1:
        return "best"
    if pd.isna(value):
        return "?"
    return TIED_MARKER if value else ""


def print_leaderboard(frame: pd.DataFrame, console=None) -> None:
    """Print one rich table per (dataset, model) of a ``leaderboard()`` frame; the best strategy and
    those indistinguishable from it in bold."""
    from rich.console import Console
    from rich.table import Table

    console = console or Console()
    if frame is None or len(frame) == 0:
        console.print("No ranked strategies in the results (only the supervised reference, or no rows).")
        return
    for (dataset, model), block in frame.groupby(["dataset", "model"], sort=True):
        sup = block["supervised_miou"].iloc[0] if "supervised_miou" in block else math.nan
        ref = f"supervised reference mIoU {sup:.2f}" if pd.notna(sup) else "no supervised reference"
        table = Table(title=f"{dataset} / {model} ({ref})", caption=_caption(block), caption_justify="left")
        for name, justify in [("rank", "right"), ("strategy", "left"), ("seeds", "right"),
                              ("AULC (mIoU %)", "right"), ("final mIoU", "right"), ("% of sup.", "right"),
                              (f"{TIED_MARKER} best", "center")]:
            table.add_column(name, justify=justify)
        for row in block.itertuples(index=False):
            pct = f"{row.pct_of_supervised:.1f}" if pd.notna(row.pct_of_supervised) else "n/a"
            seeds = str(row.n_seeds) if row.n_seeds > 1 else ONE_SEED_NOTE  # instead of a fake interval
            tied = _tied_cell(row.rank, row.tied_with_best)
            table.add_row(str(row.rank), row.strategy, seeds, _cell(row.aulc_mean, row.aulc_ci95, row.n_seeds),
                          _cell(row.final_miou_mean, row.final_miou_ci95, row.n_seeds), pct, tied,
                          style="bold" if tied in ("best", TIED_MARKER) else None)
        console.print(table)


def _caption(block: pd.DataFrame) -> str:
    lines = [f"mIoU in %; mean ± half width of the 95% t-interval over seeds; % of sup. = final mIoU / "
             f"supervised mIoU. {TIED_MARKER} = a paired t-test on per-seed AULC (alpha {ALPHA}) cannot tell "
             "it from the best."]
    if block["tied_with_best"].isna().any():
        lines.append("? = fewer than 2 seeds shared with the best, no test.")
    if (block["n_seeds"] < 2).any():
        lines.append(f"{ONE_SEED_NOTE}: the value of the single seed; run more seeds for an interval.")
    return "\n".join(lines)
