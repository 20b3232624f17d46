"""The output schema: one ``CycleRecord`` per (dataset, model, strategy, seed, cycle) is one row of
``cycles.csv``; its fields are the columns, in order. The constants here are the one place that
names the key columns, the timing columns and the supervised reference's strategy value.

Files live elsewhere: ``benchmark.records.run_folder`` (one run's files), ``benchmark.reports.tables`` (the union
tables of an output folder).
"""
from __future__ import annotations

from dataclasses import dataclass, fields

import pandas as pd

from benchmark.errors import UsageError

# the label store's values (selections.csv): a class id, IGNORE_INDEX (the answer is void: the click
# cost budget but gives no training signal) or PENDING (asked, not answered yet)
IGNORE_INDEX = 255
PENDING = -1
SELECTION_COLUMNS = ["cycle", "image_id", "y", "x", "label"]

TASK = ["dataset", "model"]  # one comparison: the arms of a task are ranked against each other
ARM = ["strategy", "selection", "unit"]  # what the leaderboard ranks: a strategy with a selector and a query unit
ARM_KEY = TASK + ARM  # one leaderboard row (the text key columns)
KEY_COLUMNS = ARM_KEY + ["seed", "cycle"]
RUN_KEY = KEY_COLUMNS[:-1]  # one run: (dataset, model, strategy, selection, unit, seed)
SUPERVISED = "supervised"  # the strategy value of the fully supervised reference's rows
DEFAULT_SELECTION = "topn"  # tables written before the selection column existed used it
DEFAULT_UNIT = "pixel"  # ... and before the unit column existed (a pixel click per query)
KEY_DEFAULTS = {"selection": DEFAULT_SELECTION, "unit": DEFAULT_UNIT}  # key columns older tables lack
APPENDED_KEYS = ["unit"]  # key columns added after the files' layout was fixed: written last
TIMING_COLUMNS = ["train_seconds", "inference_seconds", "acquisition_seconds", "evaluation_seconds",
                  "scoring_seconds", "selection_seconds", "record_seconds"]


@dataclass(frozen=True)
class CycleRecord:
    """One row of cycles.csv: the state of one run after training at one cycle."""

    dataset: str
    model: str
    strategy: str
    selection: str
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
    # appended by later versions (documented in docs/outputs.md)
    clicks_in_loss: float       # share of the clicks in the training samples that reached the loss
    void_clicks: int            # labelled clicks whose answer is void (255): paid for, no signal
    query_class_entropy: float  # of the clicks added at this cycle (0: the random ones): class entropy
    query_rare_share: float     # ... share on the dataset's rarest classes
    query_spread: float         # ... mean distance to the nearest other click, / image diagonal
    evaluation_seconds: float
    scoring_seconds: float
    selection_seconds: float
    record_seconds: float
    balent_positive_share: float    # of the unlabelled pool pixels: BalEnt > 0 (its 1/BalEnt branch)
    balent_negative_share: float    # ... BalEnt < 0, saturated pixels (BalEnt = -inf) included
    balent_degenerate_share: float  # ... no class with a valid Beta fit
    balent_saturated_share: float   # ... the dominant class past the variance clamp (ranked last)
    top_class_std_median: float     # median MC standard deviation of each pixel's top class
    unit: str = DEFAULT_UNIT        # what one query asks for: a pixel click or a superpixel (a key column)
    cost: float = float("nan")      # cost units of the queries that entered at this cycle (0: the random clicks)
    cumulative_cost: float = float("nan")  # cost units of every query this cycle trained on
    queries: int = 0                # queries answered so far (pixel clicks + regions; = labeled_pixels for pixels)
    region_purity: float = float("nan")  # of the pixels the regions added at this cycle labelled: share correct


def written_order(columns: list[str]) -> list[str]:
    """``columns`` in the order a file holds them: the key columns added later (``APPENDED_KEYS``)
    after the others, so that the columns a table had keep their places."""
    return [c for c in columns if c not in APPENDED_KEYS] + [c for c in columns if c in APPENDED_KEYS]


CYCLE_COLUMNS = [f.name for f in fields(CycleRecord)]
REGIME_COLUMNS = CYCLE_COLUMNS[CYCLE_COLUMNS.index("balent_positive_share"):CYCLE_COLUMNS.index("unit")]
CLASS_IOU_COLUMNS = written_order(KEY_COLUMNS + ["class", "iou"])


def arm_label(strategy: str, selection: str, unit: str = DEFAULT_UNIT) -> str:
    """How an arm is named in tables and figures: the strategy, ``+ selector`` unless topn,
    ``@ unit`` unless pixel."""
    label = strategy if selection in (DEFAULT_SELECTION, "", None) else f"{strategy} + {selection}"
    return label if unit in (DEFAULT_UNIT, "", None) or pd.isna(unit) else f"{label} @ {unit}"


def with_schema(frame: pd.DataFrame, columns: list[str]) -> pd.DataFrame:
    """``frame`` with exactly ``columns``: a table written before a column existed gets it (the
    key's default, ``KEY_DEFAULTS``: the only rule or unit there was then; NaN for the rest)."""
    missing = {c: KEY_DEFAULTS.get(c, float("nan")) for c in columns if c not in frame}
    return frame.assign(**missing)[columns] if missing else frame[columns]


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
