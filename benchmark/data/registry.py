"""The datasets the benchmark knows by name, and the contract each adapter fulfils.

A ``DatasetSpec`` says, for one dataset, what its classes and palette are, how to build mmseg's
dataset for a split of a native on-disk layout (``dataset_cfg``) and how to verify that layout
before any training starts (``check``). The harness only ever talks to this contract.
"""
from __future__ import annotations

from pathlib import Path

from benchmark.errors import UsageError

_DATASETS: dict[str, "DatasetSpec"] = {}


class DatasetSpec:
    """One dataset: its name, classes, palette, mmseg dataset config and layout check."""

    name: str = ""
    classes: tuple[str, ...] = ()
    palette: tuple[tuple[int, int, int], ...] = ()
    description: str = ""
    # the official splits' image counts, e.g. {"train": 2975, "val": 500} (empty: none published);
    # used to plan (the GPU check's estimate of the paper protocol), never to check a data root
    split_images: dict = {}

    def dataset_cfg(self, root: str | Path, split: str) -> dict:  # pragma: no cover - abstract
        """mmseg dataset config (without pipeline) for ``split`` ('train' or 'val') under ``root``."""
        raise NotImplementedError

    def check(self, root: str | Path, max_label_files: int | None = None):  # pragma: no cover
        """Verify the native layout under ``root``; return a ``LayoutReport`` or raise UsageError."""
        raise NotImplementedError


def register_dataset(spec_cls: type[DatasetSpec]) -> type[DatasetSpec]:
    """Class decorator: register one instance of ``spec_cls`` under its ``name``."""
    spec = spec_cls()
    if not spec.name:
        raise ValueError(f"{spec_cls.__name__} has no name")
    _DATASETS[spec.name] = spec
    return spec_cls


def _load_builtin() -> None:
    # importing the adapter modules registers them (each ends with @register_dataset)
    import importlib

    for module in ("synthetic", "cityscapes", "camvid", "ade20k", "voc2012"):
        try:
            importlib.import_module(f"benchmark.data.{module}")
        except ModuleNotFoundError as err:
            if err.name != f"benchmark.data.{module}":
                raise


def dataset_names() -> list[str]:
    _load_builtin()
    return sorted(_DATASETS)


def get_dataset(name: str) -> DatasetSpec:
    _load_builtin()
    if name not in _DATASETS:
        raise UsageError(f"unknown dataset {name!r}; choose one of: {', '.join(sorted(_DATASETS))}")
    return _DATASETS[name]
