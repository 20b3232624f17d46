"""Uncertainty maps: per saved validation image, the image, ground truth, prediction and the score
map of every strategy saved with the maps (their names are read from the files), each with the
pixels it would pick ringed."""
from __future__ import annotations

import json
import re
from pathlib import Path

import matplotlib
import numpy as np
from matplotlib.patches import Patch

from benchmark.errors import UsageError
from benchmark.reports.figures.common import plt, save

MAX_MAP_IMAGES = 6
DEGENERATE_COLOUR = "#a0a0a0"
MAP_NAME = re.compile(r"^cycle_(\d+)_img_(.+)\.npz$")


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


def choose_maps(results_dir: Path, cycle: int | None) -> list[tuple[str, str, int, list[dict]]]:
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


def mapped_strategies(entry: dict) -> list[str]:
    """The strategies whose score maps an entry holds, as saved with it."""
    return [str(n) for n in np.asarray(entry.get("map_strategies", np.array([], dtype=str))).reshape(-1)]


def _score_panel(ax, fig, entry: dict, index: int) -> None:
    """Strategy ``index``'s acquisition ranks (1 = acquired first), pixels ranked last by a
    non-finite score (degenerate or saturated) in grey, its picks ringed."""
    ranks = np.asarray(entry["ranks"][index], dtype=np.float64)
    last = ~np.isfinite(np.asarray(entry["scores"][index], dtype=np.float64))
    cmap = matplotlib.colormaps["magma"].with_extremes(bad=DEGENERATE_COLOUR)
    im = ax.imshow(np.where(last, np.nan, ranks), cmap=cmap, vmin=0.0, vmax=1.0, interpolation="nearest")
    bar = fig.colorbar(im, ax=ax, fraction=0.046, pad=0.02)
    bar.ax.tick_params(labelsize=6.5)
    picks = np.asarray(entry["picks"][index], dtype=int).reshape(-1, 2)
    if len(picks):  # a black ring under a bright green one: visible on dark and light colours
        ax.scatter(picks[:, 1], picks[:, 0], s=70, facecolors="none", edgecolors="black", linewidths=2.6)
        ax.scatter(picks[:, 1], picks[:, 0], s=70, facecolors="none", edgecolors="#39ff14", linewidths=1.3)


def uncertainty_maps(dataset: str, model: str, cycle: int, rows: list[dict], path: Path) -> Path:
    """One figure: a row per saved validation image of one run at one cycle, a column per strategy
    saved with the maps."""
    rows = sorted(rows, key=lambda m: m["order"])[:MAX_MAP_IMAGES]
    entries = [_load_map(m["file"]) for m in rows]
    names = mapped_strategies(entries[0])
    h, w = entries[0]["gt"].shape
    panel, columns = 2.6, 3 + len(names)
    fig, axes = plt.subplots(len(entries), columns, squeeze=False, layout="constrained",
                             figsize=(panel * columns + 0.6, panel * h / w * len(entries) + 1.6))
    present = set()
    for r, entry in enumerate(entries):
        palette = np.asarray(entry["palette"], dtype=np.uint8).reshape(-1, 3)
        gt, pred = np.asarray(entry["gt"]), np.asarray(entry["pred"])
        present |= set(np.unique(gt).tolist()) | set(np.unique(pred).tolist())
        for ax, img in zip(axes[r, :3], [entry["image"], _colour(gt, palette), _colour(pred, palette)]):
            ax.imshow(img, interpolation="nearest")
        for index, ax in enumerate(axes[r, 3:]):
            _score_panel(ax, fig, entry, index)
        axes[r, 0].set_ylabel(f"val image {entry['image_id']}", fontsize=9)
    for ax, title in zip(axes[0], ["image", "ground truth", "prediction"] + [f"{n}: acquisition rank" for n in names]):
        ax.set_title(title, fontsize=9)
    for ax in axes.flat:
        ax.set_xticks([])
        ax.set_yticks([])
    _class_legend(fig, entries[0], present)
    strategy = str(entries[0].get("strategy", rows[0]["strategy"]))
    fig.suptitle(f"{dataset} / {model}: uncertainty maps at cycle {cycle} (run {rows[0]['run']}, strategy "
                 f"{strategy})\ncolour: each strategy's acquisition rank of the pixel (1 = acquired first); green "
                 "rings: the pixels it would pick; grey = ranked last by a non-finite score (degenerate or "
                 "saturated)", fontsize=10)
    return save(fig, path)


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
