"""The active-learning cycle loop of one run: train -> evaluate -> MC inference -> score -> select
-> oracle. Yields one CycleRecord per cycle. It knows no strategy by name and touches no file:
persistence goes through the ``journal`` (a RunFolder), which also makes it resumable.
"""
from __future__ import annotations

import hashlib
import math
import time
from dataclasses import dataclass, field
from typing import Callable, Iterator

import numpy as np
import torch

from benchmark.errors import UsageError
from benchmark.labels import GroundTruthOracle, LabelStore, PendingOracle, seed_random_pixels
from benchmark.mc_dropout import mc_posteriors
from benchmark.model import build_model, evaluate, train_one_cycle
from benchmark.records import CycleRecord, CycleZeroCache
from strategies import build_strategy, select_top_n
from strategies.uncertainty import decomposition

MAP_STRATEGIES = ("balent", "bald", "pbald", "entropy")


class AwaitingAnswers(Exception):
    """The run stopped because clicks are waiting for an external annotator's labels."""


def derive_seed(*parts) -> int:
    """A stable 31-bit seed from the run seed and a purpose (same on every machine and run)."""
    digest = hashlib.sha256(repr(parts).encode()).digest()
    return int.from_bytes(digest[:4], "little") & 0x7FFFFFFF


@dataclass
class Reporter:
    """Progress callbacks; the CLI plugs a rich display in, tests leave the no-ops."""

    start_cycle: Callable[[int, int], None] = lambda cycle, iters: None
    advance_iter: Callable[[], None] = lambda: None


@dataclass
class Acquisition:
    picks: dict = field(default_factory=dict)
    uncertainty: dict = field(default_factory=dict)
    inference_seconds: float = 0.0
    acquisition_seconds: float = 0.0  # scoring + selection + uncertainty decomposition
    stage_seconds: dict = field(default_factory=dict)  # that split: scoring, selection, decomposition


def initial_store(spec, data, journal) -> LabelStore:
    """The resumed label store, or cycle 0's random clicks (same for every strategy of a seed)."""
    saved = journal.read_selections()
    if saved is not None:
        return LabelStore.from_frame(data.shapes, saved)
    store = LabelStore(data.shapes)
    if spec.is_supervised:
        return store
    if any(spec.pixels_per_image * spec.cycles > s.pixels for s in data.shapes.values()):
        smallest = min(s.pixels for s in data.shapes.values())
        raise UsageError(f"--pixels-per-image {spec.pixels_per_image} x --cycles {spec.cycles} asks for "
                         f"more pixels than the smallest image has ({smallest}): lower one of them")
    picks = seed_random_pixels(data.shapes, spec.pixels_per_image,
                               torch.Generator().manual_seed(derive_seed(spec.seed, "initial")))
    store.add(0, picks, GroundTruthOracle(data.ground_truth).answer(picks))
    journal.write_selections(store.frame)
    return store


def _synchronize(device) -> None:
    """Wait for queued GPU work, so that the stage timings are charged to the right stage."""
    if torch.device(device).type == "cuda":
        torch.cuda.synchronize(device)


def acquire(model, data, store: LabelStore, strategy, spec, cycle: int) -> Acquisition:
    """MC inference over the pool, scores, per-image top-n picks, uncertainty decomposition.

    Everything stays on ``spec.device``, streaming one batch at a time: only the picked
    coordinates and, once at the end, the decomposition sums come back to the host.
    """
    device = spec.device
    masks = torch.Generator(device=device).manual_seed(derive_seed(spec.seed, cycle, "masks"))
    select = torch.Generator(device=device).manual_seed(derive_seed(spec.seed, cycle, "select"))
    keep = bool(getattr(strategy, "needs_samples", False))
    out, sums, count, image_id = Acquisition(), {}, 0, 0
    stages = dict(scoring=0.0, selection=0.0, decomposition=0.0)
    for batch in data.pool_loader(spec.batch_size):
        start = time.perf_counter()
        posteriors = mc_posteriors(model, batch, spec.mc_samples, masks, keep_samples=keep)
        _synchronize(device)
        out.inference_seconds += time.perf_counter() - start
        for post in posteriors:
            labelled = store.labelled_mask(image_id, device)
            t0 = time.perf_counter()
            scores = strategy.score(post, generator=select)
            _synchronize(device)
            t1 = time.perf_counter()
            out.picks[image_id] = select_top_n(scores, labelled, spec.pixels_per_image,
                                               select).cpu().numpy()
            t2 = time.perf_counter()
            for name, value in decomposition(post).items():  # summed over unlabelled pixels
                total = torch.where(labelled, 0.0, value.double()).sum()
                sums[name] = total if name not in sums else sums[name] + total
            count = count + (~labelled).sum()
            _synchronize(device)
            stages["scoring"] += t1 - t0
            stages["selection"] += t2 - t1
            stages["decomposition"] += time.perf_counter() - t2
            image_id += 1
        # drop this batch's statistics before the next batch's are computed: otherwise two
        # batches are alive at once and the peak depends on how the pool divides into batches
        posteriors = post = scores = None
    count = max(int(count), 1)
    out.uncertainty = {k: float(v) / count for k, v in sums.items()}
    out.stage_seconds = stages
    out.acquisition_seconds = sum(stages.values())
    return out


def uncertainty_maps(model, data, spec, cycle: int) -> list[dict]:
    """For the first ``map_images`` validation images: image, gt, prediction, four score maps
    and the pixels each of those strategies would pick (saved for the figures)."""
    if spec.map_images <= 0:
        return []
    masks = torch.Generator(device=spec.device).manual_seed(derive_seed(spec.seed, cycle, "maps"))
    strategies = {name: build_strategy(name) for name in MAP_STRATEGIES}
    maps, image_id = [], 0
    for batch in data.val_loader(spec.batch_size, limit=spec.map_images):
        for post, sample in zip(mc_posteriors(model, batch, spec.mc_samples, masks), batch["data_samples"]):
            entry = dict(image_id=image_id, img_path=sample.img_path,
                         gt=sample.gt_sem_seg.data[0].cpu().numpy().astype(np.uint8),
                         pred=post.mean.argmax(dim=-3).cpu().numpy().astype(np.uint8))
            empty = torch.zeros(post.mean.shape[-2:], dtype=torch.bool, device=post.mean.device)
            for name, strategy in strategies.items():
                select = torch.Generator(device=spec.device).manual_seed(derive_seed(spec.seed, cycle, name))
                scores = strategy.score(post, generator=select)
                entry[f"score_{name}"] = scores.cpu().numpy().astype(np.float16)
                entry[f"picks_{name}"] = select_top_n(scores, empty, spec.pixels_per_image,
                                                      select).cpu().numpy().astype(np.int32)
            maps.append(entry)
            image_id += 1
    return maps


def cycle_zero_key(spec, preset) -> str:
    """Digest of everything that determines cycle 0's model (not the strategy): the run's settings
    and the resolved preset (its ``_base_`` files included)."""
    import json

    fields = dict(spec.as_dict(), strategy="", out="", oracle="", map_images=0, retrain="", preset="",
                  resolved_preset=json.dumps(preset.to_dict(), sort_keys=True, default=str))
    digest = hashlib.sha256(repr(sorted(fields.items())).encode()).hexdigest()[:16]
    return f"{spec.dataset}__{spec.model}__seed{spec.seed}__{digest}"


def train_and_evaluate(spec, preset, data, journal, store, cycle, state, reporter):
    """Train a fresh model (or the previous cycle's, with finetune) on ``store``; evaluate it.

    Cycle 0 of a strategy run is shared through a CycleZeroCache: it is identical for every
    strategy of a seed, so it is trained once.
    """
    model = build_model(preset, len(data.classes), derive_seed(spec.seed, "init"), spec.pretrained,
                        spec.device)
    shared = None if spec.is_supervised or cycle != 0 else CycleZeroCache(spec.out, cycle_zero_key(spec, preset))
    cached = shared.load() if shared is not None else None
    if cached is not None:
        model.load_state_dict(cached["state"])
        return model, cached["train_seconds"], cached["metrics"]
    if state is not None:
        model.load_state_dict(state)
    reporter.start_cycle(cycle, spec.train_iters)
    started = time.perf_counter()
    loader = data.train_loader(None if spec.is_supervised else store, spec.batch_size,
                               derive_seed(spec.seed, cycle, "sampler"))
    train_one_cycle(model, loader, preset.schedule, spec.train_iters,
                    journal.path / "train_logs" / f"cycle_{cycle:02d}",
                    derive_seed(spec.seed, cycle, "train"), spec.amp, reporter.advance_iter)
    train_seconds = time.perf_counter() - started
    metrics = evaluate(model, data.val_loader(spec.batch_size), data.classes)
    if shared is not None:
        shared.save({k: v.detach().cpu() for k, v in model.state_dict().items()}, metrics, train_seconds)
    return model, train_seconds, metrics


def run_experiment(spec, preset, data, journal, reporter: Reporter = Reporter()) -> Iterator[CycleRecord]:
    """Run (or resume) one (dataset, model, strategy, seed) experiment, cycle by cycle."""
    store = initial_store(spec, data, journal)
    strategy = None if spec.is_supervised else build_strategy(spec.strategy)
    oracle = GroundTruthOracle(data.ground_truth) if spec.oracle == "ground-truth" else PendingOracle()
    last_cycle = 0 if spec.is_supervised else spec.cycles - 1
    start = journal.completed_cycles()
    state = journal.load_model_state(start - 1) if spec.retrain == "finetune" and start > 0 else None
    for cycle in range(start, last_cycle + 1):
        current = store.up_to_cycle(cycle)
        if len(current.pending):
            raise AwaitingAnswers(f"{len(current.pending)} clicks of cycle {cycle} in {spec.run_id} have no "
                                  f"label yet: answer them with `python -m benchmark import-labels`, then --resume")
        model, train_seconds, metrics = train_and_evaluate(spec, preset, data, journal, current,
                                                           cycle, state, reporter)
        labeled = data.total_pixels if spec.is_supervised else current.labeled_pixels
        acq = Acquisition() if spec.is_supervised else acquire(model, data, current, strategy, spec, cycle)
        if acq.picks and cycle < last_cycle:
            store = current
            store.add(cycle + 1, acq.picks, oracle.answer(acq.picks))
            journal.write_selections(store.frame)
        if spec.retrain == "finetune":
            state = {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}
            journal.save_model_state(cycle, state)
        if not spec.is_supervised:
            journal.write_maps(cycle, uncertainty_maps(model, data, spec, cycle), spec, data)
        record = CycleRecord(
            dataset=spec.dataset, model=spec.model, strategy=spec.strategy, seed=spec.seed, cycle=cycle,
            labeled_pixels=labeled, labeled_fraction=labeled / data.total_pixels,
            miou=metrics["miou"], macc=metrics["macc"], aacc=metrics["aacc"],
            epistemic=acq.uncertainty.get("epistemic", math.nan),
            aleatoric=acq.uncertainty.get("aleatoric", math.nan),
            posterior=acq.uncertainty.get("posterior", math.nan),
            train_seconds=train_seconds, inference_seconds=acq.inference_seconds,
            acquisition_seconds=acq.acquisition_seconds)
        journal.append_cycle(record, metrics["class_iou"])
        yield record
