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
from benchmark.fileio import write_bytes_atomic  # noqa: E402
from benchmark.leaderboard import t_interval  # noqa: E402
from benchmark.records import SUPERVISED  # noqa: E402
from benchmark.tables import read_cycles_csv  # noqa: E402

DPI = 120
STRATEGY_STYLE = {  # fixed colours, so a strategy looks the same in every figure
    "random": ("#7f7f7f", "o"), "entropy": ("#1f77b4", "s"), "margin": ("#17becf", "D"),
    "bald": ("#2ca02c", "^"), "pbald": ("#9467bd", "v"), "balent": ("#d62728", "P"),
    "balent_ref": ("#ff7f0e", "X"),
}
EXTRA_COLOURS = ["#8c564b", "#e377c2", "#bcbd22", "#393b79", "#637939", "#843c39"]


def style(strategy: str, known: list[str]) -> tuple[str, str]:
    if strategy in STRATEGY_STYLE:
        return STRATEGY_STYLE[strategy]
    extras = sorted(s for s in known if s not in STRATEGY_STYLE)
    return EXTRA_COLOURS[extras.index(strategy) % len(EXTRA_COLOURS)], "o"


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
