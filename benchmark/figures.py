"""PNG figures from the results folder: learning curves, uncertainty maps, uncertainty decomposition.

``make_figures(results_dir, cycle=None)`` writes, under ``results_dir/figures/``:

- ``learning_curves_{dataset}_{model}.png``: mIoU against the labelled-pixel fraction (log x; the
  top axis gives the pixel count), one line per strategy (mean over seeds) with its 95% t-interval
  as a band (none for one seed), the supervised reference as a dashed horizontal line.
- ``uncertainty_maps_{dataset}_{model}_cycle{k}.png``: from one run's saved ``maps/*.npz`` (the
  balent run if there is one, then balent_ref, then by strategy name; lowest seed; the cycle is
  ``cycle`` or the last one with maps): per validation image, the image, ground truth, prediction
  and the BalEnt (rank-normalised), BALD, pBALD and entropy score maps, each with the pixels it
  would pick ringed.
- ``uncertainty_decomposition_{dataset}_{model}.png``: per strategy, epistemic, aleatoric and
  posterior uncertainty (each divided by the absolute value of its first-cycle mean over seeds)
  and mIoU (twin axis) against the cycle.
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
from matplotlib.ticker import LogFormatterSciNotation, MultipleLocator  # noqa: E402

from benchmark.errors import UsageError  # noqa: E402
from benchmark.fileio import write_bytes_atomic  # noqa: E402
from benchmark.leaderboard import SUPERVISED, clean_cycles, leaderboard, t_interval  # noqa: E402

DPI = 120
MAX_MAP_IMAGES = 6
STRATEGY_STYLE = {  # fixed colours, so a strategy looks the same in every figure
    "random": ("#7f7f7f", "o"), "entropy": ("#1f77b4", "s"), "margin": ("#17becf", "D"),
    "bald": ("#2ca02c", "^"), "pbald": ("#9467bd", "v"), "balent": ("#d62728", "P"),
    "balent_ref": ("#ff7f0e", "X"),
}
EXTRA_COLOURS = ["#8c564b", "#e377c2", "#bcbd22", "#393b79", "#637939", "#843c39"]
UNCERTAINTY_STYLE = {"epistemic": "#2ca02c", "aleatoric": "#1f77b4", "posterior": "#d62728"}
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
    if not path.is_file():
        raise UsageError(f"no cycles.csv in {results_dir}: run `python -m benchmark run` first or pass --results")
    cycles = clean_cycles(pd.read_csv(path))
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


def _percent(value) -> str:
    return f"{100 * value:.4g}%"


def _pixel_axis(ax, block: pd.DataFrame) -> None:
    """Top axis: labelled pixels (count = fraction x pool pixels)."""
    if "labeled_pixels" not in block:
        return
    ranked = block[(block["strategy"] != SUPERVISED) & (block["labeled_fraction"] > 0)]
    if ranked.empty:
        return
    total = float((ranked["labeled_pixels"] / ranked["labeled_fraction"]).median())
    top = ax.secondary_xaxis("top", functions=(lambda f: f * total, lambda n: n / total))
    top.set_xlabel(f"labelled pixels (pool: {total:,.0f} pixels)")
    _log_labels(top.xaxis, lambda v: f"{v:,.0f}")


def learning_curves(block: pd.DataFrame, board: pd.DataFrame, path: Path) -> Path:
    """One figure for one (dataset, model) block of cycles.csv."""
    dataset, model = block["dataset"].iloc[0], block["model"].iloc[0]
    stats = _seed_stats(block, "miou")
    fig, ax = plt.subplots(figsize=(8.5, 5.5), layout="constrained")
    names = list(board["strategy"])  # rank order; supervised is not in the board
    ranked = board.set_index("strategy")
    for name in names:
        curve = stats[stats["strategy"] == name].sort_values("fraction")
        colour, marker = _style(name, names)
        row = ranked.loc[name]
        ci = f" ± {row['aulc_ci95']:.1f}" if pd.notna(row["aulc_ci95"]) else ", 1 seed"
        label = f"{int(row['rank'])}. {name} (AULC {row['aulc_mean']:.1f}{ci})"
        ax.plot(curve["fraction"], curve["mean"], color=colour, marker=marker, markersize=5, lw=1.8, label=label)
        band = curve[curve["n"] >= 2]
        if len(band):
            ax.fill_between(band["fraction"], band["mean"] - band["half"], band["mean"] + band["half"],
                            color=colour, alpha=0.15, lw=0)
    _supervised_line(ax, block)
    ax.set_xscale("log")
    _log_labels(ax.xaxis, _percent)
    ax.set_xlabel("labelled pixels, fraction of all training pixels (log scale)")
    ax.set_ylabel("mIoU (%)")
    ax.grid(True, which="major", alpha=0.3)
    _pixel_axis(ax, block)
    ax.set_title(f"{dataset} / {model}: learning curves\nmean over seeds; band = 95% t-interval "
                 f"(none for one seed)", fontsize=11)
    ax.legend(fontsize=8.5, loc="best", title="rank. strategy (AULC ± 95% CI)", title_fontsize=8.5)
    return _save(fig, path)


def _supervised_line(ax, block: pd.DataFrame) -> None:
    ref = block[block["strategy"] == SUPERVISED]
    if ref.empty:
        return
    finals = ref.sort_values("cycle").groupby("seed")["miou"].last()
    mean, half = t_interval(finals)
    text = f"supervised, all pixels ({mean:.1f}" + (f" ± {half:.1f})" if pd.notna(half) else ", 1 seed)")
    ax.axhline(mean, color="black", ls="--", lw=1.3, label=text)
    if pd.notna(half):
        ax.axhspan(mean - half, mean + half, color="black", alpha=0.06, lw=0)


# --- uncertainty decomposition ------------------------------------------------------------------
def uncertainty_decomposition(block: pd.DataFrame, board: pd.DataFrame, path: Path) -> Path:
    """Small multiples, one panel per ranked strategy (in rank order)."""
    dataset, model = block["dataset"].iloc[0], block["model"].iloc[0]
    names = list(board["strategy"])
    ncols = min(4, len(names))
    nrows = math.ceil(len(names) / ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(max(3.6 * ncols + 0.8, 9.0), 3.0 * nrows + 1.3),
                             squeeze=False, sharex=True, sharey=True, layout="constrained")
    miou_axes = []
    for i, (ax, name, rank) in enumerate(zip(axes.flat, names, board["rank"])):
        row_end = i % ncols == ncols - 1 or i == len(names) - 1
        miou_axes.append(_decomposition_panel(ax, block[block["strategy"] == name], f"{rank}. {name}", row_end))
    for ax in axes.flat[len(names):]:
        ax.set_visible(False)
    lims = [a.get_ylim() for a in miou_axes]
    for twin in miou_axes:
        twin.set_ylim(min(lo for lo, _ in lims), max(hi for _, hi in lims))
    for ax in axes[:, 0]:
        ax.set_ylabel("value / |first-cycle value|")
    lo, hi = block["cycle"].min(), block["cycle"].max()
    for ax in axes[-1, :]:
        ax.set_xlabel("cycle")
        ax.xaxis.set_major_locator(MultipleLocator(max(1, math.ceil((hi - lo) / 8))))
        ax.set_xlim(lo - 0.3 - 0.02 * (hi - lo), hi + 0.3 + 0.02 * (hi - lo))
    handles = [plt.Line2D([], [], color=c, marker="o", ms=4, label=k) for k, c in UNCERTAINTY_STYLE.items()]
    handles.append(plt.Line2D([], [], color="black", ls="--", marker="s", ms=4, label="mIoU % (right axis)"))
    fig.legend(handles=handles, loc="outside lower center", ncols=4, fontsize=9)
    fig.suptitle(f"{dataset} / {model}: uncertainty over the unlabelled pool across cycles (mean over seeds)\n"
                 "epistemic = BALD, aleatoric = expected entropy, posterior = MJEnt; each divided by |its "
                 "first-cycle value|", fontsize=10.5)
    return _save(fig, path)


def _decomposition_panel(ax, rows: pd.DataFrame, name: str, row_end: bool):
    means = rows.groupby("cycle")[["epistemic", "aleatoric", "posterior", "miou"]].mean().sort_index()
    cycles = means.index.to_numpy()
    plotted = False
    for key, colour in UNCERTAINTY_STYLE.items():
        series = means[key].to_numpy(float)
        first = series[np.isfinite(series)][:1]
        if first.size and first[0] != 0:
            ax.plot(cycles, series / abs(first[0]), color=colour, marker="o", ms=3.5, lw=1.6)
            plotted = True
    if not plotted:
        ax.text(0.5, 0.5, "no uncertainty recorded", transform=ax.transAxes, ha="center", color="0.4")
    ax.axhline(1.0, color="0.6", lw=0.8, ls=":")
    ax.grid(True, alpha=0.3)
    ax.set_title(name, fontsize=10)
    twin = ax.twinx()
    twin.plot(cycles, means["miou"].to_numpy(float), color="black", ls="--", marker="s", ms=3.5, lw=1.3)
    if row_end:
        twin.set_ylabel("mIoU (%), dashed", fontsize=9)
        twin.tick_params(labelsize=8)
    else:
        twin.tick_params(labelright=False)
    return twin


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
    if len(picks):
        ax.scatter(picks[:, 1], picks[:, 0], s=40, facecolors="none", edgecolors="#00ff66", linewidths=1.3)


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
    handles = [Patch(color=palette[i] / 255, label=classes[i]) for i in sorted(present) if i < len(classes)][:24]
    if 255 in present:
        handles.append(Patch(color="black", label="ignore (255)"))
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
        if len(dm_board) and set(UNCERTAINTY_STYLE) <= set(block.columns):
            paths.append(uncertainty_decomposition(block, dm_board, out / f"uncertainty_decomposition_{slug}.png"))
    for dataset, model, k, rows in maps:
        name = f"uncertainty_maps_{_slug(dataset)}_{_slug(model)}_cycle{k}.png"
        paths.append(uncertainty_maps(dataset, model, k, rows, out / name))
    return paths
