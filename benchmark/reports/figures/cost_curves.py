"""Learning curves against annotation cost: mIoU against cumulative cost, one line per arm (pixel
and superpixel arms side by side at equal cost), the leaderboard's ``aulc_cost`` in the legend."""
from __future__ import annotations

from pathlib import Path

import pandas as pd
from matplotlib.ticker import FixedLocator, FuncFormatter, NullLocator

from benchmark.records.schema import SUPERVISED
from benchmark.reports.figures.common import plt, save, style, supervised_line
from benchmark.reports.statistics import t_interval


def cost_stats(block: pd.DataFrame) -> pd.DataFrame:
    """Per (arm, cycle): mean cumulative cost, mean and t half width of mIoU over seeds."""
    rows = []
    for (arm, cycle), grp in block.dropna(subset=["cumulative_cost"]).groupby(["strategy", "cycle"], sort=True):
        mean, half = t_interval(grp["miou"])
        rows.append(dict(strategy=arm, cycle=cycle, cost=grp["cumulative_cost"].mean(), mean=mean, half=half,
                         n=int(grp["miou"].notna().sum())))
    return pd.DataFrame(rows, columns=["strategy", "cycle", "cost", "mean", "half", "n"])


def cost_curves(block: pd.DataFrame, board: pd.DataFrame, path: Path) -> Path:
    """One figure for one (dataset, model) block of cycles.csv (arm labels in ``strategy``)."""
    dataset, model = block["dataset"].iloc[0], block["model"].iloc[0]
    stats = cost_stats(block[block["strategy"] != SUPERVISED])
    fig, ax = plt.subplots(figsize=(10.5, 5.5), layout="constrained")
    names = list(board.sort_values("aulc_cost_mean", ascending=False, kind="stable")["strategy"])
    ranked = board.set_index("strategy")
    for name in names:
        curve = stats[stats["strategy"] == name].sort_values("cost")
        colour, marker, line = style(name, names)
        row = ranked.loc[name]
        ci = f" ± {row['aulc_cost_ci95']:.1f}" if pd.notna(row["aulc_cost_ci95"]) else " (1 seed)"
        ax.plot(curve["cost"], curve["mean"], color=colour, marker=marker, markersize=5, lw=1.8, ls=line,
                label=f"{name}: {row['aulc_cost_mean']:.1f}{ci}")
        band = curve[curve["n"] >= 2]
        if len(band):
            ax.fill_between(band["cost"], band["mean"] - band["half"], band["mean"] + band["half"],
                            color=colour, alpha=0.15, lw=0)
    supervised_line(ax, block)
    if len(board):
        start, end = board["cost_span_start"].iloc[0], board["cost_span_end"].iloc[0]
        if pd.notna(start) and pd.notna(end) and end > start:
            ax.axvspan(start, end, color="0.5", alpha=0.06, lw=0)
    ax.set_xscale("log")
    positions = sorted({float(f"{c:.4g}") for c in stats["cost"] if c > 0})
    if 1 < len(positions) <= 12:  # a tick at each cycle's cost (shared by the units at equal cost)
        ax.xaxis.set_major_locator(FixedLocator(positions))
        ax.xaxis.set_minor_locator(NullLocator())
    ax.xaxis.set_major_formatter(FuncFormatter(lambda v, pos: f"{v:,.0f}"))
    ax.set_xlabel("cumulative annotation cost, cost units over the pool (log scale; shaded: the span of AULC by cost)")
    ax.set_ylabel("mIoU (%)")
    ax.grid(True, which="major", alpha=0.3)
    ax.set_title(f"{dataset} / {model}: learning curves against annotation cost\nline = mean over seeds, "
                 "band = 95% t-interval (none for one seed)", fontsize=11)
    fig.legend(fontsize=9, loc="outside right upper", title="arm: AULC by cost\n(mean ± 95% CI)",
               title_fontsize=8.5, alignment="left")
    return save(fig, path)
