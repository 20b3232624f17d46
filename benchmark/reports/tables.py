"""The union tables of an output folder, rebuilt from its run folders (the source of truth)::

    cycles.csv, class_iou.csv   every run's rows, sorted by key
    leaderboard.csv             benchmark.reports.leaderboard's ranking of cycles.csv
    pairwise.csv                benchmark.reports.pairwise: which arms differ at which cycles
    aggregate.csv               benchmark.reports.aggregate, across tasks (`leaderboard --aggregate`)

Several processes may write into one output folder at once (the jobs of ``benchmark launch``):
each rebuild reads the run folders and writes the tables under one lock (``locks/tables.lock``),
so a rebuild never overwrites a newer one with rows read before it.
Reading a cycles.csv here is checked: a missing, unreadable or garbled table is a UsageError
naming the lines and the fix, never a traceback.
"""
from __future__ import annotations

from pathlib import Path

import pandas as pd

from benchmark.errors import UsageError
from benchmark.records.fileio import write_csv_atomic, write_text_atomic
from benchmark.records.locks import FileLock, lock_path
from benchmark.records.run_folder import RunFolder
from benchmark.records.schema import (
    ARM_KEY,
    CLASS_IOU_COLUMNS,
    CYCLE_COLUMNS,
    KEY_COLUMNS,
    RUN_KEY,
    require_columns,
    rounded,
    sorted_by,
    with_schema,
)
from benchmark.reports.aggregate import aggregate
from benchmark.reports.leaderboard import REQUIRED_COLUMNS, clean_cycles, leaderboard
from benchmark.reports.pairwise import pairwise

TEXT_COLUMNS = ARM_KEY
INTEGER_COLUMNS = KEY_COLUMNS[len(ARM_KEY):]
REQUIRED_KIND = {"seed": "an integer", "cycle": "an integer", "labeled_fraction": "a number in (0, 1]"}
MISSING_TEXT = {"", "nan"}
MAX_LISTED = 5
CYCLES_FIX = f"pass a cycles.csv written by `python -m benchmark run` (columns {', '.join(REQUIRED_COLUMNS)} are needed)"


def tables_lock(out_dir) -> FileLock:
    """The lock every reader-then-writer of the union tables holds (re-entrant in one process)."""
    return FileLock(lock_path(out_dir, "", "tables"))


# -- union of the run folders -------------------------------------------------------------------
def collect_tables(out_dir: Path) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Union of every run's cycles.csv and class_iou.csv under ``out_dir/runs``."""
    cycles, ious = [], []
    for run_dir in sorted((Path(out_dir) / "runs").glob("*")):
        run = RunFolder(run_dir)
        frame = run.read_cycles()
        if len(frame):
            cycles.append(frame)
            iou = run.read_class_iou()
            ious.append(iou[iou["cycle"].isin(set(frame["cycle"]))])
    cycle_frame = pd.concat(cycles, ignore_index=True) if cycles else pd.DataFrame(columns=CYCLE_COLUMNS)
    iou_frame = pd.concat(ious, ignore_index=True) if ious else pd.DataFrame(columns=CLASS_IOU_COLUMNS)
    return (sorted_by(cycle_frame[CYCLE_COLUMNS], KEY_COLUMNS),
            sorted_by(iou_frame[CLASS_IOU_COLUMNS], KEY_COLUMNS + ["class"]))


def write_tables(out_dir: Path) -> pd.DataFrame:
    """Rewrite ``cycles.csv`` and ``class_iou.csv`` from the run folders; returns cycles."""
    with tables_lock(out_dir):
        cycles, ious = collect_tables(out_dir)
        write_csv_atomic(rounded(cycles), Path(out_dir) / "cycles.csv")
        write_csv_atomic(rounded(ious), Path(out_dir) / "class_iou.csv")
    return cycles


def _run_keys(frame: pd.DataFrame) -> set:
    return set(frame[RUN_KEY].itertuples(index=False, name=None))


def sync_tables(results_dir) -> None:
    """Bring ``cycles.csv`` and ``class_iou.csv`` up to date with the run folders under ``runs/``.

    A run found under ``runs/`` replaces its rows; rows of runs that have no folder here (tables
    merged from another machine) are kept, so this never loses results. Without such rows the two
    tables are rewritten exactly as ``benchmark run`` writes them.
    """
    results_dir = Path(results_dir)
    if not (results_dir / "runs").is_dir():
        return
    if (results_dir / "cycles.csv").is_file():
        read_cycles_csv(results_dir / "cycles.csv")  # a garbled table is refused before anything, the lock included, is written
    with tables_lock(results_dir):
        _sync_tables(results_dir)


def _sync_tables(results_dir: Path) -> None:
    path = results_dir / "cycles.csv"
    old = read_cycles_csv(path) if path.is_file() else None
    runs_cycles, runs_iou = collect_tables(results_dir)
    local = _run_keys(runs_cycles)
    if old is None or _run_keys(old) <= local:
        write_tables(results_dir)
        return
    kept = ~pd.Series([k in local for k in old[RUN_KEY].itertuples(index=False, name=None)], index=old.index)
    write_csv_atomic(sorted_by(pd.concat([old[kept], runs_cycles], ignore_index=True), KEY_COLUMNS), path)
    try:
        old_iou = with_schema(pd.read_csv(results_dir / "class_iou.csv"), CLASS_IOU_COLUMNS) \
            if (results_dir / "class_iou.csv").is_file() else runs_iou.iloc[:0]  # older tables: unit pixel
        old_iou = old_iou[[k not in local for k in old_iou[RUN_KEY].itertuples(index=False, name=None)]]
    except (OSError, KeyError, ValueError, pd.errors.EmptyDataError, pd.errors.ParserError):
        return  # an unreadable class_iou.csv is left as it is: the leaderboard does not need it
    ious = pd.concat([old_iou, runs_iou], ignore_index=True)
    write_csv_atomic(sorted_by(ious, KEY_COLUMNS + ["class"]), results_dir / "class_iou.csv")


# -- reading a cycles.csv, checked ----------------------------------------------------------------
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
    require_columns(frame, REQUIRED_COLUMNS, path, CYCLES_FIX)
    header = (frame == pd.Series(frame.columns, index=frame.columns)).all(axis=1)
    return clean_cycles(_typed(frame[~header], path))


SETTING_KEYS = ("mc_dropout_rate", "mc_dropout_mask", "void_clicks", "mc_samples")


def run_settings(results_dir) -> pd.DataFrame:
    """Per run folder: its key and the settings a result must be stated with (from config.json;
    missing for runs of older versions)."""
    import json

    rows = []
    for config in sorted((Path(results_dir) / "runs").glob("*/config.json")):
        try:
            run = json.loads(config.read_text()).get("run", {})
        except (OSError, ValueError):
            continue
        rows.append({k: run.get(k) for k in (*RUN_KEY, *SETTING_KEYS)})
    return pd.DataFrame(rows, columns=[*RUN_KEY, *SETTING_KEYS])


def write_report(results_dir, name: str, frame: pd.DataFrame) -> Path:
    """Write ``results_dir/name`` (fixed float format: identical input, identical bytes)."""
    path = Path(results_dir) / name
    write_text_atomic(path, frame.to_csv(index=False, lineterminator="\n", float_format="%.6f"))
    return path


def write_leaderboard(results_dir, frame: pd.DataFrame) -> Path:
    """Write ``leaderboard.csv``."""
    return write_report(results_dir, "leaderboard.csv", frame)


def rebuild_leaderboard(results_dir) -> pd.DataFrame:
    """Read ``results_dir/cycles.csv``, write ``results_dir/leaderboard.csv`` and ``pairwise.csv``,
    return the leaderboard."""
    read_cycles_csv(Path(results_dir) / "cycles.csv")  # a missing or garbled table: refused before the lock is made
    with tables_lock(results_dir):
        cycles = read_cycles_csv(Path(results_dir) / "cycles.csv")
        frame = leaderboard(cycles)
        write_leaderboard(results_dir, frame)
        write_report(results_dir, "pairwise.csv", pairwise(cycles))
    return frame


def rebuild_aggregate(results_dir) -> pd.DataFrame:
    """Read ``results_dir/cycles.csv``, write ``results_dir/aggregate.csv``, return the frame."""
    read_cycles_csv(Path(results_dir) / "cycles.csv")
    with tables_lock(results_dir):
        frame = aggregate(read_cycles_csv(Path(results_dir) / "cycles.csv"))
        write_report(results_dir, "aggregate.csv", frame)
    return frame
