"""PNG figures from the results folder: learning curves, uncertainty maps, uncertainty decomposition.

``make_figures(results_dir, cycle=None)`` writes, under ``results_dir/figures/``:

- ``learning_curves_{dataset}_{model}.png``: mIoU against the labelled-pixel fraction (log x; the
  top axis gives the pixel count), one line per strategy (mean over seeds) with its 95% t-interval
  as a band (none for one seed), the supervised reference as a dashed horizontal line; the legend,
  outside the plot, lists the strategies in leaderboard order with their AULC (≈: statistically
  indistinguishable from rank 1).
- ``uncertainty_maps_{dataset}_{model}_cycle{k}.png``: from one run's saved ``maps/*.npz`` (the
  balent run if there is one, then balent_ref, then by strategy name; lowest seed; the cycle is
  ``cycle`` or the last one with maps): per validation image, the image, ground truth, prediction
  and the score map of every strategy saved with the maps (rank-normalised: 1 = acquired first),
  each with the pixels it would pick ringed.
- ``uncertainty_decomposition_{dataset}_{model}.png``: epistemic, aleatoric and posterior
  uncertainty over the unlabelled pool, each relative to its cycle-0 value
  (``relative_to_first``), and mIoU against the cycle; one line per strategy (mean over seeds),
  same colours as the learning curves.
- ``cost_curves_{dataset}_{model}.png``: mIoU against cumulative annotation cost (log x), one line
  per arm (pixel and superpixel arms at equal cost), the legend with AULC by cost (tables with a
  cost column only).
- ``query_diagnostics_{dataset}_{model}.png``: the class entropy, rare-class share and spread of
  the clicks each cycle selected, and mIoU, against the cycle (tables with those columns only).
- ``pairwise_{dataset}_{model}.png``: ``pairwise.csv`` as a heatmap (two ranked arms or more): the
  share of the compared cycles at which the row arm's mIoU is significantly above the column's.
"""
from __future__ import annotations

from pathlib import Path

import pandas as pd

from benchmark.records.schema import TASK
from benchmark.reports.figures.common import read_cycles, slug, with_arm_labels
from benchmark.reports.figures.cost_curves import cost_curves
from benchmark.reports.figures.curves import learning_curves
from benchmark.reports.figures.cycle_panels import (
    QUERY_COLUMNS,
    UNCERTAINTY_PANELS,
    query_diagnostics,
    relative_to_first,  # noqa: F401  (public)
    uncertainty_decomposition,
)
from benchmark.reports.figures.pairwise import pairwise_heatmap
from benchmark.reports.figures.score_maps import choose_maps, uncertainty_maps
from benchmark.reports.leaderboard import leaderboard
from benchmark.reports.pairwise import pairwise

UNCERTAINTY_COLUMNS = tuple(p.column for p in UNCERTAINTY_PANELS if p.relative)


def make_figures(results_dir, cycle: int | None = None) -> list[Path]:
    """Write every figure under ``results_dir/figures`` and return their paths.

    ``cycle`` picks the cycle of the uncertainty maps (default: the last cycle with maps, per
    (dataset, model)); a ``cycle`` no run has maps for is a UsageError listing those that exist.
    Without any saved maps and no ``cycle``, the maps figure is skipped.
    """
    results_dir = Path(results_dir)
    cycles = read_cycles(results_dir)
    maps = choose_maps(results_dir, cycle)  # a bad --cycle fails before anything is written
    board = with_arm_labels(leaderboard(cycles))
    pairs = pairwise(cycles)
    cycles = with_arm_labels(cycles)
    out, paths = results_dir / "figures", []
    for (dataset, model), block in cycles.groupby(TASK, sort=True):
        dm_board = board[(board["dataset"] == dataset) & (board["model"] == model)]
        name = f"{slug(dataset)}_{slug(model)}"
        paths.append(learning_curves(block, dm_board, out / f"learning_curves_{name}.png"))
        if len(dm_board) and dm_board.get("aulc_cost_mean", pd.Series(dtype=float)).notna().any():
            paths.append(cost_curves(block, dm_board, out / f"cost_curves_{name}.png"))
        if len(dm_board) and set(UNCERTAINTY_COLUMNS) <= set(block.columns):
            paths.append(uncertainty_decomposition(block, dm_board, out / f"uncertainty_decomposition_{name}.png"))
        if len(dm_board) and set(QUERY_COLUMNS) <= set(block.columns) and block[QUERY_COLUMNS].notna().any().any():
            paths.append(query_diagnostics(block, dm_board, out / f"query_diagnostics_{name}.png"))
        dm_pairs = pairs[(pairs["dataset"] == dataset) & (pairs["model"] == model)]
        if len(dm_board) >= 2 and len(dm_pairs):
            paths.append(pairwise_heatmap(dm_pairs, list(dm_board["strategy"]), out / f"pairwise_{name}.png"))
    for dataset, model, k, rows in maps:
        paths.append(uncertainty_maps(dataset, model, k, rows,
                                      out / f"uncertainty_maps_{slug(dataset)}_{slug(model)}_cycle{k}.png"))
    return paths
