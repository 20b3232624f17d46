"""The embedded default: street-like scenes generated deterministically from a seed.

Not a photograph dataset and not a stand-in for Cityscapes' difficulty: a small, reproducible world
with the properties that make acquisition strategies differ. Ten classes with a long tail (person
and traffic sign cover well under 2% of pixels), thin structures (poles, lane markings), per-class
textures, per-image colour and illumination shifts, and sensor noise, so that road and sidewalk, or
building and wall, are locally confusable and the model's uncertainty has structure.

The scenes are written once, in mmseg's generic layout (``img_dir/{train,val}/*.png`` and
``ann_dir/{train,val}/*.png``, class ids 0..9, no ignore), and then loaded through mmseg's dataset
and transform pipeline exactly as a real dataset is.
"""
from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path

import numpy as np
from mmseg.datasets import BaseSegDataset
from mmseg.registry import DATASETS
from PIL import Image

from benchmark.data.check import LayoutReport, SplitLayout, check_layout
from benchmark.data.registry import DatasetSpec, register_dataset
from benchmark.errors import UsageError

GENERATOR_VERSION = 1
CLASSES = ("road", "sidewalk", "building", "wall", "vegetation", "sky", "car", "pole",
           "person", "traffic_sign", "lane_marking")
PALETTE = ((128, 64, 128), (244, 35, 232), (70, 70, 70), (102, 102, 156), (107, 142, 35),
           (70, 130, 180), (0, 0, 142), (153, 153, 153), (220, 20, 60), (220, 220, 0),
           (255, 255, 255))
(ROAD, SIDEWALK, BUILDING, WALL, VEGETATION, SKY, CAR, POLE, PERSON, SIGN, LANE) = range(len(CLASSES))


def default_cache_dir() -> Path:
    """Where generated data lives: ``$BENCHMARK_CACHE`` or the user's cache folder."""
    env = os.environ.get("BENCHMARK_CACHE")
    if env:
        return Path(env).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "al-seg-benchmark"


@DATASETS.register_module()
class SyntheticStreetDataset(BaseSegDataset):
    """mmseg dataset for the generated street scenes (PNG images and PNG class-id maps)."""

    METAINFO = dict(classes=CLASSES, palette=[list(p) for p in PALETTE])

    def __init__(self, img_suffix=".png", seg_map_suffix=".png", **kwargs) -> None:
        super().__init__(img_suffix=img_suffix, seg_map_suffix=seg_map_suffix, **kwargs)


# -- scene painting -------------------------------------------------------------------------
class _Canvas:
    """An RGB float image and its label map, painted back to front."""

    def __init__(self, height: int, width: int, rng: np.random.Generator):
        self.h, self.w, self.rng = height, width, rng
        self.rgb = np.zeros((height, width, 3), dtype=np.float64)
        self.label = np.zeros((height, width), dtype=np.uint8)
        self.yy, self.xx = np.mgrid[0:height, 0:width]

    def paint(self, mask: np.ndarray, cls: int, colour, texture: np.ndarray | float = 0.0) -> None:
        colour = np.asarray(colour, dtype=np.float64)
        tex = texture if np.ndim(texture) else np.full((self.h, self.w), float(texture))
        self.rgb[mask] = colour + tex[mask][:, None]
        self.label[mask] = cls

    def noise(self, scale: float) -> np.ndarray:
        return self.rng.normal(0.0, scale, size=(self.h, self.w))

    def blotches(self, scale: float, cell: int) -> np.ndarray:
        """Low-frequency texture: coarse noise upsampled by nearest neighbour."""
        coarse = self.rng.normal(0.0, scale, size=(self.h // cell + 2, self.w // cell + 2))
        return np.kron(coarse, np.ones((cell, cell)))[: self.h, : self.w]


def _jitter(rng, colour, amount):
    return np.clip(np.asarray(colour, float) + rng.normal(0, amount, 3), 0, 255)


def _paint_scene(c: _Canvas) -> None:
    rng, h, w, yy, xx = c.rng, c.h, c.w, c.yy, c.xx
    light = rng.uniform(0.75, 1.2)                      # global illumination
    horizon = int(h * rng.uniform(0.38, 0.52))
    # sky: vertical gradient
    sky = np.asarray([110, 160, 215]) * rng.uniform(0.85, 1.1)
    c.paint(yy < horizon, SKY, sky, texture=-30.0 * (1 - yy / max(horizon, 1)) + c.noise(3))
    # buildings and walls: blocks standing on the horizon, facades with window grids
    x = int(rng.integers(-w // 8, w // 10))
    while x < w:
        bw = int(rng.integers(w // 8, w // 3))
        top = int(horizon - rng.uniform(0.25, 0.95) * horizon)
        block = (xx >= x) & (xx < x + bw) & (yy >= top) & (yy < horizon + 2)
        if rng.random() < 0.25:   # a wall: low, plain, colour close to buildings
            top = int(horizon - rng.uniform(0.08, 0.22) * horizon)
            block = (xx >= x) & (xx < x + bw) & (yy >= top) & (yy < horizon + 2)
            c.paint(block, WALL, _jitter(rng, (105, 100, 110), 12), texture=c.noise(7))
        else:
            period = int(rng.integers(5, 9))
            windows = ((yy - top) % period < period // 2) & ((xx - x) % period < period // 2)
            tex = np.where(windows, -35.0 * rng.uniform(0.5, 1.2), 0.0) + c.noise(6)
            c.paint(block, BUILDING, _jitter(rng, (115, 105, 100), 18), texture=tex)
        x += bw + int(rng.integers(0, w // 10))
    # vegetation: blobs along the horizon with leafy texture
    for _ in range(int(rng.integers(1, 5))):
        cx, cy = rng.uniform(0, w), horizon - rng.uniform(0, 0.3) * horizon
        rx, ry = rng.uniform(w * 0.05, w * 0.15), rng.uniform(h * 0.06, h * 0.16)
        blob = ((xx - cx) / rx) ** 2 + ((yy - cy) / ry) ** 2 < 1 + 0.3 * c.noise(1)
        c.paint(blob, VEGETATION, _jitter(rng, (80, 120, 50), 12), texture=c.blotches(18, 2) + c.noise(10))
    # ground: road trapezoid between sidewalks; same grey family, different texture
    ground = yy >= horizon
    depth = np.clip((yy - horizon) / max(h - horizon, 1), 0, 1)
    centre = w * rng.uniform(0.4, 0.6)
    half = w * (0.04 + rng.uniform(0.32, 0.45) * depth)
    road = ground & (np.abs(xx - centre) < half)
    grey = rng.uniform(95, 125)
    tiles = (((yy - horizon) % 6 == 0) | (xx % 7 == 0)) * -14.0
    c.paint(ground & ~road, SIDEWALK, _jitter(rng, (grey + 12, grey + 8, grey + 10), 6),
            texture=tiles + c.noise(6))
    c.paint(road, ROAD, _jitter(rng, (grey, grey - 2, grey + 2), 6), texture=c.noise(9) + c.blotches(5, 4))
    # lane marking: thin dashes along the road's centre line
    dash = ((yy - horizon) // 4 % 2 == 0) & ground & (np.abs(xx - centre) < 0.6 + 1.2 * depth)
    c.paint(dash, LANE, _jitter(rng, (225, 225, 215), 10), texture=c.noise(8))
    # cars on the road, nearer = larger
    for _ in range(int(rng.integers(0, 4))):
        d = rng.uniform(0.15, 0.95)
        cy = horizon + d * (h - horizon)
        cw, ch = w * (0.06 + 0.16 * d), h * (0.04 + 0.12 * d)
        cx = centre + rng.uniform(-0.8, 0.8) * (w * (0.04 + 0.38 * d)) - cw / 2
        body = (xx >= cx) & (xx < cx + cw) & (yy >= cy - ch) & (yy < cy)
        c.paint(body, CAR, _jitter(rng, rng.choice([(30, 40, 120), (150, 30, 30), (200, 200, 205),
                                                    (40, 40, 45)]), 20), texture=c.noise(8))
    # poles (thin) with signs (rare) on the sidewalk edges
    for _ in range(int(rng.integers(1, 4))):
        px = int(rng.integers(0, w))
        base = int(horizon + rng.uniform(0.1, 0.8) * (h - horizon))
        top = int(base - rng.uniform(0.5, 0.9) * base)
        pw = 1 if base - horizon < (h - horizon) / 2 else 2
        pole = (xx >= px) & (xx < px + pw) & (yy >= top) & (yy < base)
        c.paint(pole, POLE, _jitter(rng, (95, 95, 100), 10), texture=c.noise(8))
        if rng.random() < 0.6:
            s = int(rng.integers(3, 6))
            sign = (np.abs(xx - px) <= s) & (yy >= top) & (yy < top + s + 1)
            c.paint(sign, SIGN, _jitter(rng, (210, 190, 40), 25), texture=c.noise(10))
    # people (rare): small bodies on the sidewalks, clothes in any colour
    for _ in range(int(rng.integers(0, 4))):
        d = rng.uniform(0.2, 1.0)
        fy = horizon + d * (h - horizon)
        ph, pw = h * (0.06 + 0.14 * d), max(1.5, w * (0.008 + 0.02 * d))
        side = rng.choice([-1, 1])
        fx = centre + side * (w * (0.04 + 0.4 * d) + rng.uniform(2, 10))
        body = (((xx - fx) / pw) ** 2 + ((yy - (fy - ph / 2)) / (ph / 2)) ** 2) < 1
        c.paint(body, PERSON, _jitter(rng, rng.uniform(30, 200, 3), 30), texture=c.noise(10))
    c.rgb = c.rgb * light + c.noise(4)[..., None]


def generate_scene(seed: int, index: int, height: int, width: int) -> tuple[np.ndarray, np.ndarray]:
    """One scene: (uint8 RGB image [H, W, 3], uint8 class ids [H, W])."""
    canvas = _Canvas(height, width, np.random.default_rng([seed, index]))
    _paint_scene(canvas)
    return np.clip(canvas.rgb, 0, 255).round().astype(np.uint8), canvas.label


def _params(seed, n_train, n_val, height, width) -> dict:
    return dict(version=GENERATOR_VERSION, seed=int(seed), n_train=int(n_train), n_val=int(n_val),
                height=int(height), width=int(width))


def ensure_synthetic(root, seed: int = 0, n_train: int = 40, n_val: int = 20,
                     height: int = 96, width: int = 128) -> Path:
    """The generated dataset under ``root`` (written once, atomically); returns its folder."""
    params = _params(seed, n_train, n_val, height, width)
    for key, value in params.items():
        if key != "seed" and value <= 0:
            raise UsageError(f"synthetic dataset: {key} must be positive, got {value}; fix the preset")
    if height < 32 or width < 32:
        raise UsageError(f"synthetic dataset: images of {height}x{width} are too small; use >= 32x32")
    root = Path(root).expanduser()
    folder = root / f"synthetic_v{GENERATOR_VERSION}_s{seed}_{n_train}-{n_val}_{height}x{width}"
    manifest = folder / "manifest.json"
    if manifest.is_file() and json.loads(manifest.read_text()) == params:
        return folder
    try:
        root.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=".synthetic-", dir=root))
    except OSError as err:
        raise UsageError(f"cannot write the generated dataset under {root}: {err.strerror}; set "
                         f"BENCHMARK_CACHE or --data-root to a writable folder") from None
    counts = dict(train=n_train, val=n_val)
    for split, count in counts.items():
        (tmp / "img_dir" / split).mkdir(parents=True)
        (tmp / "ann_dir" / split).mkdir(parents=True)
        for i in range(count):
            index = i if split == "train" else n_train + i
            rgb, label = generate_scene(seed, index, height, width)
            Image.fromarray(rgb).save(tmp / "img_dir" / split / f"{split}_{i:04d}.png")
            Image.fromarray(label).save(tmp / "ann_dir" / split / f"{split}_{i:04d}.png")
    (tmp / "manifest.json").write_text(json.dumps(params))
    if folder.exists():  # an older or partial copy: replace it whole
        shutil.rmtree(folder, ignore_errors=True)
    try:
        tmp.rename(folder)
    except OSError:  # another process won the race with identical content
        shutil.rmtree(tmp, ignore_errors=True)
    return folder


@register_dataset
class SyntheticSpec(DatasetSpec):
    name = "synthetic"
    classes = CLASSES
    palette = PALETTE
    description = "generated street-like scenes (embedded default; no download)"

    def _layouts(self) -> list[SplitLayout]:
        return [SplitLayout(split, f"img_dir/{split}", f"ann_dir/{split}", ".png", ".png")
                for split in ("train", "val")]

    def dataset_cfg(self, root, split: str) -> dict:
        return dict(type="SyntheticStreetDataset", data_root=str(root),
                    data_prefix=dict(img_path=f"img_dir/{split}", seg_map_path=f"ann_dir/{split}"))

    def check(self, root, max_label_files: int | None = None) -> LayoutReport:
        return check_layout(self.name, root, self.classes, self._layouts(),
                            max_label_files=max_label_files)
