"""Hand-off to a human annotator (``--oracle file``): export a cycle's requested pixels, import answers.

``export_queries`` writes ``image_path,x,y,image_id,label`` (label empty, for the annotator to
fill) for the clicks of one cycle; ``import_labels`` reads such a file back and fills in the labels
of ``runs/<run>/selections.csv``. A selection's ``cycle`` is the cycle at whose start the pixel is
first labelled, so the pixels picked at the end of cycle k are exported with ``--cycle k+1``.

Region queries (``--unit superpixel``) go the same way, one row per region:
``image_path,region,x,y,pixels,mask_path,mask_value,image_id,label``, where (x, y) is a pixel of
the region (the one nearest its centre) and ``mask_path`` a PNG of the image's size whose pixels
equal to ``mask_value`` are the region (0 elsewhere). The annotator gives the region's dominant
class; the import labels every pixel the query covers with it (``regions/cycle_KK.npz`` of the run
says which).
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
from benchmark.records.run_folder import RunFolder
from benchmark.records.schema import require_columns

QUERY_COLUMNS = ["image_path", "x", "y", "image_id", "label"]
REGION_QUERY_COLUMNS = ["image_path", "region", "x", "y", "pixels", "mask_path", "mask_value", "image_id", "label"]
ANSWER_COLUMNS = ["image_path", "x", "y", "label"]
MAX_LISTED = 5


class ImportResult(NamedTuple):
    imported: int  # labels written (region queries: regions answered)
    pending: int  # clicks (region queries: regions) of the run still without a label afterwards


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
    ledger = RunFolder(run).read_region_queries()
    if ledger is not None and (ledger["cycle"] == int(cycle)).any():
        return _export_regions(run, int(cycle), ledger[ledger["cycle"] == int(cycle)], images, out_path)
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


def _export_regions(run: Path, cycle: int, ledger: pd.DataFrame, images: pd.DataFrame, out_path) -> Path:
    """The region queries of ``cycle``: the CSV and one mask PNG per image (module docstring)."""
    from PIL import Image

    members = RunFolder(run).read_region_members(cycle)
    if members is None:
        raise UsageError(f"run {run.name} lacks regions/cycle_{cycle:02d}.npz (the pixels of its region queries): "
                         "resume the run with --overwrite to query again")
    path = Path(out_path) if out_path else run / "queries" / f"cycle_{cycle:02d}.csv"
    shapes = _read_table(run / "images.csv", "training pool", ["image_id", "height", "width"]).set_index("image_id")
    rows = ledger.merge(images, on="image_id", how="left").sort_values(["image_id", "region"], kind="stable")
    rows["mask_value"] = rows.groupby("image_id").cumcount() + 1
    rows["mask_path"] = [str(path.parent / f"{path.stem}_masks" / f"image_{i}.png") for i in rows["image_id"]]
    for image_id, group in rows.groupby("image_id"):
        mask = np.zeros((int(shapes.at[image_id, "height"]), int(shapes.at[image_id, "width"])), dtype=np.uint16)
        value = dict(zip(group["region"], group["mask_value"]))
        mine = members["image_id"] == image_id
        mask[members["y"][mine], members["x"][mine]] = [value[r] for r in members["region"][mine]]
        target = Path(group["mask_path"].iloc[0])
        target.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(mask).save(target)
    write_csv_atomic(rows.assign(label="")[REGION_QUERY_COLUMNS].reset_index(drop=True), path)
    return path


def _import_regions(run: Path, answers: pd.DataFrame, answers_csv) -> ImportResult:
    """Fill the labels of every pixel of the answered region queries (rows matched by image path
    and region); the same checks as for pixels, nothing written on any bad row."""
    answers["region_int"], bad = _parse_int(answers["region"])
    bad |= answers["region_int"].isna()
    if bad.any():
        raise UsageError(f"nothing imported from {answers_csv}, " + _bad_rows(bad.to_numpy(), answers, "region is not an integer"))
    filled = answers[answers["label_int"].notna()]
    if filled.empty:
        raise UsageError(f"{answers_csv} has no filled label: write each region's dominant class id (or 255) in the "
                         "label column, then import again")
    dup = filled.duplicated(["key_path", "region_int"], keep=False)
    if dup.any():
        raise UsageError(f"nothing imported from {answers_csv}, " + _bad_rows(
            dup.reindex(answers.index, fill_value=False).to_numpy(), answers,
            "the same region is answered more than once; keep one row each"))
    folder = RunFolder(run)
    ledger = folder.read_region_queries().merge(_image_paths(run), on="image_id", how="left")
    ledger["key_path"] = ledger["image_path"].fillna("").map(os.path.normpath)
    index = {k: i for i, k in enumerate(zip(ledger["key_path"], ledger["region"], ledger["cycle"]))}
    latest = ledger.groupby(["key_path", "region"])["cycle"].max().to_dict()  # a region is queried once
    rows = [index.get((p, int(r), latest.get((p, int(r)), -1))) for p, r in zip(filled["key_path"], filled["region_int"])]
    unmatched = pd.Series([r is None for r in rows], index=filled.index)
    if unmatched.any():
        raise UsageError(f"nothing imported from {answers_csv}, " + _bad_rows(
            unmatched.reindex(answers.index, fill_value=False).to_numpy(), answers,
            f"no region query of run {run.name} at these image paths and regions (export the queries again and "
            "answer that file)"))
    queried = ledger.iloc[np.asarray(rows, dtype=np.int64)]
    trained = _last_trained_cycle(run)
    used = pd.Series(queried["cycle"].to_numpy() <= trained, index=filled.index)
    if used.any():
        raise UsageError(f"nothing imported from {answers_csv}, " + _bad_rows(
            used.reindex(answers.index, fill_value=False).to_numpy(), answers,
            f"these regions were already trained on (cycles up to {trained} are done), their labels cannot "
            "change; answer only the exported pending queries"))
    selections = _selections(run)
    position = {k: i for i, k in enumerate(zip(selections["image_id"], selections["y"], selections["x"]))}
    updated = selections.copy()
    for cycle, group in pd.DataFrame({"cycle": queried["cycle"].to_numpy(), "image_id": queried["image_id"].to_numpy(),
                                      "region": queried["region"].to_numpy(),
                                      "label": filled["label_int"].to_numpy(dtype=np.int64)}).groupby("cycle"):
        members = folder.read_region_members(int(cycle))
        if members is None:
            raise UsageError(f"run {run.name} lacks regions/cycle_{int(cycle):02d}.npz: resume it with --overwrite")
        answer = {(i, r): lab for i, r, lab in zip(group["image_id"], group["region"], group["label"])}
        for i, r, y, x in zip(members["image_id"], members["region"], members["y"], members["x"]):
            if (int(i), int(r)) in answer:
                updated.at[position[(int(i), int(y), int(x))], "label"] = answer[(int(i), int(r))]
    write_csv_atomic(updated[SELECTION_COLUMNS], run / "selections.csv")
    labels = ledger.merge(updated, on=["cycle", "image_id", "y", "x"], how="left")["label"]
    return ImportResult(imported=len(filled), pending=int((labels == PENDING).sum()))


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
    if "region" in answers.columns:  # region queries (--unit superpixel)
        return _import_regions(run, answers, answers_csv)
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
