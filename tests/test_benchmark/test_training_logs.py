"""Each training Runner writes its logs into its own work_dir, even when an earlier run of the same
process used a folder of the same name that is gone by now (mmengine caches its Visualizer and
MMLogger per experiment name)."""
import copy
import shutil

import torch
from mmengine.dataset import pseudo_collate
from mmengine.structures import PixelData
from mmseg.structures import SegDataSample
from torch.utils.data import DataLoader

from benchmark.config.presets import PRESET_DIR, load_preset
from benchmark.model.segmentor import train_one_cycle
from benchmark.perf.fixtures import acquisition_spec


class Data:
    classes = tuple("abc")


def _loader(n: int) -> DataLoader:
    g = torch.Generator().manual_seed(0)
    samples = []
    for _ in range(n):
        sample = SegDataSample(metainfo=dict(img_shape=(64, 64), ori_shape=(64, 64), pad_shape=(64, 64)))
        sample.gt_sem_seg = PixelData(data=torch.randint(0, 3, (1, 64, 64), generator=g))
        samples.append(dict(inputs=torch.randint(0, 255, (3, 64, 64), generator=g, dtype=torch.uint8),
                            data_samples=sample))
    return DataLoader(samples, batch_size=2, collate_fn=pseudo_collate)


def _train(work_dir):
    from benchmark.model.training import fresh_model

    preset = copy.deepcopy(load_preset(PRESET_DIR / "synthetic_fpn.py"))
    model = fresh_model(acquisition_spec("cpu", mc_samples=2, batch_size=1), preset, Data())
    train_one_cycle(model, _loader(4), preset.schedule, 2, work_dir, 0, False)


def test_runs_with_the_same_folder_name_keep_their_logs_apart(tmp_path, monkeypatch):
    import mmengine.runner.runner as runner_module

    # both Runners start "in the same second", as tiny runs and the perf suite's trainings do
    monkeypatch.setattr(runner_module.time, "time", lambda: 1.8e9)
    first, second = tmp_path / "a" / "cycle_00", tmp_path / "b" / "cycle_00"
    _train(first)
    shutil.rmtree(tmp_path / "a")  # an earlier run's folder removed (a test's temp dir, a user's clean-up)
    _train(second)  # once wrote into the removed folder through mmengine's cached Visualizer
    assert list(second.rglob("*.json")), "the second run's scalars belong in its own work_dir"
