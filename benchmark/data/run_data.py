"""mmseg datasets and dataloaders for one run: the training pool, sparse-label training, validation.

All images and ground truth go through mmseg's own dataset classes and transforms; the only piece
of ours is ``LoadSparseLabels``, which turns the label store's clicks into a ground-truth map that
is 255 (ignored by the loss) everywhere but at the labelled pixels.
"""
from __future__ import annotations

import copy

import numpy as np
import pandas as pd
from mmcv.transforms import BaseTransform
from mmengine.dataset import InfiniteSampler, pseudo_collate
from mmseg.registry import DATASETS, TRANSFORMS
from PIL import Image
from torch.utils.data import DataLoader, Dataset

from benchmark.data.label_store import IGNORE_INDEX, PENDING, ImageShape, LabelStore
from benchmark.data.pipeline_steps import pipeline_steps
from benchmark.data.sparse_pipeline import PACK_META_KEYS, click_augment
from benchmark.errors import UsageError


@TRANSFORMS.register_module()
class LoadSparseLabels(BaseTransform):
    """Ground truth from clicks: ``results['clicks'] = (ys, xs, labels)``, 255 elsewhere; also
    ``clicks_total``, the clicks that can reach the loss (void clicks, label 255, cannot)."""

    def transform(self, results: dict) -> dict:
        height, width = results["ori_shape"][:2]
        gt = np.full((height, width), IGNORE_INDEX, dtype=np.uint8)
        ys, xs, labels = results["clicks"]
        gt[ys, xs] = labels
        results["gt_seg_map"] = gt
        results["clicks_total"] = int((np.asarray(labels) != IGNORE_INDEX).sum())
        results.setdefault("seg_fields", []).append("gt_seg_map")
        return results


def build_pipeline(steps: list[dict]):
    transforms = [TRANSFORMS.build(copy.deepcopy(step)) for step in steps]

    def apply(results):
        for transform in transforms:
            results = transform(results)
            if results is None:
                return None
        return results

    return apply


class ItemDataset(Dataset):
    """A fixed list of mmseg data-info dicts run through a pipeline (one item per image)."""

    def __init__(self, items: list[dict], pipeline: list[dict], metainfo: dict):
        self.items = items
        self.pipeline = build_pipeline(pipeline)
        self.metainfo = metainfo

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, index: int):
        return self.pipeline(copy.deepcopy(self.items[index]))


class RunData:
    """The datasets of one run, built once from a dataset spec, a data root and a preset."""

    def __init__(self, spec, data_root: str, preset):
        self.spec = spec
        self.preset = preset
        self.classes = tuple(spec.classes)
        self.metainfo = dict(classes=self.classes, palette=[list(p) for p in spec.palette])
        self.train = DATASETS.build({**spec.dataset_cfg(data_root, "train"), "pipeline": [],
                                     "serialize_data": False})
        self.val = DATASETS.build({**spec.dataset_cfg(data_root, "val"), "pipeline": [],
                                   "serialize_data": False})
        self.pool_items = [self.train.get_data_info(i) for i in range(len(self.train))]
        self.val_items = [self.val.get_data_info(i) for i in range(len(self.val))]
        self.shapes = {i: _label_shape(item) for i, item in enumerate(self.pool_items)}
        self.val_shapes = [_label_shape(item) for item in self.val_items]

    # -- the pool --------------------------------------------------------------------------
    @property
    def total_pixels(self) -> int:
        return sum(shape.pixels for shape in self.shapes.values())

    def images_frame(self) -> pd.DataFrame:
        return pd.DataFrame([dict(image_id=i, img_path=item["img_path"], seg_path=item["seg_map_path"],
                                  height=self.shapes[i].height, width=self.shapes[i].width)
                             for i, item in enumerate(self.pool_items)])

    @staticmethod
    def load_rgb(img_path: str) -> np.ndarray:
        """An image file as uint8 RGB [H, W, 3] (for the saved uncertainty maps)."""
        with Image.open(img_path) as image:
            return np.asarray(image.convert("RGB"), dtype=np.uint8)

    def class_pixel_counts(self) -> np.ndarray:
        """Ground-truth pixels per class over the whole pool (void left out); read once, kept."""
        if getattr(self, "_class_counts", None) is None:
            counts = np.zeros(len(self.classes), dtype=np.int64)
            for image_id in range(len(self.pool_items)):
                labels = self.ground_truth(image_id).reshape(-1)
                counts += np.bincount(labels[labels < len(self.classes)], minlength=len(self.classes))
            self._class_counts = counts
        return self._class_counts

    def ground_truth(self, image_id: int) -> np.ndarray:
        """The pool image's label map as mmseg's LoadAnnotations yields it (255 = ignore)."""
        results = build_pipeline([dict(type="LoadAnnotations")])(copy.deepcopy(self.pool_items[image_id]))
        return results["gt_seg_map"]

    # -- loaders ---------------------------------------------------------------------------
    def _test_steps(self, with_labels: bool) -> list[dict]:
        steps = [dict(type="LoadImageFromFile")] + pipeline_steps(self.preset, "test_resize")
        if with_labels:
            steps.append(dict(type="LoadAnnotations"))
        return steps + [dict(type="PackSegInputs")]

    def _train_steps(self, sparse: bool) -> list[dict]:
        """Dense labels: mmseg's pipeline as the preset says. Clicks: the click-aware version of the
        preset's augmentation (``benchmark.data.sparse_pipeline``) and the clicks-in-loss count."""
        augment = pipeline_steps(self.preset, "train_augment")
        if not sparse:
            return [dict(type="LoadImageFromFile"), dict(type="LoadAnnotations")] + augment + [
                dict(type="PackSegInputs")]
        return ([dict(type="LoadImageFromFile"), dict(type="LoadSparseLabels")] + click_augment(augment)
                + [dict(type="CountClicksInLoss"), dict(type="PackSegInputs", meta_keys=PACK_META_KEYS)])

    def check_pipelines(self) -> None:
        """Build every transform of every pipeline a run uses (raises what the builders raise)."""
        for steps in (self._train_steps(True), self._train_steps(False), self._test_steps(True)):
            build_pipeline(steps)

    def train_loader(self, store: LabelStore | None, batch_size: int, seed: int) -> DataLoader:
        """Sparse clicks from ``store``; ``store=None`` gives the dense (supervised) labels."""
        items = self.pool_items if store is None else click_items(self.pool_items, store)
        dataset = ItemDataset(items, self._train_steps(store is not None), self.metainfo)
        return DataLoader(dataset, batch_size=min(batch_size, len(dataset)),
                          sampler=InfiniteSampler(dataset, shuffle=True, seed=seed),
                          collate_fn=pseudo_collate, **self._worker_options(training=True))

    def pool_loader(self, batch_size: int, image_ids: list[int] | None = None) -> DataLoader:
        """The pool in order (only ``image_ids``, when given), in batches of equal-size images; the
        loader's ``batch_sampler`` holds each batch's image ids."""
        dataset = ItemDataset(self.pool_items, self._test_steps(False), self.metainfo)
        ids = list(range(len(self.pool_items))) if image_ids is None else list(image_ids)
        batches = same_size_batches([self.shapes[i] for i in ids], batch_size)
        return DataLoader(dataset, batch_sampler=[[ids[k] for k in batch] for batch in batches],
                          collate_fn=pseudo_collate, **self._worker_options())

    def val_loader(self, batch_size: int, limit: int | None = None, image_ids: list[int] | None = None) -> DataLoader:
        """The first ``limit`` validation images (all by default; only ``image_ids``, when given), in order."""
        items = self.val_items if limit is None else self.val_items[:limit]
        dataset = ItemDataset(items, self._test_steps(True), self.metainfo)
        ids = list(range(len(items))) if image_ids is None else list(image_ids)
        batches = same_size_batches([self.val_shapes[i] for i in ids], batch_size)
        return DataLoader(dataset, batch_sampler=[[ids[k] for k in batch] for batch in batches],
                          collate_fn=pseudo_collate, **self._worker_options())

    def _worker_options(self, training: bool = False) -> dict:
        """The preset's DataLoader settings: ``data.num_workers``, ``data.pin_memory`` (worth it on
        CUDA) and, for training loaders, ``data.persistent_workers`` (workers kept between epochs)."""
        data = self.preset.data
        workers = int(data.get("num_workers", 0))
        options = dict(num_workers=workers, pin_memory=bool(data.get("pin_memory", False)))
        if workers > 0:
            options["worker_init_fn"] = leave_job_signals_to_the_main_process
        if training and workers > 0:
            options["persistent_workers"] = bool(data.get("persistent_workers", False))
        return options


def leave_job_signals_to_the_main_process(worker_id: int) -> None:
    """In a DataLoader worker: ignore the requeue signal of a launched job (USR2, or
    ``$SUBMITIT_PREEMPT_SIGNAL``) and die on SIGTERM. Forked workers inherit submitit's handlers,
    and Slurm signals every process of the job: each worker would checkpoint and requeue the job
    too, racing the main process that does it once."""
    import os
    import signal

    name = "SIG" + os.environ.get("SUBMITIT_PREEMPT_SIGNAL", "USR2")
    if hasattr(signal, name):
        signal.signal(getattr(signal, name), signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)


def click_items(pool_items: list[dict], store: LabelStore) -> list[dict]:
    """The pool's data infos with their answered clicks as ``clicks = (ys, xs, labels)``; images
    without an answered click are left out (nothing of theirs would reach the loss)."""
    frame = store.frame[store.frame["label"] != PENDING]
    groups = dict(tuple(frame.groupby("image_id")))
    items = []
    for image_id, item in enumerate(pool_items):
        pts = groups.get(image_id)
        if pts is None or len(pts) == 0:
            continue
        items.append(dict(item, clicks=(pts["y"].to_numpy(), pts["x"].to_numpy(),
                                        pts["label"].to_numpy().astype(np.uint8))))
    return items


def same_size_batches(sizes: list, batch_size: int) -> list[list[int]]:
    """Consecutive indices, in order, cut into batches of at most ``batch_size`` equal sizes.

    mmseg's data preprocessor stacks a test batch only when its images share one size (ADE20K
    and VOC images vary), and the acquisition loop relies on the pool's order.
    """
    batches: list[list[int]] = []
    for index, size in enumerate(sizes):
        last = batches[-1] if batches else None
        if last is not None and len(last) < batch_size and sizes[last[0]] == size:
            last.append(index)
        else:
            batches.append([index])
    return batches


def _label_shape(item: dict) -> ImageShape:
    try:
        with Image.open(item["seg_map_path"]) as image:  # reads the header only
            width, height = image.size
    except (OSError, ValueError) as err:  # missing, truncated or not an image
        raise UsageError(f"cannot read the label file {item['seg_map_path']} ({type(err).__name__}: {err}): "
                         f"replace it or remove the image and its label from the dataset") from None
    return ImageShape(height=height, width=width)
