"""`datasets check` and a one-cycle `run` through the CLI on tiny native layouts of the four real
datasets, with presets that inherit the paper presets (only the model and the crops shrunk)."""
import json

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from tests.conftest import assert_usage_error
from tests.fixtures.native_layouts import N_TRAIN, make_native_layout, write_tiny_preset

pytestmark = pytest.mark.integration

REAL = ("cityscapes", "camvid", "ade20k", "voc2012")
NUM_CLASSES = {"cityscapes": 19, "camvid": 11, "ade20k": 150, "voc2012": 21}
ONE_CYCLE = ["--model", "deeplabv3plus", "--cycles", "1", "--train-iters", "2", "--mc-samples", "2",
             "--pixels-per-image", "2", "--batch-size", "2", "--seeds", "0", "--strategy", "random",
             "--map-images", "0", "--no-supervised"]


@pytest.fixture(scope="module")
def layouts(tmp_path_factory):
    parent = tmp_path_factory.mktemp("native")
    return {name: make_native_layout(name, parent / name) for name in REAL}


@pytest.mark.parametrize("name, sample_class", [
    ("cityscapes", "traffic sign"), ("camvid", "bicyclist"), ("ade20k", "wall"),
    ("voc2012", "aeroplane"),
])
def test_datasets_check_prints_the_summary(run_cli, layouts, name, sample_class):
    proc = run_cli("datasets", "check", "--dataset", name, "--data-root", layouts[name],
                   env_extra={"COLUMNS": "400"})
    assert f"{name} at {layouts[name]}: layout OK" in " ".join(proc.stdout.split())
    assert sample_class in proc.stdout and "images per split" in proc.stdout


def test_datasets_check_wrong_root_is_one_line(run_cli, tmp_path):
    proc = run_cli("datasets", "check", "--dataset", "cityscapes", "--data-root", tmp_path, check=False)
    assert_usage_error(proc, "no cityscapes layout", str(tmp_path), "leftImg8bit/", "gtFine/")


def test_datasets_check_bad_label_is_one_line(run_cli, tmp_path):
    top = make_native_layout("ade20k", tmp_path)
    path = sorted((top / "annotations" / "training").glob("*.png"))[0]
    label = np.array(Image.open(path))
    label[0, 0] = 200
    Image.fromarray(label).save(path)
    proc = run_cli("datasets", "check", "--dataset", "ade20k", "--data-root", top, check=False)
    assert_usage_error(proc, str(path), "holds values [200]", "1..150")


@pytest.mark.parametrize("name", REAL)
def test_one_cycle_run_on_the_native_layout(run_cli, layouts, tmp_path, name):
    preset = write_tiny_preset(tmp_path / f"tiny_{name}.py", name)
    out = tmp_path / "out"
    # the parent of the layout's top folder is accepted and resolved
    run_cli("run", "--dataset", name, "--data-root", layouts[name].parent, "--preset", preset,
            "--out", out, *ONE_CYCLE)
    cycles = pd.read_csv(out / "cycles.csv")
    random = cycles[cycles["strategy"] == "random"]
    assert len(random) == 1 and random["labeled_pixels"].item() == 2 * N_TRAIN
    assert random["miou"].notna().all()
    assert set(cycles["strategy"]) == {"random"}
    run = out / "runs" / f"{name}__deeplabv3plus__random__seed0"
    config = json.loads((run / "config.json").read_text())
    assert config["run"]["data_root"] == str(layouts[name])
    assert len(config["classes"]) == NUM_CLASSES[name]
    assert len(pd.read_csv(run / "images.csv")) == N_TRAIN
    labels = pd.read_csv(run / "selections.csv")["label"]
    assert len(labels) == 2 * N_TRAIN
    assert set(labels) <= set(range(NUM_CLASSES[name])) | {255}  # never CamVid's 11 or ADE's raw 150
    class_iou = pd.read_csv(out / "class_iou.csv")
    assert set(class_iou["class"]) <= set(config["classes"])
