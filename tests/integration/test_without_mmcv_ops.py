"""mmcv without its compiled ops is enough: every preset's model and pipelines run with the ops absent,
and a model that does call an op stops with one line naming it (``benchmark.runtime.mmcv_without_ops``).

Each preset runs as the harness runs it, at toy sizes: its own model (random initialisation, no
pretrained weights, the run's MC-dropout layer), its own train and test transforms with their
scales and crops shrunk to the fixture images, on a tiny copy of its dataset in the native layout
(``tests/fixtures/native_layouts.py``): the sparse-click and dense training pipelines, one
training iteration on the clicks through mmengine's Runner (optimizer constructor included), a
forward and backward pass on a dense batch, the evaluation, and MC-dropout inference over a pool
batch. The stand-in
records every op called: none may be.
"""
from __future__ import annotations

import copy
import math
import sys
import textwrap
from dataclasses import replace

import pytest
import torch

from benchmark.config.presets import PRESET_DIR, load_preset, pipeline_steps
from benchmark.runtime import mmcv_without_ops
from tests.fixtures.native_layouts import make_native_layout

pytestmark = pytest.mark.integration

PRESETS = sorted(path.stem for path in PRESET_DIR.glob("*_*.py"))
SCALE, CROP = (96, 64), (32, 32)  # toy sizes: resize scale (long, short edge) and crop (h, w)


@pytest.fixture(scope="module", autouse=True)
def ops_absent():
    if mmcv_without_ops.has_compiled_ops():
        pytest.skip("this environment's mmcv has its compiled ops, so the stand-in is not in use: these tests "
                    "prove the harness runs without them (tox -e test installs mmcv 2.1.0+lite)")
    assert getattr(sys.modules[mmcv_without_ops.MODULE], "without_ops", False)
    yield
    assert mmcv_without_ops.calls == [], f"the harness called mmcv ops: {mmcv_without_ops.calls}"


@pytest.fixture(scope="module")
def data_roots(tmp_path_factory):
    from benchmark.data.synthetic import ensure_synthetic

    parent = tmp_path_factory.mktemp("layouts")
    roots = {name: make_native_layout(name, parent) for name in ("cityscapes", "camvid", "ade20k", "voc2012")}
    roots["synthetic"] = ensure_synthetic(parent / "synthetic", n_train=3, n_val=2, height=64, width=96)
    return roots


def test_every_dataset_and_model_has_a_preset():
    assert PRESETS == [f"{dataset}_{model}" for dataset in ("ade20k", "camvid", "cityscapes", "synthetic", "voc2012")
                       for model in ("deeplabv3plus", "fpn")]


def toy_sized(preset):
    """The preset with its own transforms and model, resize scales and crops shrunk to toy sizes."""
    preset = copy.deepcopy(preset)
    for key in ("train_augment", "test_resize"):
        steps = preset.data.get(key) or []
        for step in steps.values() if isinstance(steps, dict) else steps:
            if "scale" in step:
                step["scale"] = SCALE
            if "crop_size" in step:
                step["crop_size"] = CROP
    if preset.model.data_preprocessor.get("size"):
        preset.model.data_preprocessor["size"] = CROP
    preset.data.update(num_workers=0, pin_memory=False, persistent_workers=False)
    return preset


@pytest.mark.parametrize("name", PRESETS)
def test_preset_runs_without_mmcv_ops(name, data_roots, tmp_path):
    from benchmark.data.label_store import GroundTruthOracle, LabelStore, seed_random_pixels
    from benchmark.data.registry import get_dataset
    from benchmark.data.run_data import RunData
    from benchmark.model.mc_dropout import mc_posteriors
    from benchmark.model.segmentor import evaluate, train_one_cycle
    from benchmark.model.training import fresh_model
    from benchmark.perf.fixtures import acquisition_spec, register_mmseg

    register_mmseg()
    dataset = name.rsplit("_", 1)[0]
    preset = toy_sized(load_preset(PRESET_DIR / f"{name}.py"))
    if dataset != "synthetic":  # the real datasets' own augmentation and test resizing are what runs
        assert [step["type"] for step in pipeline_steps(preset, "train_augment")][:2] == ["RandomResize", "RandomCrop"]
    data = RunData(get_dataset(dataset), str(data_roots[dataset]), preset)
    oracle = GroundTruthOracle(data.ground_truth)
    picks = seed_random_pixels(data.shapes, 20, torch.Generator().manual_seed(0))
    store = LabelStore(data.shapes).with_clicks(0, picks, oracle.answer(picks))
    spec = replace(acquisition_spec("cpu", mc_samples=2, batch_size=2), mc_dropout_rate=0.5)
    model = fresh_model(spec, preset, data)

    # one training iteration on the clicks through the harness's Runner (optimizer constructor included)
    train_one_cycle(model, data.train_loader(store, 2, seed=0), preset.schedule, 1, tmp_path / "work", 0, False)

    # an explicit training forward and backward pass on a batch of the dense (supervised) pipeline
    model.train()
    model.zero_grad()
    batch = next(iter(data.train_loader(None, 2, seed=0)))
    losses = model(**model.data_preprocessor(batch, True), mode="loss")
    total = sum(value for key, value in losses.items() if "loss" in key)
    total.backward()
    assert math.isfinite(total.item())
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in model.parameters())

    # inference: the evaluation over the validation set, MC dropout over a pool batch
    metrics = evaluate(model, data.val_loader(2), data.classes, len(data.val_items))
    assert not metrics["miou"] > 100.0
    posteriors = mc_posteriors(model, next(iter(data.pool_loader(2))), 2, torch.Generator().manual_seed(0))
    assert len(posteriors) >= 1
    assert mmcv_without_ops.calls == []


def test_a_model_calling_an_op_gets_one_line_naming_it():
    """mmseg's PSAHead calls mmcv's compiled ``psamask_forward``; mmcv's nms calls ``nms``."""
    import mmcv.ops
    from mmseg.models.decode_heads import PSAHead

    head = PSAHead(in_channels=8, channels=4, num_classes=3, mask_size=(5, 5))
    with pytest.raises(mmcv_without_ops.MissingMmcvOp) as caught:
        head([torch.randn(1, 8, 5, 5)])
    message = str(caught.value)
    assert "'psamask_forward'" in message and "MMCV_WITH_OPS=1" in message and "\n" not in message
    with pytest.raises(mmcv_without_ops.MissingMmcvOp, match="'nms'"):
        mmcv.ops.nms(torch.rand(3, 4), torch.rand(3), 0.5)
    mmcv_without_ops.calls.clear()  # expected calls: the module fixture checks the harness made none


def test_the_message_fits_a_failed_runs_line_for_every_op():
    """A failed run keeps the first 300 characters of the error in its one line: all of it, for any op."""
    longest = "furthest_point_sampling_with_dist_forward"  # the longest name mmcv 2.1.0's ops load
    with pytest.raises(mmcv_without_ops.MissingMmcvOp) as caught:
        getattr(sys.modules[mmcv_without_ops.MODULE], longest)()
    assert len(str(caught.value)) <= 300 and str(caught.value).endswith("see README)")
    mmcv_without_ops.calls.clear()


def test_a_run_of_a_model_calling_an_op_ends_with_one_line(run_cli, tmp_path):
    preset = tmp_path / "psa_preset.py"
    preset.write_text(textwrap.dedent(f"""\
        _base_ = [{str(PRESET_DIR / "synthetic_fpn.py")!r}]
        model = dict(decode_head=dict(_delete_=True, type='PSAHead', in_channels=32, in_index=0, channels=16,
                                      mask_size=(7, 7), num_classes=6, dropout_ratio=0.1, align_corners=False,
                                      loss_decode=dict(type='CrossEntropyLoss', avg_non_ignore=True)))
        """))
    proc = run_cli("run", "--preset", preset, "--model", "fpn", "--strategy", "random", "--seeds", "0",
                   "--cycles", "1", "--train-iters", "1", "--no-supervised", "--workers", "1",
                   "--out", tmp_path / "out", check=False)
    lines = [line for line in proc.stderr.strip().splitlines() if line.strip()]
    assert proc.returncode in (1, 2) and len(lines) == 1, proc.stderr
    assert lines[0].startswith("error: ") and "Traceback" not in proc.stderr
    assert "'psamask_forward'" in lines[0] and "MMCV_WITH_OPS=1" in lines[0] and "see README" in lines[0]
