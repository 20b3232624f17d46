"""What the command line prints: rich tables of the leaderboard (and other reports).

Only the CLI layer calls these; the computing modules return frames and never print.
"""
from __future__ import annotations

import math

import pandas as pd

from benchmark.leaderboard import ALPHA, ONE_SEED_NOTE, TIED_MARKER
from benchmark.records import arm_label


def _cell(mean: float, ci: float, n_seeds: int, digits: int = 2) -> str:
    if pd.isna(mean):
        return "n/a"
    if n_seeds < 2 or pd.isna(ci):
        return f"{mean:.{digits}f}"
    return f"{mean:.{digits}f} ± {ci:.{digits}f}"


def _tied_cell(rank: int, value) -> str:
    if rank == 1:
        return "best"
    if pd.isna(value):
        return "?"
    return TIED_MARKER if value else ""


def settings_line(settings: pd.DataFrame | None, dataset: str, model: str) -> str:
    """How the results of (dataset, model) were obtained: MC dropout, void clicks, m."""
    if settings is None or settings.empty:
        return ""
    rows = settings[(settings["dataset"] == dataset) & (settings["model"] == model)].dropna(how="all")
    if rows.empty:
        return ""
    parts = []
    for (rate, mask), _ in rows.groupby(["mc_dropout_rate", "mc_dropout_mask"], dropna=False):
        parts.append(f"rate {rate}, {mask} masks" if pd.notna(rate) else "not recorded (older runs)")
    mixed = " MIXED across runs: compare with care" if len(parts) > 1 else ""
    line = f"MC dropout: {'; '.join(parts)}{mixed}"
    samples = sorted({int(m) for m in rows["mc_samples"].dropna()})
    voids = sorted({str(v) for v in rows["void_clicks"].dropna()})
    if samples:
        line += f"; m = {', '.join(map(str, samples))} samples"
    if voids:
        line += f"; void clicks: {', '.join(voids)}"
    return line + "."


def print_leaderboard(frame: pd.DataFrame, console=None, settings: pd.DataFrame | None = None) -> None:
    """Print one rich table per (dataset, model) of a ``leaderboard()`` frame; the best arm and
    those indistinguishable from it in bold. ``settings``: ``tables.run_settings`` for the caption."""
    from rich.console import Console
    from rich.table import Table

    console = console or Console()
    if frame is None or len(frame) == 0:
        console.print("No ranked strategies in the results (only the supervised reference, or no rows).")
        return
    for (dataset, model), block in frame.groupby(["dataset", "model"], sort=True):
        sup = block["supervised_miou"].iloc[0] if "supervised_miou" in block else math.nan
        ref = f"supervised reference mIoU {sup:.2f}" if pd.notna(sup) else "no supervised reference"
        caption = _caption(block, settings_line(settings, dataset, model))
        table = Table(title=f"{dataset} / {model} ({ref})", caption=caption, caption_justify="left")
        for name, justify in [("rank", "right"), ("strategy", "left"), ("seeds", "right"),
                              ("AULC (mIoU %)", "right"), ("final mIoU", "right"), ("% of sup.", "right"),
                              ("void clicks", "right"), (f"{TIED_MARKER} best", "center")]:
            table.add_column(name, justify=justify)
        for row in block.itertuples(index=False):
            seeds = str(row.n_seeds) if row.n_seeds > 1 else ONE_SEED_NOTE  # instead of a fake interval
            tied = _tied_cell(row.rank, row.tied_with_best)
            void = f"{100 * row.void_share:.1f}%" if pd.notna(row.void_share) else "n/a"
            table.add_row(str(row.rank), arm_label(row.strategy, row.selection), seeds,
                          _cell(row.aulc_mean, row.aulc_ci95, row.n_seeds),
                          _cell(row.final_miou_mean, row.final_miou_ci95, row.n_seeds),
                          _cell(row.pct_of_supervised, row.pct_of_supervised_ci95, row.n_seeds, 1), void, tied,
                          style="bold" if tied in ("best", TIED_MARKER) else None)
        console.print(table)


def _caption(block: pd.DataFrame, settings: str) -> str:
    span = int(block["ranked_cycles"].min())
    lines = [f"mIoU in %, over cycles 0-{span - 1}; mean ± half width of the 95% t-interval over seeds; % of sup. "
             f"= final mIoU / the supervised reference's, per seed. {TIED_MARKER} = paired t-tests on per-seed "
             f"AULC against the best, Holm-adjusted over the {len(block) - 1} comparisons (alpha {ALPHA}), cannot "
             "tell it from the best. void clicks = share of the clicks paid for on void pixels."]
    if (block["note"].str.contains("ranked on cycles", na=False)).any():
        lines.append(f"Some runs went further than cycle {span - 1}: every arm is ranked on the span all of "
                     "them reached.")
    if block["tied_with_best"].isna().any():
        lines.append("? = fewer than 2 seeds shared with the best, no test.")
    if (block["n_seeds"] < 2).any():
        lines.append(f"{ONE_SEED_NOTE}: the value of the single seed; run more seeds for an interval.")
    if settings:
        lines.append(settings)
    return "\n".join(lines)
