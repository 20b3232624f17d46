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
  and the BalEnt (rank-normalised), BALD, pBALD and entropy score maps, each with the pixels it
  would pick ringed.
- ``uncertainty_decomposition_{dataset}_{model}.png``: four panels against the cycle: epistemic,
  aleatoric and posterior uncertainty over the unlabelled pool, each relative to its cycle-0 value
  (``relative_to_first``), and mIoU; one line per strategy (mean over seeds), same colours as the
  learning curves.
"""
from __future__ import annotations

import io
import json
import math
import re
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from matplotlib.patches import Patch  # noqa: E402
from matplotlib.ticker import (FixedLocator, FuncFormatter, LogFormatterSciNotation,  # noqa: E402
                               MultipleLocator, NullLocator)

from benchmark.errors import UsageError  # noqa: E402
from benchmark.fileio import write_bytes_atomic  # noqa: E402
from benchmark.leaderboard import SUPERVISED, TIED_MARKER, leaderboard, read_cycles_csv, t_interval  # noqa: E402

DPI = 120
MAX_MAP_IMAGES = 6
STRATEGY_STYLE = {  # fixed colours, so a strategy looks the same in every figure
    "random": ("#7f7f7f", "o"), "entropy": ("#1f77b4", "s"), "margin": ("#17becf", "D"),
    "bald": ("#2ca02c", "^"), "pbald": ("#9467bd", "v"), "balent": ("#d62728", "P"),
    "balent_ref": ("#ff7f0e", "X"),
}
EXTRA_COLOURS = ["#8c564b", "#e377c2", "#bcbd22", "#393b79", "#637939", "#843c39"]
UNCERTAINTY_COLUMNS = ("epistemic", "aleatoric", "posterior")
MAP_PANELS = [  # (npz key suffix, title, rank-normalised?)
    ("balent", "BalEnt acquisition\n(rank-normalised, 1 = first)", True),
    ("bald", "BALD (epistemic)", False),
    ("pbald", "pBALD = log BALD + Gumbel", False),
    ("entropy", "predictive entropy", False),
]
DEGENERATE_COLOUR = "#a0a0a0"
MAP_NAME = re.compile(r"^cycle_(\d+)_img_(.+)\.npz$")


# --- shared helpers ----------------------------------------------------------------------------
def _style(strategy: str, known: list[str]) -> tuple[str, str]:
    if strategy in STRATEGY_STYLE:
        return STRATEGY_STYLE[strategy]
    extras = sorted(s for s in known if s not in STRATEGY_STYLE)
    return EXTRA_COLOURS[extras.index(strategy) % len(EXTRA_COLOURS)], "o"


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", str(text))


def _save(fig, path: Path) -> Path:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=DPI, metadata={"Software": None})
    plt.close(fig)
    write_bytes_atomic(path, buffer.getvalue())
    return path


def _read_cycles(results_dir: Path) -> pd.DataFrame:
    path = results_dir / "cycles.csv"
    cycles = read_cycles_csv(path)
    if cycles.empty:
        raise UsageError(f"{path} has no rows: let `python -m benchmark run` complete a cycle first")
    return cycles


def _seed_stats(block: pd.DataFrame, column: str) -> pd.DataFrame:
    """Per (strategy, cycle): mean labelled fraction, mean and t half width of ``column``."""
    rows = []
    for (strategy, cycle), grp in block.groupby(["strategy", "cycle"], sort=True):
        mean, half = t_interval(grp[column])
        rows.append(dict(strategy=strategy, cycle=cycle, fraction=grp["labeled_fraction"].mean(),
                         mean=mean, half=half, n=int(grp[column].notna().sum())))
    return pd.DataFrame(rows)


# --- learning curves ---------------------------------------------------------------------------
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
    stats = _seed_stats(block, "miou")
    fig, ax = plt.subplots(figsize=(10.5, 5.5), layout="constrained")
    names = list(board["strategy"])  # rank order; supervised is not in the board
    ranked = board.set_index("strategy")
    for name in names:
        curve = stats[stats["strategy"] == name].sort_values("fraction")
        colour, marker = _style(name, names)
        row = ranked.loc[name]
        ci = f" ± {row['aulc_ci95']:.1f}" if pd.notna(row["aulc_ci95"]) else " (1 seed)"
        tied = f" {TIED_MARKER}" if row["rank"] != 1 and _is_true(row["tied_with_best"]) else ""
        label = f"{int(row['rank'])}. {name}{tied}: {row['aulc_mean']:.1f}{ci}"
        ax.plot(curve["fraction"], curve["mean"], color=colour, marker=marker, markersize=5, lw=1.8, label=label)
        band = curve[curve["n"] >= 2]
        if len(band):
            ax.fill_between(band["fraction"], band["mean"] - band["half"], band["mean"] + band["half"],
                            color=colour, alpha=0.15, lw=0)
    _supervised_line(ax, block)
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
    return _save(fig, path)


def _supervised_line(ax, block: pd.DataFrame, with_label: bool = True) -> None:
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


# --- uncertainty decomposition ------------------------------------------------------------------
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
        colour, marker = _style(name, names)
        style = dict(color=colour, marker=marker, ms=4.5, lw=1.6)
        for ax, (column, _) in zip(axes, UNCERTAINTY_PANELS):
            series = _relative_means(rows, column)
            ax.plot(series.index, series.to_numpy(), **style)
        miou = rows.groupby("cycle")["miou"].mean().sort_index()
        axes[-1].plot(miou.index, miou.to_numpy(), label=name, **style)
    for ax, (_, title) in zip(axes, UNCERTAINTY_PANELS):
        ax.set_title(title, fontsize=10.5)
        ax.axhline(1.0, color="0.45", lw=0.9, ls=":")
    axes[0].set_ylabel("relative to cycle 0 (1 = cycle-0 value)", fontsize=9)
    axes[-1].set_title("mIoU (%)", fontsize=10.5)
    axes[-1].set_ylabel("mIoU (%)", fontsize=9)
    _supervised_line(axes[-1], block, with_label=False)
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
    return _save(fig, path)


# --- uncertainty maps ---------------------------------------------------------------------------
def _run_identity(run_dir: Path) -> dict:
    """dataset, model, strategy, seed from config.json, else from the run id ``d__m__s__seedN``."""
    path = run_dir / "config.json"
    config = json.loads(path.read_text()) if path.is_file() else {}
    parts = (run_dir.name.split("__") + ["", "", "", ""])[:4]
    fallback = dict(dataset=parts[0], model=parts[1], strategy=parts[2], seed=re.sub(r"\D", "", parts[3]) or 0)
    return {k: config.get(k, fallback[k]) for k in fallback}


def _map_files(results_dir: Path) -> list[dict]:
    """Every saved map: run folder, identity, cycle, file."""
    found = []
    for run_dir in sorted((results_dir / "runs").glob("*")):
        files = sorted((run_dir / "maps").glob("cycle_*_img_*.npz"))
        if not files:
            continue
        ident = _run_identity(run_dir)
        for file in files:
            match = MAP_NAME.match(file.name)
            if match:
                image = match.group(2)
                order = (0, int(image), "") if image.isdigit() else (1, 0, image)
                found.append(dict(run=run_dir.name, cycle=int(match.group(1)), file=file, order=order, **ident))
    return found


def _preference(row) -> tuple:
    order = {"balent": 0, "balent_ref": 1}
    return (order.get(row["strategy"], 2), str(row["strategy"]), int(row["seed"]), row["run"])


def _choose_maps(results_dir: Path, cycle: int | None) -> list[tuple[str, str, int, list[dict]]]:
    """[(dataset, model, cycle, map rows of one run)] per (dataset, model) that has maps.

    The cycle is ``cycle`` or else the last one with maps; the run is the preferred one (balent,
    balent_ref, then by strategy name; then lowest seed, then run id) among those with maps there.
    """
    found = _map_files(results_dir)
    if cycle is not None:
        at = [m for m in found if m["cycle"] == cycle]
        if not at:
            have = sorted({m["cycle"] for m in found})
            fix = (f"pass one of --cycle {', '.join(map(str, have))}" if have else
                   "run with --map-images N (N > 0) to save maps")
            raise UsageError(f"no uncertainty maps for cycle {cycle} under {results_dir / 'runs'}: {fix}")
        found = at
    chosen = []
    for dataset, model in sorted({(m["dataset"], m["model"]) for m in found}):
        mine = [m for m in found if (m["dataset"], m["model"]) == (dataset, model)]
        k = max(m["cycle"] for m in mine)
        run = min((m for m in mine if m["cycle"] == k), key=_preference)["run"]
        chosen.append((dataset, model, k, [m for m in mine if m["run"] == run and m["cycle"] == k]))
    return chosen


def _load_map(file: Path) -> dict:
    with np.load(file, allow_pickle=False) as data:
        return {k: data[k] for k in data.files}


def _colour(labels: np.ndarray, palette: np.ndarray) -> np.ndarray:
    out = np.zeros(labels.shape + (3,), dtype=np.uint8)  # ignore (255) and unknown ids stay black
    valid = labels < len(palette)
    out[valid] = palette[labels[valid]]
    return out


def rank_normalise(score: np.ndarray) -> np.ndarray:
    """Ranks scaled to [0, 1] (1 = acquired first); NaN and -inf (degenerate, ranked last) -> NaN.

    +inf stays in the ranking, at the top: in the float16 maps it is a finite acquisition value
    that overflowed (BalEnt's 1/BalEnt for tiny positive BalEnt), not a degenerate pixel.
    """
    score = np.asarray(score, dtype=np.float64)
    out = np.full(score.shape, np.nan)
    valid = ~np.isnan(score) & (score != -np.inf)
    n = int(valid.sum())
    if n:
        ranks = pd.Series(score[valid]).rank(method="average").to_numpy()
        out[valid] = (ranks - 1) / max(n - 1, 1)
    return out


def _score_panel(ax, fig, entry: dict, key: str, ranked: bool) -> None:
    score = entry.get(f"score_{key}")
    if score is None:
        ax.text(0.5, 0.5, "not saved", transform=ax.transAxes, ha="center", va="center", color="0.4")
        return
    cmap = matplotlib.colormaps["magma"].with_extremes(bad=DEGENERATE_COLOUR)
    if ranked:
        shown, lims = rank_normalise(score), (0.0, 1.0)
    else:  # -inf and NaN (degenerate) shown as "bad"; +inf (float16 overflow) as the top colour
        shown = np.where(np.isnan(score) | (score == -np.inf), np.nan, score.astype(np.float64))
        finite = shown[np.isfinite(shown)]
        lims = tuple(np.percentile(finite, [1, 99])) if finite.size else (0.0, 1.0)
    im = ax.imshow(shown, cmap=cmap, vmin=lims[0], vmax=lims[1] if lims[1] > lims[0] else lims[0] + 1e-6,
                   interpolation="nearest")
    bar = fig.colorbar(im, ax=ax, fraction=0.046, pad=0.02)
    bar.ax.tick_params(labelsize=6.5)
    picks = np.asarray(entry.get(f"picks_{key}", np.zeros((0, 2))), dtype=int).reshape(-1, 2)
    if len(picks):  # a black ring under a bright green one: visible on dark and light colours
        ax.scatter(picks[:, 1], picks[:, 0], s=70, facecolors="none", edgecolors="black", linewidths=2.6)
        ax.scatter(picks[:, 1], picks[:, 0], s=70, facecolors="none", edgecolors="#39ff14", linewidths=1.3)


def uncertainty_maps(dataset: str, model: str, cycle: int, rows: list[dict], path: Path) -> Path:
    """One figure: a row per saved validation image of one run at one cycle."""
    rows = sorted(rows, key=lambda m: m["order"])[:MAX_MAP_IMAGES]
    entries = [_load_map(m["file"]) for m in rows]
    h, w = entries[0]["gt"].shape
    panel = 2.6
    fig, axes = plt.subplots(len(entries), 3 + len(MAP_PANELS), squeeze=False, layout="constrained",
                             figsize=(panel * (3 + len(MAP_PANELS)) + 0.6, panel * h / w * len(entries) + 1.6))
    present = set()
    for r, entry in enumerate(entries):
        palette = np.asarray(entry["palette"], dtype=np.uint8).reshape(-1, 3)
        gt, pred = np.asarray(entry["gt"]), np.asarray(entry["pred"])
        present |= set(np.unique(gt).tolist()) | set(np.unique(pred).tolist())
        for ax, img in zip(axes[r, :3], [entry["image"], _colour(gt, palette), _colour(pred, palette)]):
            ax.imshow(img, interpolation="nearest")
        for ax, (key, _title, ranked) in zip(axes[r, 3:], MAP_PANELS):
            _score_panel(ax, fig, entry, key, ranked)
        axes[r, 0].set_ylabel(f"val image {entry['image_id']}", fontsize=9)
    for ax, title in zip(axes[0], ["image", "ground truth", "prediction"] + [t for _, t, _ in MAP_PANELS]):
        ax.set_title(title, fontsize=9)
    for ax in axes.flat:
        ax.set_xticks([])
        ax.set_yticks([])
    _class_legend(fig, entries[0], present)
    strategy = str(entries[0].get("strategy", rows[0]["strategy"]))
    fig.suptitle(f"{dataset} / {model}: uncertainty maps at cycle {cycle} (run {rows[0]['run']}, strategy "
                 f"{strategy})\ncolour: higher = acquire first; green rings: the pixels each score would pick; "
                 "raw maps clipped to their 1st-99th percentile; grey = degenerate (NaN or -inf, ranked last)",
                 fontsize=10)
    return _save(fig, path)


def _class_legend(fig, entry: dict, present: set) -> None:
    classes = [str(c) for c in np.asarray(entry["classes"]).reshape(-1)]
    palette = np.asarray(entry["palette"], dtype=np.uint8).reshape(-1, 3)
    handles = [Patch(facecolor=palette[i] / 255, edgecolor="0.3", lw=0.6, label=classes[i])
               for i in sorted(present) if i < len(classes)][:24]
    if 255 in present:
        handles.append(Patch(facecolor="black", edgecolor="0.3", lw=0.6, label="ignore (255)"))
    if handles:
        fig.legend(handles=handles, loc="outside lower center", ncols=min(8, len(handles)), fontsize=8,
                   title="classes (ground truth / prediction)", title_fontsize=8)


# --- entry point --------------------------------------------------------------------------------
def make_figures(results_dir, cycle: int | None = None) -> list[Path]:
    """Write every figure under ``results_dir/figures`` and return their paths.

    ``cycle`` picks the cycle of the uncertainty maps (default: the last cycle with maps, per
    (dataset, model)); a ``cycle`` no run has maps for is a UsageError listing those that exist.
    Without any saved maps and no ``cycle``, the maps figure is skipped.
    """
    results_dir = Path(results_dir)
    cycles = _read_cycles(results_dir)
    maps = _choose_maps(results_dir, cycle)  # a bad --cycle fails before anything is written
    board = leaderboard(cycles)
    out, paths = results_dir / "figures", []
    for (dataset, model), block in cycles.groupby(["dataset", "model"], sort=True):
        dm_board = board[(board["dataset"] == dataset) & (board["model"] == model)]
        slug = f"{_slug(dataset)}_{_slug(model)}"
        paths.append(learning_curves(block, dm_board, out / f"learning_curves_{slug}.png"))
        if len(dm_board) and set(UNCERTAINTY_COLUMNS) <= set(block.columns):
            paths.append(uncertainty_decomposition(block, dm_board, out / f"uncertainty_decomposition_{slug}.png"))
    for dataset, model, k, rows in maps:
        name = f"uncertainty_maps_{_slug(dataset)}_{_slug(model)}_cycle{k}.png"
        paths.append(uncertainty_maps(dataset, model, k, rows, out / name))
    return paths
