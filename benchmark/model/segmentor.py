"""Build the mmseg segmentor of a preset, train it for one cycle with mmengine's Runner, evaluate it.

Nothing here knows about strategies: training reads the label store through the data layer.
"""
from __future__ import annotations

import contextlib
import itertools
import logging
import tempfile
from pathlib import Path
from typing import Callable

import numpy as np
import torch
from mmengine.evaluator import Evaluator
from mmengine.hooks import Hook
from mmengine.logging import MMLogger
from mmengine.runner import Runner
from mmseg.evaluation import IoUMetric
from mmseg.registry import MODELS
from torch import nn

from benchmark.errors import UsageError
from benchmark.model.training_pace import amp_wrapper
from benchmark.runtime import distributed


def build_model(preset, num_classes: int, init_seed: int, pretrained: str | None, device: str,
                dropout: nn.Module | None = None):
    """The preset's segmentor with ``num_classes`` outputs, initialised from ``init_seed``; its
    decode head's dropout layer replaced by ``dropout`` (the run's MC dropout) when given."""
    cfg = preset.model.copy()
    for head in ("decode_head", "auxiliary_head"):
        if cfg.get(head) is not None:
            cfg[head]["num_classes"] = num_classes
    if pretrained:
        cfg["backbone"]["init_cfg"] = dict(type="Pretrained", checkpoint=pretrained)
    torch.manual_seed(init_seed)
    model = MODELS.build(cfg)
    with _quiet_mmengine():
        model.init_weights()
    if dropout is not None:
        model.decode_head.dropout = dropout
    return model.to(device)


class _quiet_mmengine:
    """Silence mmengine's chatter (weight-init and eval tables; the Runner's notice that the
    weights we initialised ourselves are not initialised again) around a block."""

    def __init__(self, level: int = logging.WARNING):
        self.level = level

    def __enter__(self):
        if not MMLogger.check_instance_created("benchmark"):
            MMLogger.get_instance("benchmark", log_level="WARNING")
        self._logger = MMLogger.get_current_instance()
        self._level = self._logger.level
        self._logger.setLevel(self.level)

    def __exit__(self, *exc):
        self._logger.setLevel(self._level)


class IterationCallbackHook(Hook):
    """Calls ``callback()`` after every training iteration (drives the progress display)."""

    priority = "VERY_LOW"

    def __init__(self, callback: Callable[[], None]):
        self.callback = callback

    def after_train_iter(self, runner, batch_idx, data_batch=None, outputs=None):
        self.callback()


class ClicksInLossHook(Hook):
    """Sums, over every sample the training loader yields, the clicks that entered the pipeline
    and those that reached the loss (metainfo ``clicks_total`` / ``clicks_in_loss``)."""

    priority = "VERY_LOW"

    def __init__(self):
        self.total = self.in_loss = 0

    def before_train_iter(self, runner, batch_idx, data_batch=None):
        for sample in (data_batch or {}).get("data_samples", []):
            self.total += int(sample.metainfo.get("clicks_total", 0))
            self.in_loss += int(sample.metainfo.get("clicks_in_loss", 0))

    @property
    def fraction(self) -> float:
        """Share of the clicks seen that were inside the loss (NaN: no click seen, dense labels)."""
        return self.in_loss / self.total if self.total else float("nan")


_RUNNER_NUMBERS = itertools.count()


def experiment_name(prefix: str) -> str:
    """A name no other Runner of this process has had. mmengine keeps one Visualizer and one
    MMLogger per experiment name (the start time to the second, by default) for the whole process
    and hands an existing one back with its old folder: two Runners started within a second would
    share the first one's, deleted or not."""
    return f"{prefix}-{next(_RUNNER_NUMBERS)}"


def train_one_cycle(model, loader, schedule, iters: int, work_dir: Path, seed: int, amp: bool,
                    on_iter: Callable[[], None] = lambda: None) -> float:
    """Train ``model`` in place for ``iters`` iterations with a fresh mmengine Runner; returns the
    share of the clicks in the samples it trained on that reached the loss (NaN for dense labels).

    With several ranks (a process group, ``benchmark.runtime.distributed``) mmengine trains through DDP,
    each rank on its share of every batch; afterwards every rank holds rank 0's weights and
    buffers, and only rank 0 keeps logs (the others' Runner writes into a discarded folder).
    """
    clicks = ClicksInLossHook()
    ranks = distributed.world_size() > 1
    device = next(model.parameters()).device.type
    with contextlib.ExitStack() as stack:
        log_dir = work_dir if distributed.is_main() else stack.enter_context(
            tempfile.TemporaryDirectory(prefix="benchmark-rank-logs-"))
        _train(model, loader, schedule, iters, Path(log_dir), seed, amp, [IterationCallbackHook(on_iter), clicks],
               ranks, device)
    distributed.share_rank0_state(model)
    clicks.total, clicks.in_loss = distributed.all_sum([clicks.total, clicks.in_loss])
    return clicks.fraction


def _train(model, loader, schedule, iters, work_dir: Path, seed, amp, hooks, ranks: bool, device: str) -> None:
    """One mmengine Runner's training (through mmengine's DDP when ``ranks``); no host-device
    synchronisation per iteration, bf16 AMP where the GPU has it (``training_pace``)."""
    optim_type = amp_wrapper(device) if amp else "OptimWrapper"
    log_interval = max(iters // 4, 1)
    runner = Runner(
        model=model,
        work_dir=str(work_dir),
        launcher="pytorch" if ranks else "none",
        train_dataloader=loader,
        train_cfg=dict(type="IterBasedTrainLoop", max_iters=iters, val_interval=iters + 1),
        optim_wrapper=dict(type=optim_type, optimizer=dict(schedule.optimizer)),
        param_scheduler=[dict(type="PolyLR", eta_min=0.0, power=schedule.get("poly_power", 0.9),
                              begin=0, end=iters, by_epoch=False)],
        default_hooks=dict(runtime_info=dict(type="DeferredRuntimeInfoHook", interval=log_interval),
                           timer=dict(type="IterTimerHook"),
                           logger=dict(type="LoggerHook", interval=log_interval,
                                       log_metric_by_epoch=False),
                           param_scheduler=dict(type="ParamSchedulerHook"),
                           checkpoint=None, sampler_seed=None),
        custom_hooks=hooks,
        randomness=dict(seed=seed),
        log_level="WARNING",
        default_scope="mmseg",
        visualizer=dict(type="Visualizer", vis_backends=[dict(type="LocalVisBackend")]),
        # a name of its own per Runner keeps every run's training logs in its own work_dir
        experiment_name=experiment_name(work_dir.name),
        cfg=dict(model_wrapper_cfg=distributed.ddp_wrapper_cfg(device)) if ranks else dict(),
    )
    with _quiet_mmengine(logging.ERROR):
        runner.train()


class ClassIoUMetric(IoUMetric):
    """mmseg's IoUMetric that also keeps its last computation in float64, unrounded.

    mmseg rounds its summary to two decimals in float32; the tables keep the float64 values
    computed from the same per-class intersection and union areas.
    """

    def compute_metrics(self, results: list) -> dict:
        columns = tuple(zip(*results))
        intersect, union, label_area = (sum(columns[i]).double().cpu().numpy() for i in (0, 1, 3))
        with np.errstate(invalid="ignore", divide="ignore"):
            self.class_iou = intersect / union * 100
            self.summary = dict(miou=float(np.nanmean(self.class_iou)),
                                macc=float(np.nanmean(intersect / label_area * 100)),
                                aacc=float(intersect.sum() / label_area.sum() * 100))
        return super().compute_metrics(results)


@torch.no_grad()
def evaluate(model, loader, classes, total: int | None = None) -> dict:
    """mIoU, mAcc, aAcc (percent) and per-class IoU on the whole validation loader.

    With several ranks each rank's ``loader`` holds its share of the ``total`` validation images
    (every G-th); mmengine gathers the per-image areas to rank 0 in image order, and every rank
    returns rank 0's metrics. The areas are whole pixel counts, so their sums are exact.
    """
    model.eval()
    ranks = distributed.world_size() > 1
    metric = ClassIoUMetric(iou_metrics=["mIoU"], prefix="val", collect_device="gpu" if ranks else "cpu")
    evaluator = Evaluator(metric)
    evaluator.dataset_meta = dict(classes=tuple(classes))
    count = 0
    for batch in loader:
        outputs = model.test_step(batch)
        evaluator.process(data_samples=outputs, data_batch=batch)
        count += len(outputs)
    total = count if total is None else total
    if total == 0:
        raise UsageError("the validation split is empty: check --data-root")
    with _quiet_mmengine():
        evaluator.evaluate(total)  # with ranks: collected on rank 0 (collect_device 'gpu': all_gather_object)
    summary, ious = distributed.broadcast((getattr(metric, "summary", None), getattr(metric, "class_iou", None)))
    class_iou = {name: float(v) for name, v in zip(classes, ious)}
    return dict(**summary, class_iou=class_iou)
