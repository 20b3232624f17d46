"""The uncertainty decomposition across cycles: epistemic, aleatoric and posterior uncertainty of
the unlabelled pool (each relative to its cycle-0 value) next to mIoU."""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.ticker import MultipleLocator

from benchmark.figures.common import plt, save, style, supervised_line

UNCERTAINTY_PANELS = [  # (cycles.csv column, panel title)
    ("epistemic", "epistemic (BALD)"),
    ("aleatoric", "aleatoric (expected entropy)"),
    ("posterior", "posterior (MJEnt = S + H)"),
]


def relative_to_first(values) -> np.ndarray:
    """``1 + (v - v0) / |v0|`` with v0 the first finite value: 1 at the first cycle, 0.5 = fell by
    half of |v0|, up = grew. For a positive v0 it is simply ``v / v0``; unlike ``v / v0`` it keeps
    "up means more" when v0 is negative (MJEnt can be). NaN where v0 is missing or 0."""
    v = np.asarray(values, dtype=float)
    first = v[np.isfinite(v)][:1]
    if not first.size or first[0] == 0:
        return np.full(v.shape, np.nan)
    return 1.0 + (v - first[0]) / abs(first[0])


def _relative_means(rows: pd.DataFrame, column: str) -> pd.Series:
    """Per cycle: the mean over seeds of each seed's ``relative_to_first`` series."""
    parts = [pd.Series(relative_to_first(run[column]), index=run["cycle"].to_numpy())
             for _, run in rows.sort_values("cycle").groupby("seed")]
    return pd.concat(parts, axis=1).mean(axis=1).sort_index() if parts else pd.Series(dtype=float)


def uncertainty_decomposition(block: pd.DataFrame, board: pd.DataFrame, path: Path) -> Path:
    """One row of panels: epistemic, aleatoric, posterior (relative to the first cycle) and mIoU,
    against the cycle; one line per ranked strategy, in its learning-curve colour."""
    dataset, model = block["dataset"].iloc[0], block["model"].iloc[0]
    names = list(board["strategy"])
    fig, axes = plt.subplots(1, len(UNCERTAINTY_PANELS) + 1, figsize=(15.5, 4.6), sharex=True,
                             layout="constrained")
    for ax in axes[1:-1]:  # one scale for the three uncertainties, so their changes compare
        ax.sharey(axes[0])
    for name in names:
        rows = block[block["strategy"] == name]
        colour, marker = style(name, names)
        line = dict(color=colour, marker=marker, ms=4.5, lw=1.6)
        for ax, (column, _) in zip(axes, UNCERTAINTY_PANELS):
            series = _relative_means(rows, column)
            ax.plot(series.index, series.to_numpy(), **line)
        miou = rows.groupby("cycle")["miou"].mean().sort_index()
        axes[-1].plot(miou.index, miou.to_numpy(), label=name, **line)
    for ax, (_, title) in zip(axes, UNCERTAINTY_PANELS):
        ax.set_title(title, fontsize=10.5)
        ax.axhline(1.0, color="0.45", lw=0.9, ls=":")
    axes[0].set_ylabel("relative to cycle 0 (1 = cycle-0 value)", fontsize=9)
    axes[-1].set_title("mIoU (%)", fontsize=10.5)
    axes[-1].set_ylabel("mIoU (%)", fontsize=9)
    supervised_line(axes[-1], block, with_label=False)
    lo, hi = int(block["cycle"].min()), int(block["cycle"].max())
    for ax in axes:
        ax.set_xlabel("cycle")
        ax.xaxis.set_major_locator(MultipleLocator(max(1, math.ceil((hi - lo) / 8))))
        ax.set_xlim(lo - 0.25 - 0.02 * (hi - lo), hi + 0.25 + 0.02 * (hi - lo))
        ax.grid(True, alpha=0.3)
    handles, labels = axes[-1].get_legend_handles_labels()
    ranks = dict(zip(board["strategy"], board["rank"]))
    fig.legend(handles, [f"{ranks[n]}. {n}" for n in labels], loc="outside right center", fontsize=9,
               title="rank. strategy", title_fontsize=9)
    fig.suptitle(f"{dataset} / {model}: uncertainty over the unlabelled pool across cycles, next to mIoU "
                 "(mean over seeds)\neach uncertainty as 1 + change / |its cycle-0 value| (= value / cycle-0 "
                 "value when positive); below 1 = less uncertain than at the start", fontsize=10.5)
    return save(fig, path)
