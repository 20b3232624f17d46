"""Learning curves: mIoU against the labelled-pixel fraction, one line per strategy."""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.ticker import FixedLocator, FuncFormatter, LogFormatterSciNotation, NullLocator

from benchmark.records.schema import SUPERVISED
from benchmark.reports.figures.common import plt, save, seed_stats, style, supervised_line
from benchmark.reports.leaderboard import TIED_MARKER


class _LogLabels(LogFormatterSciNotation):
    """Matplotlib's choice of which log ticks to label (all minor ones only on short ranges),
    with our own text."""

    def __init__(self, text):
        super().__init__(labelOnlyBase=False)
        self.text = text

    def __call__(self, x, pos=None):
        return self.text(x) if super().__call__(x, pos) else ""


def _log_labels(axis, text) -> None:
    axis.set_major_formatter(_LogLabels(text))
    axis.set_minor_formatter(_LogLabels(text))


def _is_true(value) -> bool:
    return not pd.isna(value) and bool(value)


def _percent(value) -> str:
    """A fraction as a percentage with 2 significant digits, never in scientific notation."""
    return np.format_float_positional(100 * float(value), precision=2, unique=False, fractional=False,
                                      trim="-") + "%"


MAX_CYCLE_TICKS = 12


def _cycle_ticks(values) -> list[float]:
    """The x positions to label when every cycle sits at a shared labelled amount: all of them, thinned
    (from the right, so the last is kept) to at least 1/10 of the log span apart; [] when there are
    too many distinct positions (runs with different budgets) or just one."""
    xs = sorted({float(v) for v in values if np.isfinite(v) and v > 0})
    if not 1 < len(xs) <= MAX_CYCLE_TICKS * 3:
        return []
    gap = (math.log10(xs[-1]) - math.log10(xs[0])) / 10
    kept = [xs[-1]]
    for x in reversed(xs[:-1]):
        if math.log10(kept[-1]) - math.log10(x) >= gap:
            kept.append(x)
    return sorted(kept) if len(kept) <= MAX_CYCLE_TICKS else []


def _set_ticks(axis, positions, text) -> None:
    """Label exactly ``positions`` (no minor ticks), or matplotlib's log ticks when it is empty."""
    if positions:
        axis.set_major_locator(FixedLocator(positions))
        axis.set_minor_locator(NullLocator())
        axis.set_major_formatter(FuncFormatter(lambda v, pos: text(v)))
    else:
        _log_labels(axis, text)


def _pixel_axis(ax, block: pd.DataFrame, ticks: list[float]) -> None:
    """Top axis: labelled pixels (count = fraction x pool pixels); at the cycles when ``ticks``."""
    if "labeled_pixels" not in block:
        return
    ranked = block[(block["strategy"] != SUPERVISED) & (block["labeled_fraction"] > 0)]
    if ranked.empty:
        return
    full = block.loc[(block["strategy"] == SUPERVISED) & (block["labeled_fraction"] == 1.0), "labeled_pixels"]
    if len(full):  # the supervised reference labels the whole pool: its count is exact
        total, text = float(full.iloc[0]), f"{full.iloc[0]:,.0f}"
    else:  # the fractions are rounded in the CSV: estimate from the largest count
        last = ranked.loc[ranked["labeled_pixels"].idxmax()]
        total = float(last["labeled_pixels"] / last["labeled_fraction"])
        text = f"≈ {float(f'{total:.3g}'):,.0f}"
    top = ax.secondary_xaxis("top", functions=(lambda f: f * total, lambda n: n / total))
    top.set_xlabel(f"labelled pixels (pool: {text} pixels)")
    counts = [ranked.loc[np.isclose(ranked["labeled_fraction"], t, rtol=1e-9, atol=0), "labeled_pixels"].mean()
              for t in ticks]  # the pixel count at each labelled cycle tick
    _set_ticks(top.xaxis, [float(c) for c in counts if np.isfinite(c)], lambda v: f"{v:,.0f}")
    top.tick_params(which="both", length=3.5)  # labelled minor ticks: labels at one height


def learning_curves(block: pd.DataFrame, board: pd.DataFrame, path: Path) -> Path:
    """One figure for one (dataset, model) block of cycles.csv."""
    dataset, model = block["dataset"].iloc[0], block["model"].iloc[0]
    stats = seed_stats(block, "miou")
    fig, ax = plt.subplots(figsize=(10.5, 5.5), layout="constrained")
    names = list(board["strategy"])  # rank order; supervised is not in the board
    ranked = board.set_index("strategy")
    for name in names:
        curve = stats[stats["strategy"] == name].sort_values("fraction")
        colour, marker, line = style(name, names)
        row = ranked.loc[name]
        ci = f" ± {row['aulc_ci95']:.1f}" if pd.notna(row["aulc_ci95"]) else " (1 seed)"
        tied = f" {TIED_MARKER}" if row["rank"] != 1 and _is_true(row["tied_with_best"]) else ""
        label = f"{int(row['rank'])}. {name}{tied}: {row['aulc_mean']:.1f}{ci}"
        ax.plot(curve["fraction"], curve["mean"], color=colour, marker=marker, markersize=5, lw=1.8, ls=line,
                label=label)
        band = curve[curve["n"] >= 2]
        if len(band):
            ax.fill_between(band["fraction"], band["mean"] - band["half"], band["mean"] + band["half"],
                            color=colour, alpha=0.15, lw=0)
    supervised_line(ax, block)
    ax.set_xscale("log")
    curves = stats[stats["strategy"] != SUPERVISED]  # the reference is a horizontal line, not a tick
    ticks = _cycle_ticks(curves["fraction"]) if len(curves) else []
    _set_ticks(ax.xaxis, ticks, _percent)
    ax.tick_params(axis="x", which="both", length=3.5)
    ax.set_xlabel("labelled pixels, fraction of all training pixels (log scale"
                  + (", a tick per cycle)" if ticks else ")"))
    ax.set_ylabel("mIoU (%)")
    ax.grid(True, which="major", alpha=0.3)
    _pixel_axis(ax, block, ticks)
    ax.set_title(f"{dataset} / {model}: learning curves\nline = mean over seeds, band = 95% t-interval "
                 f"(none for one seed)", fontsize=11)
    tied_any = any(r != 1 and _is_true(t) for r, t in zip(board["rank"], board["tied_with_best"]))
    note = f"\n{TIED_MARKER} = not distinguishable from rank 1\n(paired t-test over seeds)" if tied_any else ""
    fig.legend(fontsize=9, loc="outside right upper", title=f"rank. strategy: AULC\n(mean ± 95% CI){note}",
               title_fontsize=8.5, alignment="left")
    return save(fig, path)
