"""Figures of per-cycle quantities: a grid of panels against the cycle, one line per ranked arm
(mean over seeds), in its learning-curve colour; the uncertainty decomposition and the query
diagnostics are such grids."""
from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.ticker import MultipleLocator

from benchmark.reports.figures.common import plt, save, style, supervised_line


@dataclass(frozen=True)
class Panel:
    column: str           # a cycles.csv column ("miou" adds the supervised reference)
    title: str
    relative: bool = False  # each seed as 1 + (v - v0) / |v0| before the mean (see relative_to_first)


def relative_to_first(values) -> np.ndarray:
    """``1 + (v - v0) / |v0|`` with v0 the first finite value: 1 at the first cycle, 0.5 = fell by
    half of |v0|, up = grew. For a positive v0 it is simply ``v / v0``; unlike ``v / v0`` it keeps
    "up means more" when v0 is negative (MJEnt can be). NaN where v0 is missing or 0."""
    v = np.asarray(values, dtype=float)
    first = v[np.isfinite(v)][:1]
    if not first.size or first[0] == 0:
        return np.full(v.shape, np.nan)
    return 1.0 + (v - first[0]) / abs(first[0])


def seed_means(rows: pd.DataFrame, panel: Panel) -> pd.Series:
    """Per cycle: the mean over seeds of the panel's column (each seed made relative first if asked)."""
    if panel.column not in rows:
        return pd.Series(dtype=float)
    if not panel.relative:
        return rows.groupby("cycle")[panel.column].mean().sort_index()
    parts = [pd.Series(relative_to_first(run[panel.column]), index=run["cycle"].to_numpy())
             for _, run in rows.sort_values("cycle").groupby("seed")]
    return pd.concat(parts, axis=1).mean(axis=1).sort_index() if parts else pd.Series(dtype=float)


def cycle_panels(block: pd.DataFrame, board: pd.DataFrame, grid: list[list[Panel]], path: Path,
                 suptitle: str) -> Path:
    """One figure: ``grid`` (rows of panels) against the cycle for the ranked arms of ``board``."""
    names = list(board["strategy"])
    width = max(len(row) for row in grid)
    fig, axes = plt.subplots(len(grid), width, figsize=(3.9 * width, 4.1 * len(grid)), sharex=True,
                             squeeze=False, layout="constrained")
    for name in names:
        rows = block[block["strategy"] == name]
        colour, marker, dash = style(name, names)
        for r, panels in enumerate(grid):
            for ax, panel in zip(axes[r], panels):
                series = seed_means(rows, panel)
                ax.plot(series.index, series.to_numpy(), color=colour, marker=marker, ms=4.5, lw=1.6, ls=dash,
                        label=name if (r, panel.column) == (0, grid[0][-1].column) else None)
    lo, hi = int(block["cycle"].min()), int(block["cycle"].max())
    for r, panels in enumerate(grid):
        for c, ax in enumerate(axes[r]):
            if c >= len(panels):
                ax.set_visible(False)
                continue
            panel = panels[c]
            ax.set_title(panel.title, fontsize=10)
            if panel.relative:
                ax.axhline(1.0, color="0.45", lw=0.9, ls=":")
            if panel.column == "miou":
                supervised_line(ax, block, with_label=False)
            ax.set_xlabel("cycle")
            ax.xaxis.set_major_locator(MultipleLocator(max(1, math.ceil((hi - lo) / 8))))
            ax.set_xlim(lo - 0.25 - 0.02 * (hi - lo), hi + 0.25 + 0.02 * (hi - lo))
            ax.grid(True, alpha=0.3)
    handles, labels = axes[0][len(grid[0]) - 1].get_legend_handles_labels()
    ranks = dict(zip(board["strategy"], board["rank"]))
    fig.legend(handles, [f"{ranks[n]}. {n}" for n in labels], loc="outside right center", fontsize=9,
               title="rank. strategy", title_fontsize=9)
    fig.suptitle(suptitle, fontsize=10.5)
    return save(fig, path)


# the uncertainty decomposition across cycles: epistemic, aleatoric and posterior uncertainty of the
# unlabelled pool (each relative to its cycle-0 value) next to mIoU
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


# what the clicks look like across cycles: class diversity, rare-class share and spatial spread of
# each cycle's clicks, next to mIoU
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
