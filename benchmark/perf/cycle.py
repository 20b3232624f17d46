"""Section 4: where the time of one active-learning cycle goes, on the embedded default dataset with
the default preset, through the harness's own functions (the ones ``run_experiment`` calls)."""
from __future__ import annotations

import tempfile
import time
from dataclasses import replace
from pathlib import Path

import torch
from rich.table import Table

from benchmark.perf.fixtures import acquisition_spec, register_mmseg, synchronize

DEFAULT_PRESET = "synthetic_deeplabv3plus.py"
TINY_DATASET = dict(seed=0, n_train=8, n_val=4, height=64, width=64)

# What bounds each stage, from profiling it (torch.profiler / cProfile; `--profile` prints them).
BOUNDS = {
    "train": "compute: convolution forward/backward (oneDNN) and BatchNorm",
    "evaluation": "compute: one forward pass per image, then mmseg's IoU metric",
    "MC inference": "features: compute (convs); m heads: memory bandwidth (resize, softmax, "
                    "Welford) - see sections 1, 1b",
    "scoring": "depends on the strategy - see section 2 (BalEnt: float64 lgamma/digamma compute)",
    "selection": "compute: topk threshold over each image's unlabelled scores, seeded draw among ties",
    "uncertainty record": "compute: float64 Beta entropies (the same math as BalEnt)",
    "uncertainty maps": "MC inference + four strategies on the saved validation images",
}


def _timed(fn, device):
    synchronize(device)
    start = time.perf_counter()
    out = fn()
    synchronize(device)
    return out, time.perf_counter() - start


def prepare(args):
    """The default preset, its dataset (generated into the cache), a RunSpec and cycle 0's clicks."""
    from benchmark.config.presets import PRESET_DIR, load_preset
    from benchmark.data import get_dataset
    from benchmark.data.label_store import GroundTruthOracle, LabelStore, seed_random_pixels
    from benchmark.data.run_data import RunData
    from benchmark.data.synthetic import default_cache_dir, ensure_synthetic

    register_mmseg()
    preset = load_preset(PRESET_DIR / DEFAULT_PRESET)
    params = TINY_DATASET if args.tiny else dict(preset.get("synthetic", {}))
    root = ensure_synthetic(default_cache_dir(), **params)
    data = RunData(get_dataset("synthetic"), str(root), preset)
    al, schedule = preset.active_learning, preset.schedule
    spec = replace(acquisition_spec(args.device, args.cycle_mc_samples or al.mc_samples,
                                    schedule.batch_size, al.pixels_per_image),
                   train_iters=args.cycle_iters or schedule.iters, map_images=al.get("map_images", 0),
                   strategy=args.strategy, dataset="synthetic", data_root=str(root), preset=DEFAULT_PRESET,
                   map_strategies=tuple(al.get("map_strategies", ())))
    store = LabelStore(data.shapes)
    picks = seed_random_pixels(data.shapes, spec.pixels_per_image, torch.Generator().manual_seed(0))
    store.add(0, picks, GroundTruthOracle(data.ground_truth).answer(picks))
    return preset, data, spec, store


def run_cycle(args) -> tuple[dict, object]:
    """Seconds of each stage of one cycle (cycle 0: train, evaluate, acquire, maps)."""
    from benchmark.cycle.acquisition import acquire
    from benchmark.cycle.validation_maps import uncertainty_maps
    from benchmark.model.segmentor import build_model, evaluate, train_one_cycle
    from strategies import build_selector, build_strategy

    preset, data, spec, store = prepare(args)
    model = build_model(preset, len(data.classes), 0, None, spec.device)
    loader = data.train_loader(store, spec.batch_size, 0)
    stages = {}
    with tempfile.TemporaryDirectory(prefix="perf-cycle-") as work:
        _, stages["train"] = _timed(lambda: train_one_cycle(
            model, loader, preset.schedule, spec.train_iters, Path(work) / "cycle_00", 0, False), spec.device)
    _, stages["evaluation"] = _timed(lambda: evaluate(model, data.val_loader(spec.batch_size), data.classes),
                                     spec.device)
    acq = acquire(model, data, store, build_strategy(spec.strategy), build_selector("topn"), spec, 0)
    stages["MC inference"] = acq.inference_seconds
    stages["scoring"] = acq.stage_seconds["scoring"]
    stages["selection"] = acq.stage_seconds["selection"]
    stages["uncertainty record"] = acq.stage_seconds["record"]
    _, stages["uncertainty maps"] = _timed(lambda: uncertainty_maps(model, data, spec, 0), spec.device)
    return stages, (spec, len(data.shapes), len(data.val_items))


def section_cycle(args, console) -> dict:
    stages, (spec, pool, val) = run_cycle(args)
    total = sum(stages.values())
    console.print(f"4. One default cycle ({DEFAULT_PRESET}{', tiny dataset' if args.tiny else ''}): "
                  f"{spec.train_iters} training iterations, {val} validation images, pool of {pool} "
                  f"images, m = {spec.mc_samples}, strategy {spec.strategy}, harness functions")
    table = Table(title="4. Time of one cycle")
    for column in ("stage", "seconds", "share", "bound (from profiling)"):
        table.add_column(column, justify="right" if column in ("seconds", "share") else "left")
    for stage, seconds in stages.items():
        table.add_row(stage, f"{seconds:.2f}", f"{100 * seconds / total:.1f}%", BOUNDS[stage])
    table.add_row("total", f"{total:.2f}", "100%", "")
    console.print(table)
    return dict(train_iters=spec.train_iters, pool=pool, val=val, mc_samples=spec.mc_samples,
                strategy=spec.strategy, stages=stages, total=total,
                shares={stage: seconds / total for stage, seconds in stages.items()})
