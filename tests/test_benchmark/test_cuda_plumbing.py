"""The CUDA levers wired through the presets (channels_last, cuDNN benchmark, pinned memory and
persistent workers): their plumbing, checked on the CPU (no GPU here)."""
import copy
from dataclasses import replace

import torch

from benchmark.config.presets import PRESET_DIR, load_preset
from benchmark.perf.fixtures import acquisition_spec


class Data:
    classes = tuple("abcde")


def test_paper_presets_turn_the_levers_on():
    preset = load_preset(PRESET_DIR / "cityscapes_deeplabv3plus.py")
    assert preset.schedule.channels_last and preset.schedule.cudnn_benchmark and not preset.schedule.amp
    assert preset.data.num_workers == 4 and preset.data.pin_memory and preset.data.persistent_workers


def test_channels_last_reaches_the_model():
    from benchmark.model.training import fresh_model

    preset = copy.deepcopy(load_preset(PRESET_DIR / "synthetic_fpn.py"))
    spec = replace(acquisition_spec("cpu", mc_samples=2, batch_size=1))
    plain = fresh_model(spec, preset, Data()).decode_head.conv_seg.weight
    preset.schedule.channels_last = True
    nhwc = fresh_model(spec, preset, Data()).decode_head.conv_seg.weight
    assert plain.is_contiguous() and nhwc.is_contiguous(memory_format=torch.channels_last)
    assert not torch.backends.cudnn.benchmark  # a CUDA setting: left alone on the CPU


def test_loader_options_come_from_the_preset():
    from benchmark.data.run_data import RunData, leave_job_signals_to_the_main_process

    preset = copy.deepcopy(load_preset(PRESET_DIR / "synthetic_fpn.py"))
    data = RunData.__new__(RunData)
    data.preset = preset
    assert data._worker_options(training=True) == dict(num_workers=0, pin_memory=False)
    preset.data.update(num_workers=2, pin_memory=True, persistent_workers=True)
    training = data._worker_options(training=True)
    assert training.pop("worker_init_fn") is leave_job_signals_to_the_main_process
    assert training == dict(num_workers=2, pin_memory=True, persistent_workers=True)
    evaluation = data._worker_options()
    assert evaluation.pop("worker_init_fn") is leave_job_signals_to_the_main_process
    assert evaluation == dict(num_workers=2, pin_memory=True)
