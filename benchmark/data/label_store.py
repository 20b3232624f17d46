"""The sparse label store (which pixels are labelled, with what) and the ground-truth oracle.

A labelled pixel is a (image_id, y, x) click with a label: a class id, the ignore index 255 (the
click cost budget but the ground truth says "ignore"), or PENDING (asked, not answered yet: an
external annotator has not replied). Each click remembers the cycle at whose start it was first
labelled (cycle 0: the initial random pixels).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Mapping

import numpy as np
import pandas as pd
import torch

from benchmark.records.schema import IGNORE_INDEX, PENDING, SELECTION_COLUMNS  # noqa: F401  (re-exported)


@dataclass(frozen=True)
class ImageShape:
    height: int
    width: int

    @property
    def pixels(self) -> int:
        return self.height * self.width


class LabelStore:
    """Per-image clicked pixels and their labels; the single source of training supervision."""

    def __init__(self, shapes: Mapping[int, ImageShape]):
        self.shapes = dict(shapes)
        self._frame = pd.DataFrame({c: pd.Series(dtype="int64") for c in SELECTION_COLUMNS})

    # -- state -------------------------------------------------------------------------------
    @property
    def frame(self) -> pd.DataFrame:
        """All clicks as a table with columns cycle, image_id, y, x, label (sorted)."""
        return self._frame

    @classmethod
    def from_frame(cls, shapes: Mapping[int, ImageShape], frame: pd.DataFrame) -> "LabelStore":
        store = cls(shapes)
        store._set(frame[SELECTION_COLUMNS].astype("int64"))
        return store

    def up_to_cycle(self, cycle: int) -> "LabelStore":
        """The store as it stood at the start of ``cycle`` (later clicks dropped)."""
        return LabelStore.from_frame(self.shapes, self._frame[self._frame["cycle"] <= cycle])

    def _set(self, frame: pd.DataFrame) -> None:
        frame = frame.sort_values(["cycle", "image_id", "y", "x"], kind="stable")
        dup = frame.duplicated(["image_id", "y", "x"])
        if dup.any():
            row = frame[dup].iloc[0]
            raise ValueError(f"pixel ({row.y}, {row.x}) of image {row.image_id} labelled twice")
        self._frame = frame.reset_index(drop=True)

    # -- queries -----------------------------------------------------------------------------
    @property
    def total_pixels(self) -> int:
        return sum(s.pixels for s in self.shapes.values())

    @property
    def labeled_pixels(self) -> int:
        return len(self._frame)

    @property
    def pending(self) -> pd.DataFrame:
        return self._frame[self._frame["label"] == PENDING]

    def points(self, image_id: int) -> pd.DataFrame:
        return self._frame[self._frame["image_id"] == image_id]

    def labelled_mask(self, image_id: int, device: torch.device | str = "cpu") -> torch.Tensor:
        """Boolean [H, W] mask of the pixels of ``image_id`` already clicked."""
        shape = self.shapes[image_id]
        mask = torch.zeros(shape.height, shape.width, dtype=torch.bool)
        pts = self.points(image_id)
        mask[torch.tensor(pts["y"].to_numpy()), torch.tensor(pts["x"].to_numpy())] = True
        return mask.to(device)

    # -- updates -----------------------------------------------------------------------------
    def with_clicks(self, cycle: int, picks: Mapping[int, np.ndarray],
                    labels: Mapping[int, np.ndarray]) -> "LabelStore":
        """A new store: this one plus ``picks`` labelled ``labels`` at ``cycle`` (this one unchanged)."""
        store = LabelStore.from_frame(self.shapes, self._frame)
        store.add(cycle, picks, labels)
        return store

    def add(self, cycle: int, picks: Mapping[int, np.ndarray], labels: Mapping[int, np.ndarray]):
        """Add clicks: ``picks[image_id]`` is an int array [k, 2] of (y, x), ``labels`` alike [k]."""
        parts = [self._frame]
        for image_id in sorted(picks):
            yx = np.asarray(picks[image_id], dtype=np.int64).reshape(-1, 2)
            part = pd.DataFrame({
                "cycle": np.full(len(yx), cycle, dtype=np.int64),
                "image_id": np.full(len(yx), image_id, dtype=np.int64),
                "y": yx[:, 0], "x": yx[:, 1],
                "label": np.asarray(labels[image_id], dtype=np.int64).reshape(-1),
            })
            parts.append(part)
        self._set(pd.concat(parts, ignore_index=True))


def seed_random_pixels(shapes: Mapping[int, ImageShape], n: int, generator: torch.Generator,
                       excluded: Callable[[int], torch.Tensor] | None = None) -> dict[int, np.ndarray]:
    """n distinct uniformly random pixels per image, as {image_id: [n, 2] (y, x)}; with
    ``excluded(image_id)`` (bool [H, W]) only among the pixels it leaves (fewer if it leaves fewer)."""
    picks = {}
    for image_id in sorted(shapes):
        shape = shapes[image_id]
        flat = torch.randperm(shape.pixels, generator=generator)
        if excluded is not None:
            flat = flat[~excluded(image_id).reshape(-1)[flat]]
        flat = flat[:n].numpy()
        picks[image_id] = np.stack([flat // shape.width, flat % shape.width], axis=1)
    return picks


class GroundTruthOracle:
    """Answers clicks by reading the ground truth, standing in for a human annotator.

    ``void_mask`` also tells, before any click, which pixels it would answer as void (255): what
    ``--void-clicks skip`` lets the selection pass over (an idealised annotator). The last few
    ground truths read are kept, so asking for an image's void pixels and then answering its clicks
    reads its label file once.
    """

    KEEP = 4  # ground truths kept in memory

    def __init__(self, load_ground_truth: Callable[[int], np.ndarray]):
        self._load_file = load_ground_truth
        self._kept: dict[int, np.ndarray] = {}

    def _load(self, image_id: int) -> np.ndarray:
        if image_id not in self._kept:
            if len(self._kept) >= self.KEEP:
                self._kept.pop(next(iter(self._kept)))
            self._kept[image_id] = self._load_file(image_id)
        return self._kept[image_id]

    def void_mask(self, image_id: int) -> torch.Tensor:
        """bool [H, W]: the pixels whose answer would be void."""
        return torch.from_numpy(self._load(image_id) == IGNORE_INDEX)

    def answer(self, picks: Mapping[int, np.ndarray]) -> dict[int, np.ndarray]:
        labels = {}
        for image_id, yx in picks.items():
            gt = self._load(image_id)
            yx = np.asarray(yx, dtype=np.int64).reshape(-1, 2)
            labels[image_id] = gt[yx[:, 0], yx[:, 1]].astype(np.int64)
        return labels


class PendingOracle:
    """Leaves every click unanswered (label -1) for an external annotator to fill in."""

    def answer(self, picks: Mapping[int, np.ndarray]) -> dict[int, np.ndarray]:
        return {i: np.full(len(np.asarray(yx).reshape(-1, 2)), PENDING, dtype=np.int64)
                for i, yx in picks.items()}
