"""Section 6: one cycle's acquisition on a pool of a real dataset's size (CamVid at half
resolution: 367 images of 360x480), per strategy, with the uncertainty record exact (every
unlabelled pixel: what every strategy paid before) and sampled (``--record-pixels``, the paper
presets' setting), and the sampled record's error against the exact one on that pool.

The MC posteriors of each image are computed once and then scored, selected from and recorded by
each strategy on its own copy (so no strategy reuses another's cached BalEnt term); the harness's
own functions do the work (``mc_posteriors``, ``strategy.score``, ``selector.select``,
``PoolRecord``). Training is timed over a few iterations on the same images and scaled to the
default schedule's iteration count (stated in the output): ``(T(2 + k) - T(2)) / k``, two
trainings with a loader each; "too fast to estimate" where the difference drowns in the noise.
"""
from __future__ import annotations

import contextlib
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch
from rich.table import Table

from benchmark.perf.estimates import NOT_AVAILABLE, per_unit, ratio, scaled, shown
from benchmark.perf.fixtures import acquisition_spec, register_mmseg, synchronize
from strategies import native_kernel

CAMVID_SIZE = dict(n_train=367, n_val=101, height=360, width=480)
TINY_SIZE = dict(n_train=6, n_val=2, height=64, width=96)
STRATEGIES = ("random", "bald", "balent")


def _prepare(args):
    from benchmark.config.presets import PRESET_DIR, load_preset
    from benchmark.data import get_dataset
    from benchmark.data.label_store import GroundTruthOracle, LabelStore, seed_random_pixels
    from benchmark.data.run_data import RunData
    from benchmark.data.synthetic import default_cache_dir, ensure_synthetic

    register_mmseg()
    preset = load_preset(PRESET_DIR / "synthetic_deeplabv3plus.py")
    size = TINY_SIZE if args.tiny else CAMVID_SIZE
    root = ensure_synthetic(default_cache_dir(), seed=0, **size)
    data = RunData(get_dataset("synthetic"), str(root), preset)
    store = LabelStore(data.shapes)
    picks = seed_random_pixels(data.shapes, 5, torch.Generator().manual_seed(0))
    store.add(0, picks, GroundTruthOracle(data.ground_truth).answer(picks))
    return preset, data, store, size


def _train_seconds_per_iter(preset, data, store, device, iters: int) -> tuple[object, float | None]:
    """The trained model and ``(T(2 + iters) - T(2)) / iters`` (None: too fast to estimate); each
    training gets its own loader (an InfiniteSampler feeds one Runner only)."""
    from benchmark.model.segmentor import build_model, train_one_cycle

    model = build_model(preset, len(data.classes), 0, None, device)
    times = []
    with tempfile.TemporaryDirectory(prefix="perf-pool-") as work:
        for n in (2, 2 + iters):
            loader = data.train_loader(store, int(preset.schedule.batch_size), 0)
            synchronize(device)
            start = time.perf_counter()
            train_one_cycle(model, loader, preset.schedule, n, Path(work) / f"t{n}", 0, False)
            synchronize(device)
            times.append(time.perf_counter() - start)
    return model, per_unit(times[1], times[0], iters)


@contextlib.contextmanager
def _clock(device, totals: dict, key: str):
    """Add the wall time of the block (queued device work included) to ``totals[key]``."""
    synchronize(device)
    start = time.perf_counter()
    yield
    synchronize(device)
    totals[key] = totals.get(key, 0.0) + time.perf_counter() - start


def measure(args) -> dict:
    """Seconds of every stage, per strategy, and the record means exact and sampled."""
    from benchmark.config.seeds import cpu_generator
    from benchmark.cycle.acquisition import pool_batches
    from benchmark.cycle.pool_record import PoolRecord
    from benchmark.model.mc_dropout import mc_posteriors
    from benchmark.model.segmentor import evaluate
    from strategies import build_selector, build_strategy

    device = args.device
    preset, data, store, size = _prepare(args)
    # a GPU iteration is short beside a Runner's start-up noise: time more of them there
    extra = 1 if args.tiny else (30 if torch.device(device).type == "cuda" else 3)
    model, per_iter = _train_seconds_per_iter(preset, data, store, device, extra)
    totals = {}
    with _clock(device, totals, "evaluation"):
        evaluate(model, data.val_loader(4), data.classes)
    m = args.pool_mc_samples or (3 if args.tiny else 10)
    spec = acquisition_spec(device, m, 4, 5)
    sample = args.pool_record_pixels
    strategies = {name: build_strategy(name) for name in STRATEGIES}
    selector = build_selector("topn")
    seconds = {name: {} for name in STRATEGIES}
    records = {name: (PoolRecord(0), PoolRecord(sample)) for name in STRATEGIES}
    for image_ids, batch in pool_batches(data, spec.batch_size, False):
        masks = [cpu_generator(spec.seed, 0, "masks", i) for i in image_ids]
        with _clock(device, totals, "inference"):
            posts = mc_posteriors(model, batch, m, masks)
        for image_id, post in zip(image_ids, posts):
            labelled = store.labelled_mask(image_id, device)
            for name, strategy in strategies.items():
                own, times = replace(post), seconds[name]  # a copy with an empty cache of derived terms
                exact, sampled = records[name]
                g = cpu_generator(spec.seed, 0, "select", name, image_id)
                with _clock(device, times, "scoring"):
                    scores = strategy.score(own, generator=g)
                with _clock(device, times, "selection"):
                    selector.select(scores, labelled, 5, g)
                with _clock(device, times, "sampled"):
                    sampled.add(own, ~labelled, cpu_generator(0, 0, "record", image_id))
                # balent's exact record shares the term its scoring computed, as in the harness
                with _clock(device, times, "exact"):
                    exact.add(own if name == "balent" else replace(post), ~labelled)
    iters = int(preset.schedule.iters)
    train = scaled(per_iter, iters)  # one cycle's training at the default schedule (None: unknown)
    strategies_out = {}
    for name, s in seconds.items():
        before = s["scoring"] + s["selection"] + s["exact"]
        after = s["scoring"] + s["selection"] + s["sampled"]
        strategies_out[name] = dict(s, before=before, after=after, before_share=ratio(before, train),
                                    after_share=ratio(after, train),
                                    record_speedup=ratio(s["exact"], s["sampled"]))
    records_out = {k: dict(exact=a.result(), sampled=b.result()) for k, (a, b) in records.items()}
    return dict(size=size, m=m, per_iter=per_iter, iters=iters, train_per_cycle=train,
                batch=int(preset.schedule.batch_size), evaluation=totals["evaluation"],
                inference=totals["inference"], strategies=strategies_out, records=records_out,
                sample=sample)


def section_real_pool(args, console) -> dict:
    out = measure(args)
    size, per_iter, train = out["size"], out["per_iter"], out["train_per_cycle"]
    training = (f"{per_iter:.2f} s/iteration x {out['iters']} iterations (the default schedule, batch "
                f"{out['batch']}) = {train:.0f} s per cycle" if per_iter is not None else
                f"{shown(None, '')} from these timings (the default schedule: {out['iters']} iterations "
                f"of batch {out['batch']})")
    console.print(f"6. Acquisition on a pool of {size['n_train']} images of {size['height']}x{size['width']} "
                  f"(CamVid's training split at half resolution{', tiny here' if args.tiny else ''}), "
                  f"DeepLabV3+ tiny, m = {out['m']}, 5 clicks per image; training: {training}; evaluation "
                  f"of {size['n_val']} images {out['evaluation']:.1f} s; MC inference over the pool "
                  f"{out['inference']:.1f} s (shared by every strategy); BalEnt's posterior term: "
                  f"{native_kernel.describe()}")
    table = Table(title="6. One cycle's acquisition per strategy: record exact (before) vs sampled (after)")
    for column in ("strategy", "scoring s", "selection s", "record exact s", f"record {out['sample']} px/img s",
                   "acquisition before / training", "after / training", "record speed-up"):
        table.add_column(column, justify="left" if column == "strategy" else "right")
    for name, s in out["strategies"].items():  # shares of the cycle's training: n/a when it is unknown
        table.add_row(name, f"{s['scoring']:.2f}", f"{s['selection']:.2f}", f"{s['exact']:.2f}",
                      f"{s['sampled']:.2f}", shown(s["before_share"], ".1%", missing=NOT_AVAILABLE),
                      shown(s["after_share"], ".1%", missing=NOT_AVAILABLE),
                      shown(s["record_speedup"], ".1f", missing=NOT_AVAILABLE) + ("x" if s["record_speedup"] else ""))
    console.print(table)
    table = Table(title=f"6b. The sampled record against the exact one (strategy random's copy; "
                        f"{out['sample']} pixels per image)")
    for column in ("column", "exact", "sampled", "difference", "relative"):
        table.add_column(column, justify="left" if column == "column" else "right")
    exact, sampled = out["records"]["random"]["exact"], out["records"]["random"]["sampled"]
    for key in exact:
        a, b = exact[key], sampled[key]
        rel = abs(b - a) / abs(a) if a and np.isfinite(a) else float("nan")
        table.add_row(key, f"{a:.6g}", f"{b:.6g}", f"{b - a:+.3g}", f"{rel:.2%}")
    console.print(table)
    return out
