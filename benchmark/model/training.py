"""Train a fresh model for one cycle on what a label store holds (or on dense labels), evaluate it.

Shared by the active-learning loop (``benchmark.cycle.loop``) and the supervised reference
(``benchmark.cycle.supervised``): same initialisation, sampler and training seeds for a given run seed.
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import torch

from benchmark.config.seeds import derive_seed
from benchmark.model.mc_dropout import dropout_layer
from benchmark.model.segmentor import build_model, evaluate, train_one_cycle
from benchmark.runtime import distributed
from benchmark.runtime.timing import synchronize


@dataclass
class Reporter:
    """Progress callbacks; the CLI plugs a rich display in, tests leave the no-ops."""

    start_cycle: Callable[[int, int], None] = lambda cycle, iters: None
    advance_iter: Callable[[], None] = lambda: None


@dataclass
class Trained:
    """A trained model of one cycle and what it cost."""

    model: object
    metrics: dict  # miou, macc, aacc (%), class_iou {name: %}
    train_seconds: float
    eval_seconds: float
    clicks_in_loss: float  # share of the clicks in the training samples that reached the loss


def fresh_model(spec, preset, data):
    """The run's model, initialised from the run seed (identical for every strategy of a seed), its
    head's dropout the run's MC dropout (rate and mask), for training and MC inference alike; in
    channels-last memory layout when the preset's ``schedule.channels_last`` says so."""
    model = build_model(preset, len(data.classes), derive_seed(spec.seed, "init"), spec.pretrained, spec.device,
                        dropout=dropout_layer(spec.mc_dropout_rate, spec.mc_dropout_mask))
    if preset.schedule.get("channels_last", False):
        model = model.to(memory_format=torch.channels_last)
    if torch.device(spec.device).type == "cuda" and preset.schedule.get("cudnn_benchmark", False):
        torch.backends.cudnn.benchmark = True  # fixed crop sizes: let cuDNN pick its fastest kernels
    return model


def train_and_evaluate(spec, preset, data, store, cycle: int, work_dir: Path, reporter: Reporter,
                       state: dict | None = None) -> Trained:
    """Train a fresh model (or ``state``'s weights, for --retrain finetune) for ``spec.train_iters``
    iterations on ``store``'s clicks (``store=None``: every pixel labelled), then evaluate it."""
    model = fresh_model(spec, preset, data)
    if state is not None:
        model.load_state_dict(state)
    reporter.start_cycle(cycle, spec.train_iters)
    started = time.perf_counter()
    loader = data.train_loader(store, spec.batch_size, derive_seed(spec.seed, cycle, "sampler"))
    clicks_in_loss = train_one_cycle(model, loader, preset.schedule, spec.train_iters, work_dir,
                    derive_seed(spec.seed, cycle, "train"), spec.amp, reporter.advance_iter)
    synchronize(spec.device)
    trained_at = time.perf_counter()
    shared = distributed.my_share(len(data.val_items))  # with ranks: every G-th validation image each
    metrics = evaluate(model, data.val_loader(spec.batch_size, image_ids=shared), data.classes, len(data.val_items))
    synchronize(spec.device)
    return Trained(model=model, metrics=metrics, train_seconds=trained_at - started,
                   eval_seconds=time.perf_counter() - trained_at, clicks_in_loss=clicks_in_loss)
