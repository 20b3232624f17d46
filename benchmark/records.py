"""The output schema (CycleRecord fields == cycles.csv columns) and the run folders' files.

Layout under the output folder::

    runs/<run_id>/config.json       resolved settings of the run (RunSpec + model config)
    runs/<run_id>/images.csv        the training pool: image_id, img_path, seg_path, height, width
    runs/<run_id>/selections.csv    every click: cycle, image_id, y, x, label
    runs/<run_id>/cycles.csv        this run's completed cycles (the resume point)
    runs/<run_id>/class_iou.csv     this run's per-class IoU
    cycles.csv, class_iou.csv       the union of every run's tables, sorted by key
    leaderboard.csv                 built from cycles.csv by benchmark.leaderboard

Every file is written atomically, so a killed process never leaves half a table.
"""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass, fields
from pathlib import Path

import pandas as pd

from benchmark.fileio import write_bytes_atomic, write_csv_atomic, write_text_atomic

KEY_COLUMNS = ["dataset", "model", "strategy", "seed", "cycle"]
TIMING_COLUMNS = ["train_seconds", "inference_seconds", "acquisition_seconds"]


@dataclass(frozen=True)
class CycleRecord:
    """One row of cycles.csv: the state of one run after training at one cycle."""

    dataset: str
    model: str
    strategy: str
    seed: int
    cycle: int
    labeled_pixels: int
    labeled_fraction: float
    miou: float
    macc: float
    aacc: float
    epistemic: float
    aleatoric: float
    posterior: float
    train_seconds: float
    inference_seconds: float
    acquisition_seconds: float


CYCLE_COLUMNS = [f.name for f in fields(CycleRecord)]
CLASS_IOU_COLUMNS = KEY_COLUMNS + ["class", "iou"]


def _sorted(frame: pd.DataFrame, keys: list[str]) -> pd.DataFrame:
    return frame.sort_values(keys, kind="stable").reset_index(drop=True)


def _round(frame: pd.DataFrame) -> pd.DataFrame:
    """Fixed precision, so tables from identical runs are byte-identical."""
    out = frame.copy()
    for col in out.columns:
        if pd.api.types.is_float_dtype(out[col]):
            digits = 3 if col in TIMING_COLUMNS else 6
            out[col] = out[col].round(digits)
    return out


class _RunFolderBase:
    """Reads and writes the files of one run (``runs/<run_id>/``)."""

    def __init__(self, path: Path):
        self.path = Path(path)

    @property
    def run_id(self) -> str:
        return self.path.name

    def exists(self) -> bool:
        return (self.path / "config.json").exists()

    # config
    def read_config(self) -> dict:
        return json.loads((self.path / "config.json").read_text())

    def write_config(self, config: dict) -> None:
        write_text_atomic(self.path / "config.json", json.dumps(config, indent=2, sort_keys=True) + "\n")

    # pool and clicks
    def write_images(self, frame: pd.DataFrame) -> None:
        write_csv_atomic(frame, self.path / "images.csv")

    def read_selections(self) -> pd.DataFrame | None:
        path = self.path / "selections.csv"
        return pd.read_csv(path) if path.exists() else None

    def write_selections(self, frame: pd.DataFrame) -> None:
        write_csv_atomic(frame, self.path / "selections.csv")

    # per-cycle results
    def read_cycles(self) -> pd.DataFrame:
        path = self.path / "cycles.csv"
        return pd.read_csv(path) if path.exists() else pd.DataFrame(columns=CYCLE_COLUMNS)

    def read_class_iou(self) -> pd.DataFrame:
        path = self.path / "class_iou.csv"
        return pd.read_csv(path) if path.exists() else pd.DataFrame(columns=CLASS_IOU_COLUMNS)

    def completed_cycles(self) -> int:
        return len(self.read_cycles())

    def append_cycle(self, record: CycleRecord, class_iou: dict[str, float]) -> None:
        """Add one completed cycle; class IoU first, so cycles.csv is the commit point."""
        keys = {k: getattr(record, k) for k in KEY_COLUMNS}
        ious = pd.DataFrame([{**keys, "class": name, "iou": iou} for name, iou in class_iou.items()],
                            columns=CLASS_IOU_COLUMNS)
        old_iou = self.read_class_iou()
        old_iou = old_iou[old_iou["cycle"] != record.cycle]
        write_csv_atomic(_round(pd.concat([old_iou, ious], ignore_index=True)),
                         self.path / "class_iou.csv")
        old = self.read_cycles()
        old = old[old["cycle"] != record.cycle]
        rows = pd.concat([old, pd.DataFrame([asdict(record)])], ignore_index=True)
        write_csv_atomic(_round(_sorted(rows[CYCLE_COLUMNS], KEY_COLUMNS)), self.path / "cycles.csv")


def collect_tables(out_dir: Path) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Union of every run's cycles.csv and class_iou.csv under ``out_dir/runs``."""
    cycles, ious = [], []
    for run_dir in sorted((Path(out_dir) / "runs").glob("*")):
        run = RunFolder(run_dir)
        frame = run.read_cycles()
        if len(frame):
            cycles.append(frame)
            done = set(frame["cycle"])
            iou = run.read_class_iou()
            ious.append(iou[iou["cycle"].isin(done)])
    cycle_frame = pd.concat(cycles, ignore_index=True) if cycles else pd.DataFrame(columns=CYCLE_COLUMNS)
    iou_frame = pd.concat(ious, ignore_index=True) if ious else pd.DataFrame(columns=CLASS_IOU_COLUMNS)
    return (_sorted(cycle_frame[CYCLE_COLUMNS], KEY_COLUMNS),
            _sorted(iou_frame[CLASS_IOU_COLUMNS], KEY_COLUMNS + ["class"]))


def write_tables(out_dir: Path) -> pd.DataFrame:
    """Rewrite ``cycles.csv`` and ``class_iou.csv`` from the run folders; returns cycles."""
    cycles, ious = collect_tables(out_dir)
    write_csv_atomic(_round(cycles), Path(out_dir) / "cycles.csv")
    write_csv_atomic(_round(ious), Path(out_dir) / "class_iou.csv")
    return cycles


class ModelStateMixin:
    """Model weights for --retrain finetune: plain tensors, loadable with weights_only=True."""

    def save_model_state(self, cycle: int, state: dict) -> None:
        import io

        import torch

        buffer = io.BytesIO()
        torch.save(state, buffer)
        write_bytes_atomic(self.path / "model_state" / f"cycle_{cycle:02d}.pt", buffer.getvalue())

    def load_model_state(self, cycle: int) -> dict:
        import torch

        return torch.load(self.path / "model_state" / f"cycle_{cycle:02d}.pt", map_location="cpu",
                          weights_only=True)


class MapsMixin:
    """Saved MC statistics of a few validation images per cycle, for the uncertainty figures."""

    def write_maps(self, cycle: int, maps: list[dict], spec, data) -> None:
        import io

        import numpy as np
        from PIL import Image

        for entry in maps:
            with Image.open(entry["img_path"]) as image:
                rgb = np.asarray(image.convert("RGB"), dtype=np.uint8)
            arrays = {k: v for k, v in entry.items() if k.startswith(("score_", "picks_"))}
            buffer = io.BytesIO()
            np.savez_compressed(
                buffer, image=rgb, gt=entry["gt"], pred=entry["pred"], image_id=entry["image_id"],
                cycle=cycle, strategy=spec.strategy, classes=np.array(data.classes),
                palette=np.array(data.spec.palette, dtype=np.uint8), **arrays)
            name = f"cycle_{cycle:02d}_img_{entry['image_id']}.npz"
            write_bytes_atomic(self.path / "maps" / name, buffer.getvalue())


class RunFolder(_RunFolderBase, ModelStateMixin, MapsMixin):
    """Reads and writes the files of one run (``runs/<run_id>/``)."""


class CycleZeroCache:
    """Cycle 0 is the same for every strategy of a seed (same clicks, same initial weights, same
    schedule), so its trained weights and metrics are computed once and shared by the runs that
    have the same ``key`` (a digest of everything that determines them)."""

    def __init__(self, out_dir: Path, key: str):
        self.path = Path(out_dir) / "cache" / "cycle0" / f"{key}.pt"

    def load(self) -> dict | None:
        import torch

        if not self.path.exists():
            return None
        return torch.load(self.path, map_location="cpu", weights_only=True)

    def save(self, state: dict, metrics: dict, train_seconds: float) -> None:
        import io

        import torch

        buffer = io.BytesIO()
        torch.save(dict(state=state, metrics=metrics, train_seconds=train_seconds), buffer)
        write_bytes_atomic(self.path, buffer.getvalue())
