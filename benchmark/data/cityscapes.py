"""Cityscapes (gtFine, 19 train ids) in its native layout, through mmseg's ``CityscapesDataset``.

``--data-root`` points at the folder that holds ``leftImg8bit/`` and ``gtFine/`` (the folder the
two official zips, leftImg8bit_trainvaltest.zip and gtFine_trainvaltest.zip, unpack into; a parent
folder holding ``cityscapes/`` is accepted too)::

    <root>/leftImg8bit/{train,val}/<city>/<city>_<seq>_<frame>_leftImg8bit.png
    <root>/gtFine/{train,val}/<city>/<city>_<seq>_<frame>_gtFine_labelTrainIds.png

Label maps are the 19 train ids (0..18) with 255 = ignore. The official download holds only
``*_gtFine_labelIds.png`` (the 34 raw ids); the train-id maps are made once with mmseg's
``tools/dataset_converters/cityscapes.py`` or cityscapesscripts' ``createTrainIdLabelImgs``.
Training uses the 2975 ``train`` images, evaluation the 500 ``val`` images (test labels are not
public).
"""
from __future__ import annotations

from pathlib import Path

from mmseg.datasets import CityscapesDataset

from benchmark.data.check import LayoutReport, SplitLayout, check_layout, resolve_root
from benchmark.data.registry import DatasetSpec, register_dataset
from benchmark.errors import UsageError

IMG_SUFFIX = "_leftImg8bit.png"
SEG_SUFFIX = "_gtFine_labelTrainIds.png"
EXPECTED = (f"leftImg8bit/{{train,val}}/<city>/*{IMG_SUFFIX} and "
            f"gtFine/{{train,val}}/<city>/*{SEG_SUFFIX}")


@register_dataset
class CityscapesSpec(DatasetSpec):
    name = "cityscapes"
    classes = tuple(CityscapesDataset.METAINFO["classes"])
    palette = tuple(tuple(p) for p in CityscapesDataset.METAINFO["palette"])
    split_images = {"train": 2975, "val": 500}
    description = (f"Cityscapes gtFine, 19 train ids ({split_images['train']} train / "
                   f"{split_images['val']} val images)")

    def locate(self, root) -> Path:
        """The folder of the layout: ``root`` itself or the ``cityscapes/`` folder in it."""
        return resolve_root(self.name, root, ("cityscapes",), ("leftImg8bit", "gtFine"), EXPECTED)

    def _layouts(self) -> list[SplitLayout]:
        return [SplitLayout(split, f"leftImg8bit/{split}", f"gtFine/{split}", IMG_SUFFIX, SEG_SUFFIX,
                            recursive=True) for split in ("train", "val")]

    def dataset_cfg(self, root, split: str) -> dict:
        return dict(type="CityscapesDataset", data_root=str(self.locate(root)),
                    data_prefix=dict(img_path=f"leftImg8bit/{split}", seg_map_path=f"gtFine/{split}"))

    def check(self, root, max_label_files: int | None = None) -> LayoutReport:
        top = self.locate(root)
        for split in ("train", "val"):
            _require_train_ids(top / "gtFine" / split)
        return check_layout(self.name, top, self.classes, self._layouts(),
                            max_label_files=max_label_files)


def _require_train_ids(folder: Path) -> None:
    """A clear message for the usual mistake: raw label ids present, train ids not made yet."""
    if not folder.is_dir() or next(folder.glob(f"*/*{SEG_SUFFIX}"), None) is not None:
        return
    if next(folder.glob("*/*_gtFine_labelIds.png"), None) is not None:
        raise UsageError(f"cityscapes: {folder} holds *_gtFine_labelIds.png but no *{SEG_SUFFIX}: "
                         f"make the 19-class train-id maps first with mmseg's "
                         f"tools/dataset_converters/cityscapes.py (or cityscapesscripts' "
                         f"createTrainIdLabelImgs)")
