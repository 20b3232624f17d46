"""Layout checks shared by every dataset adapter, and the rich summary they print.

Each adapter describes its native layout as a list of ``SplitLayout`` (where the images and label
maps of a split lie and how their names pair up); ``check_layout`` verifies it and returns a
``LayoutReport``. Every failure is a ``UsageError`` naming what was expected where.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image

from benchmark.errors import UsageError


@dataclass(frozen=True)
class SplitLayout:
    """One split: image folder and label folder (relative to the root) and how names pair.

    A label file is ``<stem><seg_suffix>`` in ``seg_dir`` for image ``<stem><img_suffix>`` in
    ``img_dir``. ``names`` (optional) restricts the split to a list of stems (VOC's split lists).
    """

    split: str
    img_dir: str
    seg_dir: str
    img_suffix: str
    seg_suffix: str
    recursive: bool = False
    names: tuple[str, ...] | None = None
    names_file: str | None = None


@dataclass
class LayoutReport:
    """What ``datasets check`` found: images per split, classes and a label histogram."""

    dataset: str
    root: Path
    classes: tuple[str, ...]
    images: dict[str, int]
    histogram: np.ndarray  # [num_classes] pixel counts over the sampled label files
    ignored_pixels: int
    label_files_read: int
    notes: list[str] = field(default_factory=list)
    ignore_name: str = "ignored (255)"  # the histogram row of ignored pixels


def resolve_root(dataset: str, root, candidates: tuple[str, ...], markers: tuple[str, ...],
                 expected: str) -> Path:
    """The top folder of a native layout: ``root`` itself or ``root/<candidate>``.

    The first of ``("",) + candidates`` below ``root`` that holds any of ``markers`` (paths
    relative to the layout's top folder) wins, so a partial layout is still found and then reported
    precisely by ``pair_split``. With no marker anywhere, one UsageError says what ``expected``
    layout --data-root must hold.
    """
    if root is None or str(root) == "":
        raise UsageError(f"{dataset}: --data-root is required: the folder that holds {expected}")
    root = Path(root).expanduser()
    if not root.is_dir():
        raise UsageError(f"{dataset}: data root {root} is not a folder; --data-root must point at "
                         f"the folder that holds {expected}")
    for candidate in ("",) + tuple(candidates):
        top = root / candidate if candidate else root
        if any((top / marker).exists() for marker in markers):
            return top
    looked = [str(root)] + [str(root / c) for c in candidates]
    where = looked[0] if len(looked) == 1 else f"{', '.join(looked[:-1])} or {looked[-1]}"
    raise UsageError(f"{dataset}: no {dataset} layout in {where}: --data-root must point at the "
                     f"folder that holds {expected}")


def _stems(folder: Path, suffix: str, recursive: bool) -> dict[str, Path]:
    pattern = f"**/*{suffix}" if recursive else f"*{suffix}"
    found = {}
    for path in sorted(folder.glob(pattern)):
        if path.is_file():
            rel = path.relative_to(folder).as_posix()
            found[rel[: -len(suffix)]] = path
    return found


def pair_split(root: Path, dataset: str, layout: SplitLayout) -> list[tuple[Path, Path]]:
    """(image, label) pairs of one split; UsageError for a missing folder or unpaired files."""
    img_dir, seg_dir = root / layout.img_dir, root / layout.seg_dir
    for folder, what in ((img_dir, "images"), (seg_dir, "label maps")):
        if not folder.is_dir():
            raise UsageError(f"{dataset}: expected the {layout.split} {what} in {folder}, which does not "
                             f"exist; point --data-root at the folder that holds {layout.img_dir} and "
                             f"{layout.seg_dir}")
    images = _stems(img_dir, layout.img_suffix, layout.recursive)
    labels = _stems(seg_dir, layout.seg_suffix, layout.recursive)
    if layout.names_file is not None:
        names_path = root / layout.names_file
        if not names_path.is_file():
            raise UsageError(f"{dataset}: expected the {layout.split} split list {names_path}; "
                             f"it does not exist")
        wanted = [line.strip() for line in names_path.read_text().splitlines() if line.strip()]
    else:
        wanted = sorted(images)
    if not wanted:
        raise UsageError(f"{dataset}: no *{layout.img_suffix} images in {img_dir} for the "
                         f"{layout.split} split; check --data-root")
    missing_img = [n for n in wanted if n not in images]
    if missing_img:
        raise UsageError(f"{dataset}: {len(missing_img)} {layout.split} images listed but missing, e.g. "
                         f"{img_dir / (missing_img[0] + layout.img_suffix)}")
    missing_seg = [n for n in wanted if n not in labels]
    if missing_seg:
        raise UsageError(f"{dataset}: {len(missing_seg)} {layout.split} images have no label map, e.g. "
                         f"{img_dir / (missing_seg[0] + layout.img_suffix)} needs "
                         f"{seg_dir / (missing_seg[0] + layout.seg_suffix)}")
    return [(images[n], labels[n]) for n in wanted]


def read_label(path: Path) -> np.ndarray:
    try:
        with Image.open(path) as img:
            return np.asarray(img)
    except Exception as err:  # unreadable or not an image
        raise UsageError(f"cannot read label map {path}: {err}; replace or remove the file") from None


def _check_same_size(dataset: str, img_path: Path, seg_path: Path, label_shape) -> None:
    """A label map must cover its image pixel for pixel (the clicks index both)."""
    try:
        with Image.open(img_path) as img:  # reads the header only
            width, height = img.size
    except Exception as err:
        raise UsageError(f"{dataset}: cannot read image {img_path}: {err}; replace or remove "
                         f"the file") from None
    if (height, width) != tuple(label_shape[:2]):
        raise UsageError(f"{dataset}: label map {seg_path} is {label_shape[1]}x{label_shape[0]} but its "
                         f"image {img_path} is {width}x{height}; they must have the same size")


def label_histogram(dataset: str, pairs: list[tuple[Path, Path]], num_classes: int,
                    ignore_values: tuple[int, ...] = (255,), reduce_zero_label: bool = False,
                    max_files: int | None = None) -> tuple[np.ndarray, int, int]:
    """Class pixel counts over up to ``max_files`` label maps, evenly spaced over the split.

    Values are mapped as mmseg does (``reduce_zero_label``: 0 -> 255, v -> v - 1). A value that is
    neither a class nor ignored is an error naming the file and the allowed range.
    """
    if max_files is not None and max_files < len(pairs):
        index = np.linspace(0, len(pairs) - 1, max_files).round().astype(int)
        pairs = [pairs[i] for i in sorted(set(index.tolist()))]
    hist = np.zeros(num_classes, dtype=np.int64)
    ignored = 0
    for img_path, seg_path in pairs:
        label = read_label(seg_path)
        if label.ndim != 2:
            raise UsageError(f"{dataset}: label map {seg_path} has shape {label.shape}; expected a "
                             f"single-channel image of class ids (not a colour rendering)")
        _check_same_size(dataset, img_path, seg_path, label.shape)
        values = label.astype(np.int64)
        if reduce_zero_label:
            values = np.where(values == 0, 255, values - 1)
            values = np.where(values == 254, 255, values)
        bad = ~np.isin(values, np.arange(num_classes)) & ~np.isin(values, ignore_values)
        if bad.any():
            raw = np.unique(label[bad])[:5].tolist()
            if reduce_zero_label:  # stored as 1..num_classes, 0 = "other" (ignored)
                allowed = f"1..{num_classes} and the ignore value 0"
            else:
                allowed = f"0..{num_classes - 1} and the ignore value{'s' * (len(ignore_values) > 1)} " \
                          f"{', '.join(map(str, ignore_values))}"
            raise UsageError(f"{dataset}: label map {seg_path} holds values {raw}, outside the class "
                             f"ids {allowed}; is it the right label encoding?")
        counts = np.bincount(values[values < num_classes].ravel(), minlength=num_classes)
        hist += counts[:num_classes]
        ignored += int(np.isin(values, ignore_values).sum())
    return hist, ignored, len(pairs)


def check_layout(dataset: str, root, classes: tuple[str, ...], layouts: list[SplitLayout],
                 reduce_zero_label: bool = False, ignore_values: tuple[int, ...] = (255,),
                 max_label_files: int | None = None) -> LayoutReport:
    """Pair every split, read a sample of label maps, and summarise."""
    if root is None:
        raise UsageError(f"{dataset}: --data-root is required (the folder of the native layout)")
    root = Path(root).expanduser()
    if not root.is_dir():
        raise UsageError(f"{dataset}: data root {root} is not a folder; pass --data-root PATH to the "
                         f"dataset's top folder")
    images, hist, ignored, read = {}, np.zeros(len(classes), dtype=np.int64), 0, 0
    for layout in layouts:
        pairs = pair_split(root, dataset, layout)
        images[layout.split] = len(pairs)
        per_split = None if max_label_files is None else max(1, max_label_files // len(layouts))
        h, i, r = label_histogram(dataset, pairs, len(classes), ignore_values, reduce_zero_label, per_split)
        hist, ignored, read = hist + h, ignored + i, read + r
    return LayoutReport(dataset=dataset, root=root, classes=tuple(classes), images=images,
                        histogram=hist, ignored_pixels=ignored, label_files_read=read)


def print_report(report: LayoutReport, console) -> None:
    """A rich summary: images per split, then the class histogram of the sampled label maps."""
    from rich.table import Table

    console.print(f"[bold]{report.dataset}[/bold] at {report.root}: layout OK")
    splits = Table(title="images per split")
    splits.add_column("split")
    splits.add_column("images", justify="right")
    for split, count in report.images.items():
        splits.add_row(split, str(count))
    console.print(splits)
    total = int(report.histogram.sum()) + report.ignored_pixels
    classes = Table(title=f"pixel classes over {report.label_files_read} label maps")
    for col, justify in (("id", "right"), ("class", "left"), ("pixels", "right"), ("share", "right")):
        classes.add_column(col, justify=justify)
    for idx, (name, count) in enumerate(zip(report.classes, report.histogram)):
        classes.add_row(str(idx), name, str(int(count)), f"{100 * count / max(total, 1):.2f}%")
    classes.add_row("-", report.ignore_name, str(report.ignored_pixels),
                    f"{100 * report.ignored_pixels / max(total, 1):.2f}%")
    console.print(classes)
    for note in report.notes:
        console.print(f"note: {note}")
