"""Superpixels of the pool images (scikit-image's SLIC or Felzenszwalb-Huttenlocher), computed once
per image with the run's stated settings and cached beside the dataset cache.

A map is int32 ``[H, W]`` of region ids ``0 .. R-1`` (consecutive) at the label map's resolution,
computed from the image file as it lies on disk. Both algorithms are deterministic for a given
image and settings (SLIC places its initial centres on a regular grid; Felzenszwalb's graph
segmentation draws nothing at random), so no seed is needed and two processes compute the same map.
The cache key holds everything a map depends on: the algorithm and its parameters, scikit-image's
version, and the image file (absolute path, size, modification time); an entry can be deleted at
any time and is recomputed. Location: ``<dataset cache>/superpixels/`` (``$BENCHMARK_CACHE``, else
``~/.cache/al-seg-benchmark``).
"""
from __future__ import annotations

import hashlib
import io
import json
import os
from collections import OrderedDict
from pathlib import Path

import numpy as np
from PIL import Image

from benchmark.errors import UsageError
from benchmark.records.fileio import write_bytes_atomic

MAP_VERSION = 1  # bump when the way a map is computed changes
MAP_KEYS = ("algorithm", "region_pixels", "compactness", "sigma", "felzenszwalb_scale", "min_size")


def skimage_segmentation():
    """scikit-image's segmentation module, or a UsageError saying how to install it."""
    try:
        from skimage import segmentation
    except ImportError:
        raise UsageError("--unit superpixel needs scikit-image: pip install scikit-image") from None
    return segmentation


def compute_superpixels(rgb: np.ndarray, settings: dict) -> np.ndarray:
    """Region ids ``[H, W]`` (int32, consecutive from 0) of an RGB image ``[H, W, 3]`` (uint8)."""
    segmentation = skimage_segmentation()
    height, width = rgb.shape[:2]
    if settings["algorithm"] == "slic":
        n_segments = max(1, round(height * width / float(settings["region_pixels"])))
        labels = segmentation.slic(rgb, n_segments=n_segments, compactness=float(settings["compactness"]),
                                   sigma=float(settings["sigma"]), start_label=0, channel_axis=-1)
    elif settings["algorithm"] == "felzenszwalb":
        labels = segmentation.felzenszwalb(rgb, scale=float(settings["felzenszwalb_scale"]),
                                           sigma=float(settings["sigma"]), min_size=int(settings["min_size"]),
                                           channel_axis=-1)
    else:
        raise ValueError(f"unknown superpixel algorithm {settings['algorithm']!r}")
    _, consecutive = np.unique(labels, return_inverse=True)
    return consecutive.reshape(height, width).astype(np.int32)


def settings_digest(settings: dict) -> str:
    """What a map depends on besides the image: the algorithm's settings and scikit-image's version."""
    import skimage

    keys = {k: settings[k] for k in MAP_KEYS}
    text = json.dumps(dict(keys, version=MAP_VERSION, skimage=skimage.__version__), sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def image_key(img_path: str) -> str:
    """The cache name of an image file: its absolute path, size and modification time."""
    stat = os.stat(img_path)
    text = f"{os.path.abspath(img_path)}|{stat.st_size}|{stat.st_mtime_ns}"
    return hashlib.sha256(text.encode()).hexdigest()[:24]


def default_superpixel_cache() -> Path:
    from benchmark.data.synthetic import default_cache_dir

    return default_cache_dir() / "superpixels"


class SuperpixelMaps:
    """``maps(image_id)``: the superpixel map of a pool image, from the cache or computed and cached.

    ``img_paths[image_id]`` is the image file, ``shapes[image_id]`` its label map's shape (a map
    must have it). The last few maps are kept in memory.
    """

    KEEP = 16

    def __init__(self, settings: dict, img_paths: dict, shapes: dict, cache_root: Path | None = None):
        skimage_segmentation()  # a missing scikit-image: one line before anything is computed
        self.settings = dict(settings)
        self.img_paths, self.shapes = dict(img_paths), dict(shapes)
        self.folder = Path(cache_root or default_superpixel_cache()) / f"{settings['algorithm']}_{settings_digest(settings)}"
        self._kept: OrderedDict[int, np.ndarray] = OrderedDict()

    def __call__(self, image_id: int) -> np.ndarray:
        if image_id in self._kept:
            self._kept.move_to_end(image_id)
            return self._kept[image_id]
        regions = self._load_or_compute(image_id)
        self._kept[image_id] = regions
        if len(self._kept) > self.KEEP:
            self._kept.popitem(last=False)
        return regions

    def _load_or_compute(self, image_id: int) -> np.ndarray:
        img_path = self.img_paths[image_id]
        shape = (self.shapes[image_id].height, self.shapes[image_id].width)
        path = self.folder / f"{image_key(img_path)}.npy"
        if path.is_file():
            try:
                regions = np.load(path, allow_pickle=False)
                if regions.shape == shape:
                    return regions
            except (OSError, ValueError):
                pass  # a damaged entry: computed again below
        with Image.open(img_path) as image:
            rgb = np.asarray(image.convert("RGB"), dtype=np.uint8)
        if rgb.shape[:2] != shape:
            raise UsageError(f"image {img_path} is {rgb.shape[1]}x{rgb.shape[0]} but its label map is "
                             f"{shape[1]}x{shape[0]}: superpixels need both at one size; fix the dataset")
        regions = compute_superpixels(rgb, self.settings)
        buffer = io.BytesIO()
        np.save(buffer, regions, allow_pickle=False)
        try:
            write_bytes_atomic(path, buffer.getvalue())
        except OSError:
            pass  # an unwritable cache: the map is still used, only not kept
        return regions
