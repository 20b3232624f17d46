"""Real-dataset adapters on tiny copies of their native layouts: layout checks, their messages, and
the label values mmseg's own loading yields through the datasets the adapters build."""
from __future__ import annotations

import io
import shutil

import numpy as np
import pytest
from mmengine.config import Config
from PIL import Image

from benchmark.config.presets import PRESET_DIR
from benchmark.data import dataset_names, get_dataset
from benchmark.data.check import print_report
from benchmark.data.run_data import RunData, same_size_batches
from benchmark.errors import UsageError
from tests.fixtures.native_layouts import N_TRAIN, N_VAL, make_native_layout

REAL = ("cityscapes", "camvid", "ade20k", "voc2012")
NUM_CLASSES = {"cityscapes": 19, "camvid": 11, "ade20k": 150, "voc2012": 21}


def expected_labels(name: str, raw: np.ndarray) -> np.ndarray:
    """What the benchmark must train and evaluate on, from a label file's raw values."""
    raw = raw.astype(np.int64)
    if name == "ade20k":  # reduce_zero_label: 0 (other) -> 255, v -> v - 1
        return np.where(raw == 0, 255, raw - 1)
    if name == "camvid":  # void 11 -> ignore
        return np.where(raw == 11, 255, raw)
    return raw


def run_data(name: str, root) -> RunData:
    preset = Config.fromfile(str(PRESET_DIR / f"{name}_deeplabv3plus.py"))
    preset.data.num_workers = 0
    return RunData(get_dataset(name), str(root), preset)


def raises(fn, *phrases) -> str:
    with pytest.raises(UsageError) as info:
        fn()
    message = str(info.value)
    assert "\n" not in message
    for phrase in phrases:
        assert phrase in message, message
    return message


# -- registry ---------------------------------------------------------------------------------
def test_every_real_dataset_is_registered():
    assert set(REAL) | {"synthetic"} <= set(dataset_names())


@pytest.mark.parametrize("name", REAL)
def test_classes_and_palette_are_the_datasets_own(name):
    spec = get_dataset(name)
    assert len(spec.classes) == NUM_CLASSES[name] == len(spec.palette)
    assert len(set(spec.classes)) == len(spec.classes)
    assert all(len(colour) == 3 for colour in spec.palette)


def test_camvid_is_an_mmseg_dataset_whose_void_is_ignored():
    from mmseg.registry import DATASETS

    camvid = DATASETS.get("CamVidDataset")
    assert camvid.METAINFO["classes"] == get_dataset("camvid").classes
    assert camvid.get_label_map() == {11: 255}
    subset = camvid.get_label_map(["road", "car"])
    assert subset[11] == 255 and subset[3] == 0 and subset[8] == 1 and subset[0] == 255


# -- layout checks on good layouts ------------------------------------------------------------
@pytest.mark.parametrize("name", REAL)
def test_check_reports_splits_classes_and_histogram(name, tmp_path):
    top = make_native_layout(name, tmp_path)
    report = get_dataset(name).check(top)
    assert report.root == top
    assert report.images["train"] == N_TRAIN and report.images["val"] == N_VAL
    assert len(report.classes) == NUM_CLASSES[name] == len(report.histogram)
    assert report.histogram.sum() > 0 and report.ignored_pixels > 0
    assert report.label_files_read == sum(report.images.values())


@pytest.mark.parametrize("name, parent", [
    ("cityscapes", "."), ("camvid", "."), ("ade20k", "."), ("voc2012", "."), ("voc2012", "VOCdevkit"),
])
def test_check_accepts_the_parent_folder_and_reports_the_resolved_root(name, parent, tmp_path):
    top = make_native_layout(name, tmp_path)
    report = get_dataset(name).check(tmp_path / parent)
    assert report.root == top


def test_check_samples_at_most_max_label_files(tmp_path):
    top = make_native_layout("cityscapes", tmp_path)
    assert get_dataset("cityscapes").check(top, max_label_files=2).label_files_read == 2


def test_camvid_checks_its_test_split_but_does_not_use_it(tmp_path):
    top = make_native_layout("camvid", tmp_path)
    report = get_dataset("camvid").check(top)
    assert report.images["test"] == 2
    assert any("test split" in note for note in report.notes)
    without = make_native_layout("camvid", tmp_path / "b", with_test=False)
    assert "test" not in get_dataset("camvid").check(without).images


def test_print_report_lists_splits_classes_and_ignored(tmp_path):
    from rich.console import Console

    report = get_dataset("camvid").check(make_native_layout("camvid", tmp_path))
    out = io.StringIO()
    print_report(report, Console(file=out, width=120))
    text = out.getvalue()
    for phrase in ("camvid", "layout OK", "train", "val", "bicyclist", "void (11, read as 255)"):
        assert phrase in text


# -- what mmseg loads through the adapters' datasets ------------------------------------------
@pytest.mark.parametrize("name", REAL)
def test_mmseg_dataset_pairs_the_native_files(name, tmp_path):
    data = run_data(name, make_native_layout(name, tmp_path))
    assert len(data.pool_items) == N_TRAIN and len(data.val_items) == N_VAL
    for item in data.pool_items + data.val_items:
        assert Image.open(item["img_path"]).size == Image.open(item["seg_map_path"]).size


@pytest.mark.parametrize("name", REAL)
def test_load_annotations_yields_class_ids_and_ignore(name, tmp_path):
    data = run_data(name, make_native_layout(name, tmp_path))
    for image_id, item in enumerate(data.pool_items):
        raw = np.asarray(Image.open(item["seg_map_path"]))
        gt = data.ground_truth(image_id)
        np.testing.assert_array_equal(gt, expected_labels(name, raw))
        assert set(np.unique(gt).tolist()) <= set(range(NUM_CLASSES[name])) | {255}


def test_ade20k_zero_is_ignored_and_classes_shift_down(tmp_path):
    data = run_data("ade20k", make_native_layout("ade20k", tmp_path))
    raw = np.asarray(Image.open(data.pool_items[0]["seg_map_path"]))
    gt = data.ground_truth(0)
    assert (gt[raw == 0] == 255).all() and (gt[raw == 1] == 0).all() and (gt[raw == 150] == 149).all()


def test_camvid_void_is_ignored(tmp_path):
    data = run_data("camvid", make_native_layout("camvid", tmp_path))
    raw = np.asarray(Image.open(data.pool_items[0]["seg_map_path"]))
    assert (raw == 11).any() and (data.ground_truth(0)[raw == 11] == 255).all()


def test_voc_palette_png_gives_indices_and_keeps_boundaries(tmp_path):
    data = run_data("voc2012", make_native_layout("voc2012", tmp_path))
    with Image.open(data.pool_items[0]["seg_map_path"]) as png:
        assert png.mode == "P"
        raw = np.asarray(png)
    gt = data.ground_truth(0)
    assert (raw == 255).any() and (gt[raw == 255] == 255).all()
    assert set(np.unique(gt).tolist()) <= set(range(21)) | {255}


def test_voc_reads_only_the_listed_images(tmp_path):
    data = run_data("voc2012", make_native_layout("voc2012", tmp_path))
    names = {item["img_path"].rsplit("/", 1)[-1] for item in data.pool_items + data.val_items}
    assert "2009_000001.jpg" not in names and len(names) == N_TRAIN + N_VAL


@pytest.mark.parametrize("name", ["camvid", "ade20k"])
def test_validation_and_dense_training_labels_are_mapped_too(name, tmp_path):
    data = run_data(name, make_native_layout(name, tmp_path))
    batch = next(iter(data.val_loader(batch_size=1)))
    sample = batch["data_samples"][0]
    raw = np.asarray(Image.open(sample.seg_map_path))
    np.testing.assert_array_equal(sample.gt_sem_seg.data[0].numpy(), expected_labels(name, raw))
    data.preset.data.train_augment = []  # dense labels as loaded, before augmentation
    batch = next(iter(data.train_loader(None, batch_size=1, seed=0)))
    sample = batch["data_samples"][0]
    raw = np.asarray(Image.open(sample.seg_map_path))
    np.testing.assert_array_equal(sample.gt_sem_seg.data[0].numpy(), expected_labels(name, raw))


@pytest.mark.parametrize("name", ["ade20k", "voc2012"])
def test_test_batches_hold_one_image_size(name, tmp_path):
    # mmseg stacks a test batch only when its images share a size; ADE20K and VOC sizes vary
    data = run_data(name, make_native_layout(name, tmp_path))
    seen = []
    for batch in data.pool_loader(batch_size=4):
        assert len({tuple(x.shape) for x in batch["inputs"]}) == 1
        seen += [s.img_path for s in batch["data_samples"]]
    assert seen == [item["img_path"] for item in data.pool_items]  # order kept


def test_same_size_batches_keeps_order_and_cuts_at_size_changes():
    sizes = ["a", "a", "a", "b", "a", "a"]
    assert same_size_batches(sizes, 2) == [[0, 1], [2], [3], [4, 5]]
    assert same_size_batches([], 2) == []


# -- bad layouts ------------------------------------------------------------------------------
@pytest.mark.parametrize("name, phrases", [
    ("cityscapes", ["leftImg8bit", "gtFine", "_gtFine_labelTrainIds.png"]),
    ("camvid", ["trainannot", "valannot"]),
    ("ade20k", ["images/", "annotations/", "ADEChallengeData2016"]),
    ("voc2012", ["JPEGImages", "SegmentationClass", "ImageSets/Segmentation", "VOCdevkit/VOC2012"]),
])
def test_wrong_root_says_what_it_must_hold(name, phrases, tmp_path):
    (tmp_path / "something_else").mkdir()
    raises(lambda: get_dataset(name).check(tmp_path), str(tmp_path), "--data-root", *phrases)


@pytest.mark.parametrize("name", REAL)
def test_missing_or_empty_root(name, tmp_path):
    raises(lambda: get_dataset(name).check(tmp_path / "nowhere"), "not a folder", "--data-root")
    raises(lambda: get_dataset(name).check(None), "--data-root")


def test_missing_split_names_the_folder(tmp_path):
    top = make_native_layout("cityscapes", tmp_path)
    shutil.rmtree(top / "gtFine" / "val")
    raises(lambda: get_dataset("cityscapes").check(top), str(top / "gtFine" / "val"), "does not exist")


def test_missing_annotation_split_of_camvid(tmp_path):
    top = make_native_layout("camvid", tmp_path)
    shutil.rmtree(top / "valannot")
    raises(lambda: get_dataset("camvid").check(top), str(top / "valannot"))


def test_image_without_label_map_names_both_files(tmp_path):
    top = make_native_layout("camvid", tmp_path)
    label = next((top / "trainannot").glob("*.png"))
    label.unlink()
    raises(lambda: get_dataset("camvid").check(top), "no label map", str(label))


def test_cityscapes_image_without_train_ids_in_its_city_folder(tmp_path):
    top = make_native_layout("cityscapes", tmp_path)
    label = sorted((top / "gtFine" / "train").glob("*/*_labelTrainIds.png"))[0]
    label.unlink()
    raises(lambda: get_dataset("cityscapes").check(top), "no label map", str(label))


def test_cityscapes_raw_label_ids_only_says_how_to_convert(tmp_path):
    top = make_native_layout("cityscapes", tmp_path)
    for path in (top / "gtFine").glob("*/*/*_labelTrainIds.png"):
        path.unlink()
    raises(lambda: get_dataset("cityscapes").check(top), "_gtFine_labelIds.png",
           "tools/dataset_converters/cityscapes.py")


def test_voc_listed_image_missing(tmp_path):
    top = make_native_layout("voc2012", tmp_path)
    lists = top / "ImageSets" / "Segmentation"
    (lists / "val.txt").write_text((lists / "val.txt").read_text() + "2011_999999\n")
    raises(lambda: get_dataset("voc2012").check(top), "listed but missing", "2011_999999.jpg")


def test_voc_split_list_missing(tmp_path):
    top = make_native_layout("voc2012", tmp_path)
    (top / "ImageSets" / "Segmentation" / "train.txt").unlink()
    raises(lambda: get_dataset("voc2012").check(top), "train.txt")


def _overwrite_first_label(top, pattern, value):
    path = sorted(top.glob(pattern))[0]
    with Image.open(path) as png:
        mode, palette = png.mode, png.getpalette()
        label = np.array(png)
    label[0, 0] = value
    out = Image.fromarray(label, mode=mode)
    if palette:
        out.putpalette(palette)
    out.save(path)
    return path


@pytest.mark.parametrize("name, pattern, value, allowed", [
    ("cityscapes", "gtFine/train/*/*_labelTrainIds.png", 19, "0..18 and the ignore value 255"),
    ("camvid", "trainannot/*.png", 12, "0..10 and the ignore values 11, 255"),
    ("ade20k", "annotations/training/*.png", 151, "1..150 and the ignore value 0"),
    ("voc2012", "SegmentationClass/*.png", 21, "0..20 and the ignore value 255"),
])
def test_label_values_out_of_range_name_the_file_and_the_range(name, pattern, value, allowed, tmp_path):
    top = make_native_layout(name, tmp_path)
    path = _overwrite_first_label(top, pattern, value)
    raises(lambda: get_dataset(name).check(top), str(path), f"[{value}]", allowed)


def test_voc_label_saved_as_colours_is_refused(tmp_path):
    top = make_native_layout("voc2012", tmp_path)
    path = sorted((top / "SegmentationClass").glob("*.png"))[0]
    Image.open(path).convert("RGB").save(path)
    raises(lambda: get_dataset("voc2012").check(top), str(path), "colour rendering")


def test_label_and_image_of_different_sizes(tmp_path):
    top = make_native_layout("ade20k", tmp_path)
    path = sorted((top / "annotations" / "validation").glob("*.png"))[0]
    Image.fromarray(np.ones((10, 12), np.uint8)).save(path)
    raises(lambda: get_dataset("ade20k").check(top), str(path), "12x10", "same size")
