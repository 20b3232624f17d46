"""ADE20K (SceneParsing, 150 classes) in its native layout, through mmseg's ``ADE20KDataset``.

``--data-root`` points at ``ADEChallengeData2016/`` (what ADEChallengeData2016.zip unpacks into;
its parent folder is accepted too)::

    <root>/images/training/ADE_train_*.jpg          <root>/annotations/training/ADE_train_*.png
    <root>/images/validation/ADE_val_*.jpg          <root>/annotations/validation/ADE_val_*.png

An annotation holds 0 for "other" (not one of the 150 classes) and 1..150 for the classes. As in
mmseg (``reduce_zero_label=True``), 0 becomes the ignore index 255 and 1..150 become 0..149.
Training uses the 20210 ``training`` images, evaluation the 2000 ``validation`` images. (The full
ADE20K release, ADE20K_2021_17_01 with its 3000+ classes, is a different layout and not read.)
"""
from __future__ import annotations

from pathlib import Path

from mmseg.datasets import ADE20KDataset

from benchmark.data.check import LayoutReport, SplitLayout, check_layout, resolve_root
from benchmark.data.registry import DatasetSpec, register_dataset

FOLDERS = {"train": "training", "val": "validation"}
EXPECTED = ("images/{training,validation}/*.jpg and annotations/{training,validation}/*.png "
            "(the ADEChallengeData2016 folder)")


@register_dataset
class ADE20KSpec(DatasetSpec):
    name = "ade20k"
    classes = tuple(ADE20KDataset.METAINFO["classes"])
    palette = tuple(tuple(p) for p in ADE20KDataset.METAINFO["palette"])
    split_images = {"train": 20210, "val": 2000}
    description = (f"ADE20K SceneParsing, 150 classes ({split_images['train']} train / "
                   f"{split_images['val']} val images)")

    def locate(self, root) -> Path:
        """The folder of the layout: ``root`` itself or ``ADEChallengeData2016/`` in it."""
        return resolve_root(self.name, root, ("ADEChallengeData2016",),
                            ("images/training", "images/validation", "annotations/training",
                             "annotations/validation"), EXPECTED)

    def dataset_cfg(self, root, split: str) -> dict:
        folder = FOLDERS[split]
        return dict(type="ADE20KDataset", data_root=str(self.locate(root)), reduce_zero_label=True,
                    data_prefix=dict(img_path=f"images/{folder}", seg_map_path=f"annotations/{folder}"))

    def check(self, root, max_label_files: int | None = None) -> LayoutReport:
        layouts = [SplitLayout(split, f"images/{folder}", f"annotations/{folder}", ".jpg", ".png")
                   for split, folder in FOLDERS.items()]
        report = check_layout(self.name, self.locate(root), self.classes, layouts,
                              reduce_zero_label=True, max_label_files=max_label_files)
        report.ignore_name = 'other (0, read as 255)'
        return report
