"""Section 5: training throughput. One training iteration of the harness against a plain mmengine
Runner training the same mmseg model on the same images with dense labels (mmseg's own dataset
and pipeline, built from a config dict: no harness code), the stages of the harness's iteration,
and the levers that change its cost.

A per-iteration time is ``(T(n2) - T(n1)) / (n2 - n1)`` with T(n) the wall time of a whole
training of n iterations (Runner construction, dataloader start and teardown cancel out); best of
``--repeats`` for each T. Each training has its own model and loader (mmengine's InfiniteSampler
feeds one Runner only). On a device where the difference drowns in the noise the estimate is
"too fast to estimate" (``benchmark.perf.estimates``), never a negative time.
"""
from __future__ import annotations

import copy
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from rich.table import Table

from benchmark.perf.estimates import NOT_AVAILABLE, per_unit, ratio, remainder, shown
from benchmark.runtime.timing import synchronize

PRESET = "synthetic_deeplabv3plus.py"


def _prepare(args):
    """The default preset, its generated dataset, a RunData and cycle 0's clicks (5 per image)."""
    from benchmark.config.presets import PRESET_DIR, load_preset
    from benchmark.data import get_dataset
    from benchmark.data.label_store import GroundTruthOracle, LabelStore, seed_random_pixels
    from benchmark.data.run_data import RunData
    from benchmark.data.synthetic import default_cache_dir, ensure_synthetic

    preset = load_preset(PRESET_DIR / PRESET)
    params = dict(n_train=8, n_val=2, height=32, width=32) if args.tiny else dict(preset.get("synthetic", {}))
    root = ensure_synthetic(default_cache_dir(), **params)
    spec = get_dataset("synthetic")
    data = RunData(spec, str(root), preset)
    picks = seed_random_pixels(data.shapes, preset.active_learning.pixels_per_image, torch.Generator().manual_seed(0))
    store = LabelStore(data.shapes).with_clicks(0, picks, GroundTruthOracle(data.ground_truth).answer(picks))
    return preset, spec, root, data, store


def _model(preset, data, device):
    from benchmark.model.segmentor import build_model

    return build_model(preset, len(data.classes), 0, None, device)


def harness_training(preset, data, store, iters: int, batch_size: int, device) -> float:
    """Wall time of the harness's training of ``iters`` iterations on click labels."""
    from benchmark.model.segmentor import train_one_cycle

    model = _model(preset, data, device)
    loader = data.train_loader(store, batch_size, 0)
    with tempfile.TemporaryDirectory(prefix="perf-harness-") as work:
        start = time.perf_counter()
        train_one_cycle(model, loader, preset.schedule, iters, Path(work) / "run", 0, False)
        synchronize(device)
        return time.perf_counter() - start


def peer_training(preset, spec, root, data, iters: int, batch_size: int, device) -> float:
    """Wall time of a plain mmengine Runner training the same model on the same images, dense labels."""
    from mmengine.config import Config
    from mmengine.runner import Runner

    from benchmark.config.presets import pipeline_steps
    from benchmark.model.segmentor import _quiet_mmengine, experiment_name

    model = copy.deepcopy(dict(preset.model))
    for head in ("decode_head", "auxiliary_head"):
        if model.get(head) is not None:
            model[head]["num_classes"] = len(data.classes)
    pipeline = [dict(type="LoadImageFromFile"), dict(type="LoadAnnotations"),
                *pipeline_steps(preset, "train_augment"), dict(type="PackSegInputs")]
    with tempfile.TemporaryDirectory(prefix="perf-peer-") as work:
        cfg = Config(dict(
            model=model, work_dir=work, default_scope="mmseg", randomness=dict(seed=0), log_level="WARNING",
            experiment_name=experiment_name("perf-peer"),  # Runners may start within one second
            train_dataloader=dict(batch_size=batch_size, num_workers=0, sampler=dict(type="InfiniteSampler"),
                                  dataset=dict(spec.dataset_cfg(root, "train"), pipeline=pipeline)),
            train_cfg=dict(type="IterBasedTrainLoop", max_iters=iters, val_interval=iters + 1),
            optim_wrapper=dict(type="OptimWrapper", optimizer=dict(preset.schedule.optimizer)),
            param_scheduler=[dict(type="PolyLR", eta_min=0.0, power=0.9, begin=0, end=iters, by_epoch=False)],
            default_hooks=dict(timer=dict(type="IterTimerHook"), param_scheduler=dict(type="ParamSchedulerHook"),
                               logger=dict(type="LoggerHook", interval=max(iters // 4, 1)), checkpoint=None)))
        start = time.perf_counter()
        runner = Runner.from_cfg(cfg)
        runner.model.to(device)
        with _quiet_mmengine():
            runner.train()
        synchronize(device)
        return time.perf_counter() - start


def per_iteration(train, n1: int, n2: int, repeats: int) -> float | None:
    """``(T(n2) - T(n1)) / (n2 - n1)``, each T the best of ``repeats`` after one untimed warm-up;
    None when T(n2) does not exceed T(n1) (too fast to estimate)."""
    train(n1)
    best = {n: min(train(n) for _ in range(repeats)) for n in (n1, n2)}
    return per_unit(best[n2], best[n1], n2 - n1)


def iteration_stages(preset, data, store, batch_size: int, device, repeats: int) -> dict:
    """Seconds per iteration of each stage of the harness's training step, measured apart."""
    from mmengine.optim import build_optim_wrapper

    loader = iter(data.train_loader(store, batch_size, 0))
    model = _model(preset, data, device).train()
    optim = build_optim_wrapper(model, dict(type="OptimWrapper", optimizer=dict(preset.schedule.optimizer)))
    times = {k: [] for k in ("data pipeline (decode, LoadSparseLabels, augment, collate)",
                             "preprocess + forward + loss", "backward", "optimizer step")}
    names = list(times)
    for _ in range(repeats + 2):  # each stage's queued GPU work is waited for before its clock stops
        synchronize(device)
        t0 = time.perf_counter()
        batch = next(loader)
        t1 = time.perf_counter()
        losses = model._run_forward(model.data_preprocessor(batch, True), mode="loss")
        loss, _ = model.parse_losses(losses)
        synchronize(device)
        t2 = time.perf_counter()
        loss.backward()
        synchronize(device)
        t3 = time.perf_counter()
        optim.step()
        optim.zero_grad()
        synchronize(device)
        t4 = time.perf_counter()
        for name, seconds in zip(names, (t1 - t0, t2 - t1, t3 - t2, t4 - t3)):
            times[name].append(seconds)
    return {name: float(np.median(v[2:])) for name, v in times.items()}  # two warm-up iterations dropped


def compute_seconds(preset, data, store, batch_size: int, device, repeats: int, channels_last=False) -> float:
    """Median seconds of forward + backward + optimizer on one fixed batch."""
    from mmengine.optim import build_optim_wrapper

    batch = next(iter(data.train_loader(store, batch_size, 0)))
    model = _model(preset, data, device).train()
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
    optim = build_optim_wrapper(model, dict(type="OptimWrapper", optimizer=dict(preset.schedule.optimizer)))
    seconds = []
    for _ in range(repeats + 2):
        synchronize(device)
        start = time.perf_counter()
        data_in = model.data_preprocessor(batch, True)
        if channels_last:
            data_in["inputs"] = data_in["inputs"].contiguous(memory_format=torch.channels_last)
        loss, _ = model.parse_losses(model._run_forward(data_in, mode="loss"))
        loss.backward()
        optim.step()
        optim.zero_grad()
        synchronize(device)
        seconds.append(time.perf_counter() - start)
    return float(np.median(seconds[2:]))


def measure_training(args) -> dict:
    """Section 5's numbers: per-iteration seconds of the harness and of the peer (None: too fast
    to estimate), their ratio, the stages measured apart, the rest, and the levers."""
    preset, spec, root, data, store = _prepare(args)
    device, repeats = args.device, max(1, min(args.repeats, 3))
    batch = int(preset.schedule.batch_size)
    n1, n2 = (2, 8) if args.tiny else (10, 60)
    harness = per_iteration(lambda n: harness_training(preset, data, store, n, batch, device), n1, n2, repeats)
    peer = per_iteration(lambda n: peer_training(preset, spec, root, data, n, batch, device), n1, n2, repeats)
    stages = iteration_stages(preset, data, store, batch, device, 3 * repeats + 2)
    return dict(batch=batch, n1=n1, n2=n2, repeats=repeats, threads=torch.get_num_threads(),
                harness_seconds=harness, peer_seconds=peer, ratio=ratio(harness, peer),
                stages=stages, rest_seconds=remainder(harness, stages.values()),
                levers=measure_levers(preset, data, store, batch, device, repeats))


def section_training(args, console) -> dict:
    out = measure_training(args)
    batch, n1, n2, harness = out["batch"], out["n1"], out["n2"], out["harness_seconds"]
    console.print(f"5. Training throughput ({PRESET}{', tiny dataset' if args.tiny else ''}, batch {batch}, "
                  f"{out['threads']} threads): per iteration = (T({n2}) - T({n1})) / {n2 - n1}, "
                  f"best of {out['repeats']} per T")
    table = Table(title="5. One training iteration: the harness vs a plain mmengine Runner")
    for column in ("side", "ms / iteration", "ratio harness / peer (goal <= 1.05)"):
        table.add_column(column, justify="left" if column == "side" else "right")
    table.add_row("harness: train_one_cycle on click labels (LoadSparseLabels, click-aware augment)",
                  shown(harness, ".1f", 1e3), shown(out["ratio"], ".3f", missing=NOT_AVAILABLE))
    table.add_row("peer: Runner.from_cfg, mmseg dataset + LoadAnnotations, dense labels",
                  shown(out["peer_seconds"], ".1f", 1e3), "")
    console.print(table)
    table = Table(title="5b. Stages of the harness's iteration (medians, measured apart)")
    table.add_column("stage")
    table.add_column("ms", justify="right")
    table.add_column("share of the iteration", justify="right")
    for name, seconds in out["stages"].items():
        table.add_row(name, f"{seconds * 1e3:.1f}", shown(ratio(seconds, harness), ".0%", missing=NOT_AVAILABLE))
    rest = out["rest_seconds"]
    table.add_row("Runner, hooks and logging (the rest)", shown(rest, ".1f", 1e3),
                  shown(ratio(rest, harness), ".0%", missing=NOT_AVAILABLE))
    console.print(table)
    print_levers(console, out["levers"], batch)
    return out


def measure_levers(preset, data, store, batch: int, device, repeats: int) -> list[dict]:
    """Forward + backward + optimizer seconds of one iteration under each lever, on one fixed batch."""
    base = compute_seconds(preset, data, store, batch, device, 3 * repeats)
    rows = [("baseline (batch %d, %d threads)" % (batch, torch.get_num_threads()), base, batch)]
    rows.append(("channels_last", compute_seconds(preset, data, store, batch, device, 3 * repeats, True), batch))
    half = max(batch // 2, 1)
    rows.append((f"batch {half}", compute_seconds(preset, data, store, half, device, 3 * repeats), half))
    threads = torch.get_num_threads()
    if threads > 1:
        torch.set_num_threads(1)
        rows.append(("1 thread", compute_seconds(preset, data, store, batch, device, 3 * repeats), batch))
        torch.set_num_threads(threads)
    return [dict(lever=label, seconds=seconds, images=images,
                 vs_baseline=(seconds / images) / (base / batch)) for label, seconds, images in rows]


def print_levers(console, levers: list[dict], batch: int) -> None:
    table = Table(title="5c. Levers: compute of one iteration (forward + backward + optimizer)")
    for column in ("lever", "ms / iteration", "ms / image", "vs baseline"):
        table.add_column(column, justify="left" if column == "lever" else "right")
    for row in levers:
        table.add_row(row["lever"], f"{row['seconds'] * 1e3:.1f}", f"{row['seconds'] / row['images'] * 1e3:.2f}",
                      f"{row['vs_baseline']:.2f}x")
    console.print(table)
