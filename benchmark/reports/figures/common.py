"""Shared pieces of the figures: fixed strategy colours, saving, reading the tables, seed statistics."""
from __future__ import annotations

import io
import re
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402

from benchmark.errors import UsageError  # noqa: E402
from benchmark.records.fileio import write_bytes_atomic  # noqa: E402
from benchmark.records.schema import SUPERVISED, arm_label  # noqa: E402
from benchmark.reports.statistics import t_interval  # noqa: E402
from benchmark.reports.tables import read_cycles_csv  # noqa: E402

DPI = 120
STRATEGY_STYLE = {  # fixed colours, so a strategy looks the same in every figure
    "random": ("#7f7f7f", "o"), "entropy": ("#1f77b4", "s"), "margin": ("#17becf", "D"),
    "bald": ("#2ca02c", "^"), "pbald": ("#9467bd", "v"), "balent": ("#d62728", "P"),
    "balent_ref": ("#ff7f0e", "X"),
}
EXTRA_COLOURS = ["#8c564b", "#e377c2", "#bcbd22", "#393b79", "#637939", "#843c39"]


SELECTION_MARKERS = {"spread": "*", "pixelpick": "d"}


def style(arm: str, known: list[str]) -> tuple[str, str, str]:
    """(colour, marker, line style) of an arm label (``benchmark.records.schema.arm_label``): the colour
    is its strategy's, a non-default selector gets its own marker and a dashed line."""
    arm, _, unit = arm.partition(" @ ")
    strategy, _, selection = arm.partition(" + ")
    bases = sorted({k.partition(" @ ")[0].partition(" + ")[0] for k in known} - set(STRATEGY_STYLE))
    if strategy in STRATEGY_STYLE:
        colour, marker = STRATEGY_STYLE[strategy]
    else:
        colour, marker = EXTRA_COLOURS[bases.index(strategy) % len(EXTRA_COLOURS)] if strategy in bases \
            else EXTRA_COLOURS[0], "o"
    if selection:
        return colour, SELECTION_MARKERS.get(selection, "h"), ":" if unit else "--"
    return colour, marker, "-." if unit else "-"


def with_arm_labels(frame: pd.DataFrame) -> pd.DataFrame:
    """``frame`` with its strategy column replaced by the arm label (strategy + selector)."""
    if "selection" not in frame.columns:
        return frame
    units = frame["unit"] if "unit" in frame.columns else ["pixel"] * len(frame)
    labels = [arm_label(s, sel, u) for s, sel, u in zip(frame["strategy"], frame["selection"], units)]
    return frame.assign(strategy=labels)


def slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", str(text))


def save(fig, path: Path) -> Path:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=DPI, metadata={"Software": None})
    plt.close(fig)
    write_bytes_atomic(path, buffer.getvalue())
    return path


def read_cycles(results_dir: Path) -> pd.DataFrame:
    path = results_dir / "cycles.csv"
    cycles = read_cycles_csv(path)
    if cycles.empty:
        raise UsageError(f"{path} has no rows: let `python -m benchmark run` complete a cycle first")
    return cycles


def seed_stats(block: pd.DataFrame, column: str) -> pd.DataFrame:
    """Per (strategy, cycle): mean labelled fraction, mean and t half width of ``column``."""
    rows = []
    for (strategy, cycle), grp in block.groupby(["strategy", "cycle"], sort=True):
        mean, half = t_interval(grp[column])
        rows.append(dict(strategy=strategy, cycle=cycle, fraction=grp["labeled_fraction"].mean(),
                         mean=mean, half=half, n=int(grp[column].notna().sum())))
    return pd.DataFrame(rows)


def supervised_line(ax, block: pd.DataFrame, with_label: bool = True) -> None:
    ref = block[block["strategy"] == SUPERVISED]
    if ref.empty:
        return
    finals = ref.sort_values("cycle").groupby("seed")["miou"].last()
    mean, half = t_interval(finals)
    text = f"supervised, all pixels ({mean:.1f}" + (f" ± {half:.1f})" if pd.notna(half) else ", 1 seed)")
    ax.axhline(mean, color="black", ls="--", lw=1.3, label=text if with_label else None)
    if not with_label:
        ax.annotate("supervised", (0.01, mean), xycoords=("axes fraction", "data"), fontsize=8,
                    va="bottom", color="0.25")
    if pd.notna(half):
        ax.axhspan(mean - half, mean + half, color="black", alpha=0.06, lw=0)
