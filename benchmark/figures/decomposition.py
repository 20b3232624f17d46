"""The uncertainty decomposition across cycles: epistemic, aleatoric and posterior uncertainty of
the unlabelled pool (each relative to its cycle-0 value) next to mIoU."""
from __future__ import annotations

from pathlib import Path

import pandas as pd

from benchmark.figures.cycle_panels import Panel, cycle_panels, relative_to_first  # noqa: F401

UNCERTAINTY_PANELS = [
    Panel("epistemic", "epistemic (BALD)", relative=True),
    Panel("aleatoric", "aleatoric (expected entropy)", relative=True),
    Panel("posterior", "posterior (MJEnt = S + H)", relative=True),
    Panel("miou", "mIoU (%)"),
]
REGIME_PANELS = [
    Panel("balent_positive_share", "share with BalEnt > 0 (1/BalEnt branch)"),
    Panel("balent_negative_share", "share with BalEnt < 0 (saturated incl.)"),
    Panel("balent_degenerate_share", "share with no valid Beta fit"),
    Panel("top_class_std_median", "median MC std of the top class"),
]


def uncertainty_decomposition(block: pd.DataFrame, board: pd.DataFrame, path: Path) -> Path:
    """Epistemic, aleatoric, posterior (relative to the first cycle) and mIoU against the cycle."""
    dataset, model = block["dataset"].iloc[0], block["model"].iloc[0]
    grid = [UNCERTAINTY_PANELS]
    if all(p.column in block and block[p.column].notna().any() for p in REGIME_PANELS):
        grid.append(REGIME_PANELS)  # BalEnt's regime over the pool: which branch the paper's method runs in
    return cycle_panels(block, board, grid, path,
                        f"{dataset} / {model}: uncertainty over the unlabelled pool across cycles, next to mIoU "
                        "(mean over seeds)\ntop: each uncertainty as 1 + change / |its cycle-0 value| (below 1 = "
                        "less uncertain than at the start); bottom: which branch of BalEnt's acquisition the pool's "
                        "pixels fall in, and how wide the MC histograms are")
