"""The active-learning cycle loop of one strategy run: train -> evaluate -> MC inference -> score ->
select -> oracle. Yields one CycleRecord per cycle.

It knows no strategy by name and touches no file: persistence goes through the ``journal`` (a
RunFolder), which also makes it resumable. Cycle 0 (random clicks, identical for every strategy
of a seed) is trained once per seed and shared through the cycle-0 cache.
"""
from __future__ import annotations

from typing import Iterator

from benchmark.acquisition import acquire
from benchmark.cycle0_cache import CycleZeroCache
from benchmark.labels import GroundTruthOracle, LabelStore, PendingOracle, seed_random_pixels
from benchmark.maps import uncertainty_maps
from benchmark.plan import cycle0_key
from benchmark.records import CycleRecord
from benchmark.seeds import generator
from benchmark.training import Reporter, Trained, fresh_model, train_and_evaluate
from strategies import build_strategy


class AwaitingAnswers(Exception):
    """The run stopped because clicks are waiting for an external annotator's labels."""


def cycle0_store(spec, data) -> LabelStore:
    """Cycle 0's random clicks, answered by the ground truth (same for every strategy of a seed)."""
    store = LabelStore(data.shapes)
    picks = seed_random_pixels(data.shapes, spec.pixels_per_image, generator("cpu", spec.seed, "initial"))
    store.add(0, picks, GroundTruthOracle(data.ground_truth).answer(picks))
    return store


def initial_store(spec, data, journal) -> LabelStore:
    """The resumed label store, or cycle 0's random clicks."""
    saved = journal.read_selections()
    if saved is not None:
        return LabelStore.from_frame(data.shapes, saved)
    store = cycle0_store(spec, data)
    journal.write_selections(store.frame)
    return store


def train_cycle_zero(spec, preset, data, store, work_dir, reporter) -> Trained:
    """Cycle 0's model from the shared cache, or trained now (logs in ``work_dir``) and put there.

    The cache entry stays locked from the look-up to the save: of several processes reaching
    cycle 0 of one seed at once, the first trains it, the others wait and load it.
    """
    cache = CycleZeroCache(spec.out, cycle0_key(spec))
    with cache.locked():
        cached = cache.load()
        if cached is None:
            trained = train_and_evaluate(spec, preset, data, store, 0, work_dir, reporter)
            facts = {k: v for k, v in vars(trained).items() if k != "model"}
            cache.save({k: v.detach().cpu() for k, v in trained.model.state_dict().items()}, facts)
            return trained
    model = fresh_model(spec, preset, data)
    model.load_state_dict(cached.pop("state"))
    return Trained(model=model, **cached)


def run_experiment(spec, preset, data, journal, reporter: Reporter | None = None) -> Iterator[CycleRecord]:
    """Run (or resume) one (dataset, model, strategy, seed) experiment, cycle by cycle."""
    reporter = reporter or Reporter()
    store = initial_store(spec, data, journal)
    strategy = build_strategy(spec.strategy)
    oracle = GroundTruthOracle(data.ground_truth) if spec.oracle == "ground-truth" else PendingOracle()
    last_cycle = spec.cycles - 1
    start = journal.completed_cycles()
    state = journal.load_model_state(start - 1) if spec.retrain == "finetune" and start > 0 else None
    for cycle in range(start, spec.cycles):
        current = store.up_to_cycle(cycle)
        if len(current.pending):
            raise AwaitingAnswers(f"{len(current.pending)} clicks of cycle {cycle} in {spec.run_id} have no "
                                  f"label yet: answer them with `python -m benchmark import-labels`, then --resume")
        if cycle == 0:
            trained = train_cycle_zero(spec, preset, data, current, journal.path / "train_logs" / "cycle_00",
                                       reporter)
        else:
            trained = train_and_evaluate(spec, preset, data, current, cycle,
                                         journal.path / "train_logs" / f"cycle_{cycle:02d}", reporter, state)
        labeled = current.labeled_pixels  # what this cycle trained on
        acq = acquire(trained.model, data, current, strategy, spec, cycle)
        if cycle < last_cycle:
            store = current.with_clicks(cycle + 1, acq.picks, oracle.answer(acq.picks))
            journal.write_selections(store.frame)
        if spec.retrain == "finetune":
            state = {k: v.detach().cpu().clone() for k, v in trained.model.state_dict().items()}
            journal.save_model_state(cycle, state)
        journal.write_maps(cycle, uncertainty_maps(trained.model, data, spec, cycle))
        metrics = trained.metrics
        record = CycleRecord(
            dataset=spec.dataset, model=spec.model, strategy=spec.strategy, seed=spec.seed, cycle=cycle,
            labeled_pixels=labeled, labeled_fraction=labeled / data.total_pixels,
            miou=metrics["miou"], macc=metrics["macc"], aacc=metrics["aacc"],
            epistemic=acq.uncertainty["epistemic"], aleatoric=acq.uncertainty["aleatoric"],
            posterior=acq.uncertainty["posterior"], train_seconds=trained.train_seconds,
            inference_seconds=acq.inference_seconds, acquisition_seconds=acq.acquisition_seconds)
        journal.append_cycle(record, metrics["class_iou"])
        yield record
