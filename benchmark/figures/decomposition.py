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


def uncertainty_decomposition(block: pd.DataFrame, board: pd.DataFrame, path: Path) -> Path:
    """Epistemic, aleatoric, posterior (relative to the first cycle) and mIoU against the cycle."""
    dataset, model = block["dataset"].iloc[0], block["model"].iloc[0]
    return cycle_panels(block, board, [UNCERTAINTY_PANELS], path,
                        f"{dataset} / {model}: uncertainty over the unlabelled pool across cycles, next to mIoU "
                        "(mean over seeds)\neach uncertainty as 1 + change / |its cycle-0 value| (= value / cycle-0 "
                        "value when positive); below 1 = less uncertain than at the start")
