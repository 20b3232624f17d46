"""What the command line prints: rich tables of the leaderboard (and other reports).

Only the CLI layer calls these; the computing modules return frames and never print.
"""
from __future__ import annotations

import math

import pandas as pd

from benchmark.records.schema import TASK, arm_label
from benchmark.reports.leaderboard import ALPHA, ONE_SEED_NOTE, TIED_MARKER
from benchmark.reports.statistics import BOOTSTRAP_RESAMPLES, IQM_MIN_VALUES, POWER


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
    for (dataset, model), block in frame.groupby(TASK, sort=True):
        sup = block["supervised_miou"].iloc[0] if "supervised_miou" in block else math.nan
        ref = f"supervised reference mIoU {sup:.2f}" if pd.notna(sup) else "no supervised reference"
        caption = _caption(block, settings_line(settings, dataset, model))
        table = Table(title=f"{dataset} / {model} ({ref})", caption=caption, caption_justify="left")
        by_cost = bool("unit" in block and (block["unit"] != "pixel").any())  # units compared: at equal cost
        for name, justify in [("rank", "right"), ("strategy", "left"), ("seeds", "right"),
                              ("AULC (mIoU %)", "right"), ("final mIoU", "right"), ("% of sup.", "right"),
                              ("void clicks", "right"), (f"{TIED_MARKER} best", "center")] + \
                [("AULC by cost", "right")] * by_cost:
            table.add_column(name, justify=justify)
        for row in block.itertuples(index=False):
            unit = getattr(row, "unit", "pixel")
            by_cost_cell = [_cell(row.aulc_cost_mean, row.aulc_cost_ci95, row.n_seeds)] if by_cost else []
            seeds = str(row.n_seeds) if row.n_seeds > 1 else ONE_SEED_NOTE  # instead of a fake interval
            tied = _tied_cell(row.rank, row.tied_with_best)
            void = f"{100 * row.void_share:.1f}%" if pd.notna(row.void_share) else "n/a"
            table.add_row(str(row.rank), arm_label(row.strategy, row.selection, unit), seeds,
                          _cell(row.aulc_mean, row.aulc_ci95, row.n_seeds),
                          _cell(row.final_miou_mean, row.final_miou_ci95, row.n_seeds),
                          _cell(row.pct_of_supervised, row.pct_of_supervised_ci95, row.n_seeds, 1), void, tied,
                          *by_cost_cell, style="bold" if tied in ("best", TIED_MARKER) else None)
        console.print(table)
        if "seeds_for_80pct_power" in block:
            _print_verdicts(block, console)


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
    if "unit" in block and (block["unit"] != "pixel").any():
        lines.append(f"Units differ in what a labelled pixel costs: compare them by AULC by cost (mIoU against "
                     f"cumulative cost over {block['cost_span_start'].min():g}-{block['cost_span_end'].min():g} cost "
                     "units, the span every ranked run covers); @ superpixel = a region's dominant class per query.")
    if settings:
        lines.append(settings)
    return "\n".join(lines)


MANY_SEEDS = 1000


def _interval(low, high, digits: int = 2) -> str:
    return "" if pd.isna(low) or pd.isna(high) else f"[{low:.{digits}f}, {high:.{digits}f}]"


def _probability(row) -> str:
    if pd.isna(row.prob_beats_random):
        return "n/a"
    interval = _interval(row.prob_beats_random_low, row.prob_beats_random_high)
    return f"{row.prob_beats_random:.2f}" + (f" {interval}" if interval else "")


def _seeds_needed(row) -> str:
    """``seeds_for_80pct_power`` in words."""
    n = row.seeds_for_80pct_power
    if row.rank == 1:
        return "best"
    if n is None or pd.isna(n):
        return "? (no test)"
    if math.isinf(n):
        return "never: no difference seen"
    return f"more than {MANY_SEEDS}" if n > MANY_SEEDS else f"about {int(n)}"


def verdict_line(block: pd.DataFrame) -> str:
    """One sentence: how many arms the seeds run separate from the best, and what the others need."""
    others = block[block["rank"] != 1]
    if others.empty:
        return ""
    seeds = int(block["n_seeds"].max())
    separated = others["tied_with_best"].fillna(True).eq(False)
    apart = int(separated.sum())
    needs = [f"{arm_label(r.strategy, r.selection, getattr(r, 'unit', 'pixel'))} {_seeds_needed(r)}"
             for r in others[~separated].itertuples(index=False)]
    line = (f"Verdict: {apart} of {len(others)} arm(s) told apart from the best with {seeds} seed(s)"
            + (f"; seeds a paired test would need to tell the others apart {round(100 * POWER)}% of the time: "
               + ", ".join(needs) if needs else "") + ".")
    return line


def _bootstrap_cell(low, high, iqm) -> str:
    cell = _interval(low, high) or "n/a"
    return cell + (f"\nIQM {iqm:.2f}" if pd.notna(iqm) else "")


def _print_verdicts(block: pd.DataFrame, console) -> None:
    """The second table of a (dataset, model): how sure the ranking is."""
    from rich.table import Table

    iqm = bool(block["aulc_iqm"].notna().any())
    dataset, model = block["dataset"].iloc[0], block["model"].iloc[0]
    table = Table(title=f"{dataset} / {model}: how sure", caption=_verdict_caption(block, iqm), caption_justify="left")
    table.add_column("rank", justify="right")
    table.add_column("strategy", no_wrap=True)
    for name in ("AULC bootstrap", "final mIoU bootstrap", "P(> random)", f"seeds for {round(100 * POWER)}% power"):
        table.add_column(name, justify="right")
    for row in block.itertuples(index=False):
        table.add_row(str(row.rank), arm_label(row.strategy, row.selection, getattr(row, "unit", "pixel")),
                      _bootstrap_cell(row.aulc_boot_low, row.aulc_boot_high, row.aulc_iqm),
                      _bootstrap_cell(row.final_miou_boot_low, row.final_miou_boot_high, row.final_miou_iqm),
                      _probability(row), _seeds_needed(row))
    console.print(table)
    line = verdict_line(block)
    if line:
        console.print(line)


def _verdict_caption(block: pd.DataFrame, iqm: bool) -> str:
    lines = [f"bootstrap = 95% stratified bootstrap interval of the mean over seeds ({BOOTSTRAP_RESAMPLES:,} "
             "resamples of the seeds, the same draws for every arm); the table above gives the t-interval, the one "
             "to trust with few seeds (with 3, the bootstrap's is the lowest to the highest seed)."]
    if iqm:
        lines.append(f"IQM = interquartile mean over seeds (the mean of the middle half; from {IQM_MIN_VALUES} seeds).")
    if block["prob_beats_random"].notna().any():
        lines.append("P(> random) = share of the seeds on which the arm's AULC beats random's on the same seed "
                     "(ties half), [95% bootstrap interval]; [1.00, 1.00] only says every seed run agreed.")
    else:
        lines.append("P(> random): n/a, random (topn) was not run.")
    lines.append(f"seeds for {round(100 * POWER)}% power = seeds a paired t-test at the arm's Holm level would "
                 "need to tell it from the best, if the per-seed differences seen here are the truth.")
    return "\n".join(lines)


AGGREGATE_TITLE = "Across tasks"


def print_aggregate(frame: pd.DataFrame, console=None) -> None:
    """Print an ``aggregate()`` frame: mean rank and P(> random) over the (dataset, model) tasks."""
    from rich.console import Console
    from rich.table import Table

    console = console or Console()
    if frame is None or len(frame) == 0:
        console.print("No ranked strategies in the results: nothing to aggregate.")
        return
    caption = ("mean rank over the tasks the arm ran in (1 = best), [95% stratified bootstrap interval: seeds "
               "resampled within each task]; P(> random) = mean over tasks of the share of seeds on which the arm's "
               "AULC beats random's (ties half).")
    table = Table(title=f"{AGGREGATE_TITLE}: the (dataset, model) tasks of the folder", caption=caption,
                  caption_justify="left")
    for name, justify in [("strategy", "left"), ("tasks", "right"), ("mean rank", "right"),
                          ("P(> random)", "right"), ("tasks with random", "right")]:
        table.add_column(name, justify=justify)
    for row in frame.itertuples(index=False):
        interval = _interval(row.mean_rank_low, row.mean_rank_high)
        table.add_row(arm_label(row.strategy, row.selection, getattr(row, "unit", "pixel")), str(row.n_tasks),
                      f"{row.mean_rank:.2f} {interval}".strip(), _probability(row), str(row.n_tasks_with_random))
    console.print(table)


STATE_STYLES = {"running": "yellow", "finished": "green", "failed": "bold red", "interrupted": "magenta",
                "awaiting-labels": "cyan", "queued": "dim", "not started": "dim", "starting": "yellow",
                "requeued": "magenta", "held": "cyan", "cancelled": "red", "timed out": "red"}


def _count(value) -> str:
    return "?" if value is None or pd.isna(value) else str(int(value))


def _text(value) -> str:
    return "" if value is None or (isinstance(value, float) and pd.isna(value)) else str(value)


def print_status(frame: pd.DataFrame, console=None) -> None:
    """Print ``benchmark.execution.status.run_states``: one line per run and a count per state."""
    from rich.console import Console
    from rich.table import Table

    console = console or Console()
    columns = [("run", "run"), ("cycles", None), ("state", "state"), ("job", "job_id"), ("host", "host"),
               ("updated (UTC)", "updated"), ("last error", "error"), ("Slurm says", "scheduler")]
    shown = [(title, key) for title, key in columns if key is None or frame[key].notna().any()]
    table = Table(title="Runs")
    for title, key in shown:
        table.add_column(title, justify="right" if key is None else "left", no_wrap=key not in ("run", "error"),
                         overflow="fold")
    for row in frame.to_dict("records"):
        cells = {None: f"{_count(row['cycles_done'])}/{_count(row['cycles_planned'])}",
                 "updated": _text(row["updated"])[5:16].replace("T", " ")}
        table.add_row(*[cells[key] if key in cells else _text(row[key]) for _, key in shown],
                      style=STATE_STYLES.get(row["state"]))
    console.print(table)
    counts = frame["state"].value_counts()
    console.print(f"{len(frame)} runs: " + ", ".join(f"{n} {state}" for state, n in counts.items()))


def print_launch(graph, records: list, options, out, console=None) -> None:
    """What `launch` submitted: one line per job (id, what it does, what it waits for), the
    runs it skipped, where the logs are and how to follow the jobs."""
    from rich.console import Console
    from rich.table import Table

    console = console or Console()
    for label, names in (("finished, skipped", graph.finished), ("running elsewhere, skipped", graph.running)):
        if names:
            console.print(f"{len(names)} run(s) {label}: {', '.join(names)}")
    if not records:
        console.print(f"nothing to submit: every planned run is finished or running; `python -m benchmark "
                      f"leaderboard --results {out}` rebuilds the tables")
        return
    table = Table(title=f"Submitted to {options.executor}")
    for name in ("job", "kind", "does", "waits for"):
        table.add_column(name, no_wrap=name != "waits for", overflow="fold")
    for job, handle, after in records:
        waits = ("any end of " if job.kind == "tables" else "success of ") + ", ".join(after) if after else ""
        if job.kind == "tables" and len(after) > 3:
            waits = f"the end of all {len(after)} jobs above"
        table.add_row(handle.job_id, job.kind, job.name, waits)
    console.print(table)
    console.print(f"logs: {options.log_dir}  (<job>_0_log.out / .err)")
    console.print(f"follow: python -m benchmark status --results {out}")
    if options.executor == "local":
        console.print("the jobs run in the background on this machine; this command returns now")
