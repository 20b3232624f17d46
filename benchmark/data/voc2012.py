"""PASCAL VOC 2012 segmentation (21 classes) in its native layout, through mmseg's
``PascalVOCDataset``.

``--data-root`` points at ``VOCdevkit/VOC2012`` (what VOCtrainval_11-May-2012.tar unpacks into;
``VOCdevkit/`` or the folder holding it are accepted too)::

    <root>/JPEGImages/<name>.jpg
    <root>/SegmentationClass/<name>.png
    <root>/ImageSets/Segmentation/train.txt     (1464 names, one per line)
    <root>/ImageSets/Segmentation/val.txt       (1449 names)

A ``SegmentationClass`` PNG is palette-mode: its pixel values are the class ids 0..20 (0 =
background) and 255 on object boundaries and difficult regions, which is ignored. The colours are
only the palette; a PNG converted to RGB is refused. Training uses the ``train`` list, evaluation
the ``val`` list. JPEGImages holds many more images (detection only); only listed names are read.
The SBD-augmented set (SegmentationClassAug, 10582 images) is not used.
"""
from __future__ import annotations

from pathlib import Path

from mmseg.datasets import PascalVOCDataset

from benchmark.data.check import LayoutReport, SplitLayout, check_layout, resolve_root
from benchmark.data.registry import DatasetSpec, register_dataset

LIST_DIR = "ImageSets/Segmentation"
EXPECTED = ("JPEGImages/*.jpg, SegmentationClass/*.png and ImageSets/Segmentation/{train,val}.txt "
            "(the VOCdevkit/VOC2012 folder)")


@register_dataset
class VOC2012Spec(DatasetSpec):
    name = "voc2012"
    classes = tuple(PascalVOCDataset.METAINFO["classes"])
    palette = tuple(tuple(p) for p in PascalVOCDataset.METAINFO["palette"])
    split_images = {"train": 1464, "val": 1449}
    description = (f"PASCAL VOC 2012 segmentation, 21 classes ({split_images['train']} train / "
                   f"{split_images['val']} val images)")

    def locate(self, root) -> Path:
        """The folder of the layout: ``root`` itself, or ``VOC2012/`` or ``VOCdevkit/VOC2012/`` in it."""
        return resolve_root(self.name, root, ("VOC2012", "VOCdevkit/VOC2012"),
                            ("JPEGImages", "SegmentationClass", LIST_DIR), EXPECTED)

    def dataset_cfg(self, root, split: str) -> dict:
        return dict(type="PascalVOCDataset", data_root=str(self.locate(root)),
                    data_prefix=dict(img_path="JPEGImages", seg_map_path="SegmentationClass"),
                    ann_file=f"{LIST_DIR}/{split}.txt")

    def check(self, root, max_label_files: int | None = None) -> LayoutReport:
        layouts = [SplitLayout(split, "JPEGImages", "SegmentationClass", ".jpg", ".png",
                               names_file=f"{LIST_DIR}/{split}.txt") for split in ("train", "val")]
        report = check_layout(self.name, self.locate(root), self.classes, layouts,
                              max_label_files=max_label_files)
        report.ignore_name = "boundary / difficult (255)"
        return report
