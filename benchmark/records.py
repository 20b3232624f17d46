"""The output schema: one ``CycleRecord`` per (dataset, model, strategy, seed, cycle) is one row of
``cycles.csv``; its fields are the columns, in order. The constants here are the one place that
names the key columns, the timing columns and the supervised reference's strategy value.

Files live elsewhere: ``benchmark.run_folder`` (one run's files), ``benchmark.tables`` (the union
tables of an output folder).
"""
from __future__ import annotations

from dataclasses import dataclass, fields

import pandas as pd

from benchmark.errors import UsageError

KEY_COLUMNS = ["dataset", "model", "strategy", "seed", "cycle"]
RUN_KEY = KEY_COLUMNS[:-1]  # one run: (dataset, model, strategy, seed)
SUPERVISED = "supervised"  # the strategy value of the fully supervised reference's rows
TIMING_COLUMNS = ["train_seconds", "inference_seconds", "acquisition_seconds"]


@dataclass(frozen=True)
class CycleRecord:
    """One row of cycles.csv: the state of one run after training at one cycle."""

    dataset: str
    model: str
    strategy: str
    seed: int
    cycle: int
    labeled_pixels: int
    labeled_fraction: float
    miou: float
    macc: float
    aacc: float
    epistemic: float
    aleatoric: float
    posterior: float
    train_seconds: float
    inference_seconds: float
    acquisition_seconds: float


CYCLE_COLUMNS = [f.name for f in fields(CycleRecord)]
CLASS_IOU_COLUMNS = KEY_COLUMNS + ["class", "iou"]


def sorted_by(frame: pd.DataFrame, keys: list[str]) -> pd.DataFrame:
    return frame.sort_values(keys, kind="stable").reset_index(drop=True)


def rounded(frame: pd.DataFrame) -> pd.DataFrame:
    """Fixed precision, so tables from identical runs are byte-identical."""
    out = frame.copy()
    for col in out.columns:
        if pd.api.types.is_float_dtype(out[col]):
            out[col] = out[col].round(3 if col in TIMING_COLUMNS else 6)
    return out


def require_columns(frame: pd.DataFrame, columns: list[str], source, fix: str) -> None:
    """UsageError naming the columns of ``columns`` that ``frame`` (read from ``source``) lacks."""
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise UsageError(f"{source} lacks column(s) {', '.join(missing)}: {fix}")
