"""The pairwise heatmap: for each pair of arms of one (dataset, model), the share of the compared
cycles at which the row's mIoU is significantly above the column's (``benchmark.reports.pairwise``)."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from benchmark.records.schema import arm_label
from benchmark.reports.figures.common import plt, save
from benchmark.reports.leaderboard import ALPHA
from benchmark.reports.pairwise import ARM_A, ARM_B


def win_matrix(pairs: pd.DataFrame, order: list[str]) -> np.ndarray:
    """``[rows, columns]`` wins of arm labels ``order`` (rows: A, columns: B) from one task's rows of
    ``pairwise()``; NaN on the diagonal and where no cycle was compared. A's losses to B are B's
    wins over A: the mirror cell."""
    index = {name: k for k, name in enumerate(order)}
    wins = np.full((len(order), len(order)), np.nan)
    for row in pairs.itertuples(index=False):
        a = index.get(arm_label(*(getattr(row, c) for c in ARM_A)))
        b = index.get(arm_label(*(getattr(row, c) for c in ARM_B)))
        if a is not None and b is not None:
            wins[a, b] = row.wins
    return wins


def pairwise_heatmap(pairs: pd.DataFrame, order: list[str], path: Path) -> Path:
    """One figure for one (dataset, model): rows and columns are the arms in leaderboard order."""
    dataset, model = pairs["dataset"].iloc[0], pairs["model"].iloc[0]
    wins = win_matrix(pairs, order)
    side = 1.2 + 0.75 * len(order)
    fig, ax = plt.subplots(figsize=(side + 2.6, side + 0.8), layout="constrained")
    image = ax.imshow(np.ma.masked_invalid(wins), cmap="Greens", vmin=0, vmax=1)
    ax.set_facecolor("0.9")  # the diagonal and pairs without a compared cycle
    for a in range(len(order)):
        for b in range(len(order)):
            if np.isfinite(wins[a, b]):
                ax.text(b, a, f"{wins[a, b]:.2f}", ha="center", va="center", fontsize=9,
                        color="white" if wins[a, b] > 0.6 else "black")
    ax.set_xticks(range(len(order)), order, rotation=40, ha="right", fontsize=9)
    ax.set_yticks(range(len(order)), order, fontsize=9)
    ax.set_xlabel("arm B")
    ax.set_ylabel("arm A (leaderboard order)")
    counts = sorted({int(n) for n in pairs["cycles_compared"] if n > 0})
    cycles = ", ".join(map(str, counts)) if counts else "no"
    ax.set_title(f"{dataset} / {model}: how often A is significantly better than B\nshare of the {cycles} compared "
                 f"cycles after cycle 0 (paired t-test over seeds, p < {ALPHA});\nA's losses to B: the mirror cell",
                 fontsize=10)
    fig.colorbar(image, ax=ax, shrink=0.8, label="wins: share of the cycles A > B")
    return save(fig, path)
