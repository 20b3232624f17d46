"""The files of one run, ``<out>/runs/<run_id>/``, written atomically (a killed process never
leaves half a file)::

    config.json        resolved settings of the run (RunSpec + preset + library versions)
    images.csv         the training pool: image_id, img_path, seg_path, height, width
    selections.csv     every click: cycle, image_id, y, x, label
    regions.csv        --unit superpixel: every region query (cycle, image_id, region, y, x, pixels);
    regions/cycle_KK.npz   ... and the pixels each labelled (image_id, region, y, x)
    cycles.csv         this run's completed cycles (the resume point)
    class_iou.csv      this run's per-class IoU
    maps/*.npz         MC score maps of a few validation images per cycle (for the figures)
    model_state/*.pt   weights per cycle with --retrain finetune (plain tensors)
    train_logs/        mmengine's logs of each cycle's training
    error.log          the traceback of the last failed attempt, if one failed
    status.json        what the last process did with the run (``benchmark.execution.run_state``)

This module only reads and writes what it is given: it opens no dataset file.
"""
from __future__ import annotations

import io
import json
from dataclasses import asdict
from pathlib import Path

import pandas as pd

from benchmark.records.fileio import write_bytes_atomic, write_csv_atomic, write_text_atomic
from benchmark.records.schema import (
    CLASS_IOU_COLUMNS,
    CYCLE_COLUMNS,
    KEY_COLUMNS,
    CycleRecord,
    rounded,
    sorted_by,
    with_schema,
)

MAP_FILE_PATTERN = "cycle_*_img_*.npz"


class RunFolder:
    """Reads and writes the files of one run (``runs/<run_id>/``)."""

    def __init__(self, path: Path):
        self.path = Path(path)

    @property
    def run_id(self) -> str:
        return self.path.name

    def exists(self) -> bool:
        return (self.path / "config.json").exists()

    # -- config and pool ---------------------------------------------------------------------
    def write_config(self, config: dict) -> None:
        write_text_atomic(self.path / "config.json", json.dumps(config, indent=2, sort_keys=True) + "\n")

    def write_images(self, frame: pd.DataFrame) -> None:
        write_csv_atomic(frame, self.path / "images.csv")

    # -- clicks ------------------------------------------------------------------------------
    def read_selections(self) -> pd.DataFrame | None:
        path = self.path / "selections.csv"
        return pd.read_csv(path) if path.exists() else None

    def write_selections(self, frame: pd.DataFrame) -> None:
        write_csv_atomic(frame, self.path / "selections.csv")

    # -- region queries (--unit superpixel) ----------------------------------------------------
    def read_region_queries(self) -> pd.DataFrame | None:
        path = self.path / "regions.csv"
        return pd.read_csv(path) if path.exists() else None

    def read_region_members(self, cycle: int) -> dict | None:
        """The pixels the region queries of ``cycle`` labelled: arrays image_id, region, y, x."""
        import numpy as np

        path = self.path / "regions" / f"cycle_{cycle:02d}.npz"
        if not path.exists():
            return None
        with np.load(path, allow_pickle=False) as saved:
            return {k: saved[k] for k in saved.files}

    def write_region_queries(self, ledger: pd.DataFrame, cycle: int, members: dict) -> None:
        """``regions/cycle_KK.npz`` (``members``: the pixels of ``cycle``'s queries), then regions.csv."""
        import numpy as np

        buffer = io.BytesIO()
        np.savez_compressed(buffer, **members)
        write_bytes_atomic(self.path / "regions" / f"cycle_{cycle:02d}.npz", buffer.getvalue())
        write_csv_atomic(ledger, self.path / "regions.csv")

    # -- per-cycle results -------------------------------------------------------------------
    def read_cycles(self) -> pd.DataFrame:
        path = self.path / "cycles.csv"
        return with_schema(pd.read_csv(path), CYCLE_COLUMNS) if path.exists() else pd.DataFrame(columns=CYCLE_COLUMNS)

    def read_class_iou(self) -> pd.DataFrame:
        path = self.path / "class_iou.csv"
        return (with_schema(pd.read_csv(path), CLASS_IOU_COLUMNS) if path.exists()
                else pd.DataFrame(columns=CLASS_IOU_COLUMNS))

    def completed_cycles(self) -> int:
        return len(self.read_cycles())

    def append_cycle(self, record: CycleRecord, class_iou: dict[str, float]) -> None:
        """Add one completed cycle; class IoU first, so cycles.csv is the commit point."""
        keys = {k: getattr(record, k) for k in KEY_COLUMNS}
        ious = pd.DataFrame([{**keys, "class": name, "iou": iou} for name, iou in class_iou.items()],
                            columns=CLASS_IOU_COLUMNS)
        old_iou = self.read_class_iou()
        old_iou = old_iou[old_iou["cycle"] != record.cycle]
        write_csv_atomic(rounded(pd.concat([old_iou, ious], ignore_index=True)), self.path / "class_iou.csv")
        old = self.read_cycles()
        old = old[old["cycle"] != record.cycle]
        rows = pd.concat([old, pd.DataFrame([asdict(record)])], ignore_index=True)
        write_csv_atomic(rounded(sorted_by(rows[CYCLE_COLUMNS], KEY_COLUMNS)), self.path / "cycles.csv")

    # -- model weights (--retrain finetune) --------------------------------------------------
    def save_model_state(self, cycle: int, state: dict) -> None:
        import torch

        buffer = io.BytesIO()
        torch.save(state, buffer)
        write_bytes_atomic(self.path / "model_state" / f"cycle_{cycle:02d}.pt", buffer.getvalue())

    def load_model_state(self, cycle: int) -> dict:
        import torch

        return torch.load(self.path / "model_state" / f"cycle_{cycle:02d}.pt", map_location="cpu",
                          weights_only=True)

    # -- failures ----------------------------------------------------------------------------
    def write_error(self, text: str) -> Path:
        """Keep the traceback of a failed attempt (``error.log``); returns its path."""
        path = self.path / "error.log"
        write_text_atomic(path, text)
        return path

    # -- state of the last attempt (benchmark.execution.run_state) -----------------------------------
    def write_status(self, status: dict) -> None:
        write_text_atomic(self.path / "status.json", json.dumps(status, indent=2, sort_keys=True) + "\n")

    def read_status(self) -> dict | None:
        """The run's status.json, or None when there is none (or it cannot be read)."""
        try:
            return json.loads((self.path / "status.json").read_text())
        except (OSError, ValueError):
            return None

    def read_config(self) -> dict | None:
        try:
            return json.loads((self.path / "config.json").read_text())
        except (OSError, ValueError):
            return None

    def last_error_line(self) -> str | None:
        """The last non-empty line of error.log (the exception of the last failed attempt)."""
        try:
            lines = [line for line in (self.path / "error.log").read_text().splitlines() if line.strip()]
        except OSError:
            return None
        return lines[-1].strip() if lines else None

    # -- uncertainty maps --------------------------------------------------------------------
    def write_maps(self, cycle: int, maps: list[dict]) -> None:
        """One ``maps/cycle_KK_img_I.npz`` per entry; each entry's arrays are saved as they are."""
        import numpy as np

        for entry in maps:
            buffer = io.BytesIO()
            np.savez_compressed(buffer, cycle=cycle, **entry)
            name = f"cycle_{cycle:02d}_img_{entry['image_id']}.npz"
            write_bytes_atomic(self.path / "maps" / name, buffer.getvalue())

    def map_files(self) -> list[Path]:
        return sorted((self.path / "maps").glob(MAP_FILE_PATTERN))


class FollowerFolder(RunFolder):
    """A run folder as a rank other than 0 sees it (``--gpus-per-run``): it reads what rank 0
    wrote and writes nothing."""

    def _ignore(self, *args, **kwargs) -> None:
        return None

    write_config = write_images = write_selections = append_cycle = save_model_state = _ignore
    write_status = write_maps = write_region_queries = _ignore

    def write_error(self, text: str) -> Path:
        return self.path / "error.log"
