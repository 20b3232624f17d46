"""Shared pieces of the perf suite: models from benchmark/mmseg_configs/models, an in-memory pool of random
images (what ``loop.acquire`` needs of a RunData, without disk I/O), timing and bandwidth."""
from __future__ import annotations

import statistics
import time
from dataclasses import dataclass
from typing import Callable

import torch

from benchmark.config.presets import CONFIG_DIR
from benchmark.config.run_spec import RunSpec
from benchmark.data.label_store import ImageShape
from benchmark.runtime.timing import synchronize  # noqa: F401  (re-exported for the perf sections)

MODEL_DIR = CONFIG_DIR / "models"


def register_mmseg() -> None:
    import mmseg.utils

    mmseg.utils.register_all_modules(init_default_scope=True)


def load_model(name: str, num_classes: int, device: str, seed: int = 0):
    """The segmentor of ``benchmark/mmseg_configs/models/<name>.py`` with ``num_classes`` outputs."""
    from mmengine.config import Config

    from benchmark.model.segmentor import build_model

    register_mmseg()
    cfg = Config.fromfile(str(MODEL_DIR / f"{name}.py"))
    return build_model(cfg, num_classes, seed, None, device)


class RandomPool:
    """``n`` random RGB images of one size, generated per batch from a seed (nothing kept)."""

    def __init__(self, n: int, height: int, width: int, seed: int = 0):
        self.n, self.height, self.width, self.seed = n, height, width, seed
        self.shapes = {i: ImageShape(height=height, width=width) for i in range(n)}

    def batch(self, indices) -> dict:
        from mmseg.structures import SegDataSample

        inputs, samples = [], []
        for i in indices:
            g = torch.Generator().manual_seed(self.seed * 1_000_003 + i)
            inputs.append(torch.randint(0, 256, (3, self.height, self.width), generator=g,
                                        dtype=torch.uint8))
            shape = (self.height, self.width)
            samples.append(SegDataSample(metainfo=dict(img_path=f"random_{i}.png", ori_shape=shape,
                                                       img_shape=shape)))
        return dict(inputs=inputs, data_samples=samples)

    def pool_loader(self, batch_size: int):
        for start in range(0, self.n, batch_size):
            yield self.batch(range(start, min(start + batch_size, self.n)))


def acquisition_spec(device: str, mc_samples: int, batch_size: int, pixels_per_image: int = 5,
                     seed: int = 0) -> RunSpec:
    """A RunSpec carrying what ``loop.acquire`` reads (the other fields are placeholders)."""
    return RunSpec(dataset="random", data_root="", model="", preset="", strategy="", seed=seed,
                   cycles=2, pixels_per_image=pixels_per_image, mc_samples=mc_samples,
                   train_iters=1, batch_size=batch_size, device=device, retrain="scratch",
                   oracle="ground-truth", out="", pretrained=None, amp=False, map_images=0,
                   map_strategies=(), preset_digest="", selection="topn", mc_dropout_rate=0.1,
                   mc_dropout_mask="channel", void_clicks="spend", record_pixels=0)


@dataclass
class Timing:
    seconds: list[float]

    @property
    def median(self) -> float:
        return statistics.median(self.seconds)


def timed(fn: Callable[[], object], repeats: int, device, warmup: int = 1) -> Timing:
    """Wall-clock seconds of ``fn()`` (GPU work included), ``repeats`` times after ``warmup``."""
    for _ in range(warmup):
        fn()
    synchronize(device)
    seconds = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        synchronize(device)
        seconds.append(time.perf_counter() - start)
    return Timing(seconds)


def copy_bandwidth(device, nbytes: int, repeats: int) -> float:
    """Bytes per second moved by a large tensor copy, counting the read and the write (STREAM's
    convention): the ceiling a streaming kernel can reach on this machine."""
    src = torch.ones(nbytes // 4, dtype=torch.float32, device=device)
    dst = torch.empty_like(src)
    timing = timed(lambda: dst.copy_(src), repeats, device, warmup=2)
    return 2 * src.numel() * 4 / timing.median


def machine_line(device: str) -> str:
    """The device's name and the versions that ran (``benchmark.runtime.environment``), the threads."""
    from benchmark.runtime.environment import provenance_line

    return f"{provenance_line(device)}; {torch.get_num_threads()} intra-op threads; device {device}"
