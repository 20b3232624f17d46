"""CamVid (11 classes plus void) in the SegNet split layout, through our ``CamVidDataset``.

mmseg has no CamVid dataset, so this module registers one in mmseg's ``DATASETS``. ``--data-root``
points at the folder that holds the six split folders (the ``CamVid/`` folder of the SegNet
tutorial; its parent is accepted too)::

    <root>/train/*.png      <root>/trainannot/*.png     (367 images)
    <root>/val/*.png        <root>/valannot/*.png       (101 images)
    <root>/test/*.png       <root>/testannot/*.png      (233 images, checked if present, not used)

Images are 480x360 RGB PNGs; an annotation has the image's file name and holds one class id per
pixel: 0..10 for the 11 classes below and 11 for void. Void is not a class: the dataset's
``label_map`` sends 11 to the ignore index 255, so mmseg's ``LoadAnnotations`` (dense labels,
evaluation, and the oracle that answers the clicks) never sees an 11. Training uses ``train``,
evaluation ``val`` (the paper does not say which CamVid split it evaluates on; ``val`` keeps the
train/val convention of the other three datasets).
"""
from __future__ import annotations

from pathlib import Path

from mmseg.datasets import BaseSegDataset
from mmseg.registry import DATASETS

from benchmark.data.check import LayoutReport, SplitLayout, check_layout, resolve_root
from benchmark.data.label_store import IGNORE_INDEX
from benchmark.data.registry import DatasetSpec, register_dataset

CLASSES = ("sky", "building", "pole", "road", "pavement", "tree", "sign_symbol", "fence", "car",
           "pedestrian", "bicyclist")
PALETTE = ((128, 128, 128), (128, 0, 0), (192, 192, 128), (128, 64, 128), (60, 40, 222),
           (128, 128, 0), (192, 128, 128), (64, 64, 128), (64, 0, 128), (64, 64, 0), (0, 128, 192))
VOID = 11
SPLIT_FOLDERS = {"train": ("train", "trainannot"), "val": ("val", "valannot"),
                 "test": ("test", "testannot")}
EXPECTED = "train/, trainannot/, val/ and valannot/ (SegNet's CamVid layout, *.png in each)"


@DATASETS.register_module()
class CamVidDataset(BaseSegDataset):
    """CamVid, SegNet's 11-class version: ``<split>/*.png`` images, ``<split>annot/*.png`` ids.

    Annotation value 11 (void) is mapped to 255 through ``label_map``, which mmseg's
    ``LoadAnnotations`` applies to every label map it loads.
    """

    METAINFO = dict(classes=CLASSES, palette=[list(p) for p in PALETTE])

    def __init__(self, img_suffix=".png", seg_map_suffix=".png", **kwargs) -> None:
        super().__init__(img_suffix=img_suffix, seg_map_suffix=seg_map_suffix, **kwargs)

    @classmethod
    def get_label_map(cls, new_classes=None) -> dict:
        # mmseg's map for a class subset (or None), with void always sent to the ignore index
        label_map = dict(super().get_label_map(new_classes) or {})
        label_map[VOID] = IGNORE_INDEX
        return label_map


@register_dataset
class CamVidSpec(DatasetSpec):
    name = "camvid"
    classes = CLASSES
    palette = PALETTE
    split_images = {"train": 367, "val": 101}
    description = (f"CamVid, SegNet's 11 classes + void ({split_images['train']} train / "
                   f"{split_images['val']} val images)")

    def locate(self, root) -> Path:
        """The folder of the layout: ``root`` itself or the ``CamVid/`` folder in it."""
        return resolve_root(self.name, root, ("CamVid", "camvid"),
                            ("train", "trainannot", "val", "valannot"), EXPECTED)

    def dataset_cfg(self, root, split: str) -> dict:
        img_dir, seg_dir = SPLIT_FOLDERS[split]
        return dict(type="CamVidDataset", data_root=str(self.locate(root)),
                    data_prefix=dict(img_path=img_dir, seg_map_path=seg_dir))

    def check(self, root, max_label_files: int | None = None) -> LayoutReport:
        top = self.locate(root)
        splits = ["train", "val"]
        if (top / "test").is_dir() or (top / "testannot").is_dir():
            splits.append("test")
        layouts = [SplitLayout(split, *SPLIT_FOLDERS[split], ".png", ".png") for split in splits]
        report = check_layout(self.name, top, self.classes, layouts, ignore_values=(VOID, IGNORE_INDEX),
                              max_label_files=max_label_files)
        report.ignore_name = "void (11, read as 255)"
        if "test" in report.images:
            report.notes.append("the test split is checked but not used: training uses train, "
                                "evaluation val")
        return report
