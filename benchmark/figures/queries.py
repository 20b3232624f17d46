"""What the clicks look like across cycles: class diversity, rare-class share and spatial spread of
each cycle's clicks, next to mIoU."""
from __future__ import annotations

from pathlib import Path

import pandas as pd

from benchmark.figures.cycle_panels import Panel, cycle_panels

QUERY_PANELS = [
    Panel("query_class_entropy", "class entropy of the clicks (nats)"),
    Panel("query_rare_share", "share of clicks on the rarest classes"),
    Panel("query_spread", "spread: nearest other click / diagonal"),
    Panel("miou", "mIoU (%)"),
]
QUERY_COLUMNS = [p.column for p in QUERY_PANELS[:-1]]


def query_diagnostics(block: pd.DataFrame, board: pd.DataFrame, path: Path) -> Path:
    """The three query diagnostics of each cycle's clicks and mIoU against the cycle."""
    dataset, model = block["dataset"].iloc[0], block["model"].iloc[0]
    return cycle_panels(block, board, [QUERY_PANELS], path,
                        f"{dataset} / {model}: the clicks added at each cycle (cycle 0: the random initial ones; "
                        "mean over seeds), next to mIoU\nhigher entropy = more classes asked about; higher "
                        "spread = clicks further apart in their image (random clicks set the scale)")
