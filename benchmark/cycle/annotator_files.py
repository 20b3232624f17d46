"""Hand-off to a human annotator (``--oracle file``): export a cycle's requested pixels, import answers.

``export_queries`` writes ``image_path,x,y,image_id,label`` (label empty, for the annotator to
fill) for the clicks of one cycle; ``import_labels`` reads such a file back and fills in the labels
of ``runs/<run>/selections.csv``. A selection's ``cycle`` is the cycle at whose start the pixel is
first labelled, so the pixels picked at the end of cycle k are exported with ``--cycle k+1``.
"""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import NamedTuple

import numpy as np
import pandas as pd

from benchmark.data.label_store import IGNORE_INDEX, PENDING, SELECTION_COLUMNS
from benchmark.errors import UsageError
from benchmark.records.fileio import write_csv_atomic
from benchmark.records.schema import require_columns

QUERY_COLUMNS = ["image_path", "x", "y", "image_id", "label"]
ANSWER_COLUMNS = ["image_path", "x", "y", "label"]
MAX_LISTED = 5


def _listing(items, limit: int = 10) -> str:
    items = [str(i) for i in items]
    more = f", ... ({len(items) - limit} more)" if len(items) > limit else ""
    return ", ".join(items[:limit]) + more if items else "none"


def _run_dir(results_dir: Path, run_id: str) -> Path:
    runs = Path(results_dir) / "runs"
    run = runs / str(run_id)
    if not run_id or not run.is_dir() or run.resolve().parent != runs.resolve():
        have = sorted(p.name for p in runs.glob("*") if p.is_dir()) if runs.is_dir() else []
        fix = (f"pass --run with one of {_listing(have)}" if have else
               "there is no run there (start one with `python -m benchmark run --oracle file`, or pass --results)")
        raise UsageError(f"no run {run_id!r} in {runs}: {fix}")
    return run


def _read_table(path: Path, what: str, columns: list[str]) -> pd.DataFrame:
    if not path.is_file():
        raise UsageError(f"{path} is missing: it holds the run's {what}; rerun or resume the run to write it")
    frame = pd.read_csv(path)
    require_columns(frame, columns, path, "it was not written by this benchmark")
    return frame


def _selections(run: Path) -> pd.DataFrame:
    frame = _read_table(run / "selections.csv", "clicks", SELECTION_COLUMNS)
    return frame[SELECTION_COLUMNS].astype("int64").reset_index(drop=True)


def _image_paths(run: Path) -> pd.DataFrame:
    images = _read_table(run / "images.csv", "training pool", ["image_id", "img_path"])
    images = images.drop_duplicates("image_id", keep="last")[["image_id", "img_path"]]
    return images.rename(columns={"img_path": "image_path"}).astype({"image_id": "int64", "image_path": str})


def export_queries(results_dir, run_id: str, cycle: int, out_path=None) -> Path:
    """Write the clicks that start ``cycle`` of ``run_id`` as ``image_path,x,y,image_id,label``.

    Rows are sorted by image_id, y, x; ``label`` is empty. Default output:
    ``results_dir/runs/<run_id>/queries/cycle_{cycle:02d}.csv``. Returns the path written.
    """
    run = _run_dir(results_dir, run_id)
    selections = _selections(run)
    rows = selections[selections["cycle"] == int(cycle)]
    if rows.empty:
        counts = selections.groupby("cycle").size()
        pending = set(selections.loc[selections["label"] == PENDING, "cycle"])
        have = [f"{k} ({n} pixel{'s' * (n != 1)}{', pending' if k in pending else ''})" for k, n in counts.items()]
        raise UsageError(f"run {run.name} has no selections at cycle {cycle}: pass --cycle with one of "
                         f"{_listing(have)}")
    images = _image_paths(run)
    merged = rows.merge(images, on="image_id", how="left")
    if merged["image_path"].isna().any():
        lost = sorted(merged.loc[merged["image_path"].isna(), "image_id"].unique())
        raise UsageError(f"images.csv of run {run.name} lacks image_id {_listing(lost)}: the run folder is "
                         "inconsistent; rerun it with --overwrite")
    merged = merged.sort_values(["image_id", "y", "x"], kind="stable")
    out = merged.assign(label="")[QUERY_COLUMNS].reset_index(drop=True)
    path = Path(out_path) if out_path else run / "queries" / f"cycle_{int(cycle):02d}.csv"
    write_csv_atomic(out, path)
    return path


def _num_classes(run: Path) -> int:
    path = run / "config.json"
    if not path.is_file():
        raise UsageError(f"{path} is missing: the run's class list is needed to check labels; resume the run "
                         "once to rewrite it")
    classes = json.loads(path.read_text()).get("classes")
    if not classes:
        raise UsageError(f"{path} has no 'classes' list: resume the run once to rewrite its config")
    return len(classes)


def _bad_rows(mask: np.ndarray, answers: pd.DataFrame, why: str) -> str:
    """'why: line 3 (path, x=.., y=..), ...' for the rows in ``mask`` (CSV line numbers)."""
    bad = answers[mask]
    shown = [f"line {i + 2} ({r.image_path}, x={r.x}, y={r.y}, label={r.label!r})"
             for i, r in zip(bad.index[:MAX_LISTED], bad.head(MAX_LISTED).itertuples())]
    more = f" and {len(bad) - MAX_LISTED} more" if len(bad) > MAX_LISTED else ""
    return f"{why}: {'; '.join(shown)}{more}"


def _parse_int(text: pd.Series) -> tuple[pd.Series, pd.Series]:
    """(integers as nullable Int64 with blanks and bad cells NA, mask of non-blank non-integer cells)."""
    stripped = text.str.strip()
    number = pd.to_numeric(stripped, errors="coerce")
    ok = np.isfinite(number) & (number % 1 == 0)
    return number.where(ok).astype("Int64"), stripped.ne("") & ~ok


def _read_answers(answers_csv: Path, num_classes: int) -> pd.DataFrame:
    """The filled rows of an answers file, validated; UsageError for any bad row."""
    answers_csv = Path(answers_csv)
    if not answers_csv.is_file():
        raise UsageError(f"answers file {answers_csv} not found: pass --file with the CSV the annotator filled")
    try:
        answers = pd.read_csv(answers_csv, dtype=str, keep_default_na=False)
    except (pd.errors.EmptyDataError, pd.errors.ParserError) as exc:
        raise UsageError(f"cannot read {answers_csv} as CSV ({exc}): export it again and fill the label column") from None
    require_columns(answers, ANSWER_COLUMNS, answers_csv, "keep the header written by "
                    "`python -m benchmark export-queries` (image_path,x,y,image_id,label)")
    problems = []
    for column in ["x", "y"]:
        answers[f"{column}_int"], bad = _parse_int(answers[column])
        bad |= answers[f"{column}_int"].isna()
        if bad.any():
            problems.append(_bad_rows(bad.to_numpy(), answers, f"{column} is not an integer"))
    labels, bad = _parse_int(answers["label"])
    bad |= labels.notna() & ~(labels.between(0, num_classes - 1) | (labels == IGNORE_INDEX)).fillna(False)
    if bad.any():
        problems.append(_bad_rows(bad.to_numpy(), answers, f"label must be an integer in [0, {num_classes}) or "
                                                         f"{IGNORE_INDEX} (ignore)"))
    if problems:
        raise UsageError(f"nothing imported from {answers_csv}, fix these rows: " + " | ".join(problems))
    answers["label_int"] = labels
    answers["key_path"] = answers["image_path"].map(os.path.normpath)
    return answers


class ImportResult(NamedTuple):
    imported: int  # labels written
    pending: int  # clicks of the run still without a label afterwards


def import_labels(results_dir, run_id: str, answers_csv) -> ImportResult:
    """Fill the labels of ``run_id``'s selections from an annotator's CSV; say how many were set.

    Rows are matched to clicks by image path (normalised with ``os.path.normpath``) and x, y;
    ``image_id`` is optional and ignored. Labels must be integers in [0, num_classes) or 255
    (ignore), num_classes from the run's config.json "classes". Rows with an empty label are
    skipped (those clicks stay pending); a file with no filled label at all is an error. Only
    clicks the run has not trained on yet can be answered (a label already given to such a click is
    overwritten, so a mistake can be corrected before ``run --resume``). Any bad, duplicated,
    unmatched or already-trained row aborts the import and nothing is written; otherwise
    ``selections.csv`` is rewritten atomically.
    """
    run = _run_dir(results_dir, run_id)
    answers = _read_answers(Path(answers_csv), _num_classes(run))
    filled = answers[answers["label_int"].notna()]
    if filled.empty:
        raise UsageError(f"{answers_csv} has no filled label: write each pixel's class id (or 255) in the "
                         "label column, then import again")
    dup = filled.duplicated(["key_path", "x_int", "y_int"], keep=False)
    if dup.any():
        raise UsageError(f"nothing imported from {answers_csv}, "
                         + _bad_rows(dup.reindex(answers.index, fill_value=False).to_numpy(), answers,
                                     "the same pixel is answered more than once; keep one row each"))
    selections = _selections(run)
    keyed = selections.merge(_image_paths(run), on="image_id", how="left")
    keyed["key_path"] = keyed["image_path"].fillna("").map(os.path.normpath)
    index = {k: i for i, k in enumerate(zip(keyed["key_path"], keyed["x"], keyed["y"]))}
    rows = [index.get((p, int(x), int(y))) for p, x, y in zip(filled["key_path"], filled["x_int"], filled["y_int"])]
    unmatched = pd.Series([r is None for r in rows], index=filled.index)
    if unmatched.any():
        raise UsageError(f"nothing imported from {answers_csv}, "
                         + _bad_rows(unmatched.reindex(answers.index, fill_value=False).to_numpy(), answers,
                                     f"no selected pixel of run {run.name} at these image paths and x, y "
                                     "(export the queries again and answer that file)"))
    rows = np.asarray(rows, dtype=np.int64)
    trained = _last_trained_cycle(run)
    used = pd.Series(selections["cycle"].to_numpy()[rows] <= trained, index=filled.index)
    if used.any():
        raise UsageError(f"nothing imported from {answers_csv}, "
                         + _bad_rows(used.reindex(answers.index, fill_value=False).to_numpy(), answers,
                                     f"these pixels were already trained on (cycles up to {trained} are done), "
                                     "their labels cannot change; answer only the exported pending queries"))
    updated = selections.copy()
    updated.loc[rows, "label"] = filled["label_int"].to_numpy(dtype=np.int64)
    write_csv_atomic(updated[SELECTION_COLUMNS], run / "selections.csv")
    return ImportResult(imported=len(rows), pending=int((updated["label"] == PENDING).sum()))


def _last_trained_cycle(run: Path) -> int:
    """The last cycle the run has trained (and recorded) on; -1 before the first."""
    path = run / "cycles.csv"
    if not path.is_file():
        return -1
    cycles = pd.read_csv(path)
    return int(cycles["cycle"].max()) if len(cycles) and "cycle" in cycles else -1
