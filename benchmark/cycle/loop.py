"""The active-learning cycle loop of one strategy run: train -> evaluate -> MC inference -> score ->
select -> oracle. Yields one CycleRecord per cycle.

It knows no strategy or selector by name and touches no file: persistence goes through the
``journal`` (a RunFolder), which also makes it resumable. Cycle 0 (random clicks, identical for
every strategy of a seed) is trained once per seed and shared through the cycle-0 cache.
"""
from __future__ import annotations

from typing import Iterator

from benchmark.config.modes import ORACLE_GROUND_TRUTH, RETRAIN_FINETUNE, VOID_SKIP
from benchmark.config.presets import selector_params
from benchmark.config.run_spec import cycle0_key
from benchmark.config.seeds import cpu_generator
from benchmark.cycle.acquisition import Acquisition, acquire
from benchmark.cycle.cycle0_cache import CycleZeroCache
from benchmark.cycle.query_diagnostics import query_diagnostics, rare_classes
from benchmark.cycle.query_units import query_unit
from benchmark.cycle.validation_maps import uncertainty_maps
from benchmark.data.label_store import GroundTruthOracle, LabelStore, PendingOracle, seed_random_pixels
from benchmark.model.training import Reporter, Trained, fresh_model, train_and_evaluate
from benchmark.records.schema import CycleRecord
from strategies import build_selector, build_strategy


class AwaitingAnswers(Exception):
    """The run stopped because clicks are waiting for an external annotator's labels."""


def cycle0_store(spec, data, oracle) -> LabelStore:
    """Cycle 0's random clicks, answered by the ground-truth ``oracle`` (same for every strategy of a
    seed; with ``--void-clicks skip`` drawn among the pixels the oracle would not answer as void)."""
    excluded = oracle.void_mask if spec.void_clicks == VOID_SKIP else None
    picks = seed_random_pixels(data.shapes, spec.pixels_per_image, cpu_generator(spec.seed, "initial"), excluded)
    return LabelStore(data.shapes).with_clicks(0, picks, oracle.answer(picks))


def initial_store(spec, data, journal, oracle) -> LabelStore:
    """The resumed label store, or cycle 0's random clicks."""
    saved = journal.read_selections()
    if saved is not None:
        return LabelStore.from_frame(data.shapes, saved)
    store = cycle0_store(spec, data, oracle)
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


def clicks_added(store: LabelStore, cycle: int, rare: set[int], unit=None) -> dict:
    """The query diagnostics of the clicks that entered at ``cycle`` (cycle 0: the random initial
    ones), from their answers: known by the time the cycle trains, whichever the oracle. A region
    query counts as one click, at its ledger pixel, with its answer (``unit.queries_added``)."""
    added = store.frame[store.frame["cycle"] == cycle] if unit is None else unit.queries_added(store, cycle)
    picks = {i: grp[["y", "x"]].to_numpy() for i, grp in added.groupby("image_id")}
    labels = {i: grp["label"].to_numpy() for i, grp in added.groupby("image_id")}
    shapes = {i: (s.height, s.width) for i, s in store.shapes.items()}
    return query_diagnostics(picks, labels, shapes, rare)


def cycle_record(spec, cycle: int, store: LabelStore, total_pixels: int, trained: Trained,
                 acq: Acquisition, queries: dict, unit_columns: dict) -> CycleRecord:
    """The row of cycles.csv of one cycle: what it trained on, how well, and what it selected
    (``unit_columns``: the query unit's, void_clicks among them)."""
    metrics, stages = trained.metrics, acq.stage_seconds
    return CycleRecord(
        dataset=spec.dataset, model=spec.model, strategy=spec.strategy, selection=spec.selection,
        seed=spec.seed, cycle=cycle, labeled_pixels=store.labeled_pixels,
        labeled_fraction=store.labeled_pixels / total_pixels,
        miou=metrics["miou"], macc=metrics["macc"], aacc=metrics["aacc"], **acq.uncertainty,
        train_seconds=trained.train_seconds, inference_seconds=acq.inference_seconds,
        acquisition_seconds=acq.acquisition_seconds, clicks_in_loss=trained.clicks_in_loss,
        **queries, evaluation_seconds=trained.eval_seconds, scoring_seconds=stages["scoring"],
        selection_seconds=stages["selection"], record_seconds=stages["record"], **unit_columns)


def run_experiment(spec, preset, data, journal, reporter: Reporter | None = None) -> Iterator[CycleRecord]:
    """Run (or resume) one (dataset, model, strategy, selection, seed) experiment, cycle by cycle."""
    reporter = reporter or Reporter()
    strategy = build_strategy(spec.strategy)
    selector = build_selector(spec.selection, **selector_params(preset, spec.selection))
    truth = GroundTruthOracle(data.ground_truth)
    oracle = truth if spec.oracle == ORACLE_GROUND_TRUTH else PendingOracle()
    void_mask = truth.void_mask if spec.void_clicks == VOID_SKIP else None
    rare = rare_classes(data.class_pixel_counts())
    store = initial_store(spec, data, journal, truth)
    unit = query_unit(spec, journal, data)
    start = journal.completed_cycles()
    state = journal.load_model_state(start - 1) if spec.retrain == RETRAIN_FINETUNE and start > 0 else None
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
        acq = acquire(trained.model, data, current, strategy, selector, spec, cycle, void_mask, unit.region_selection)
        if cycle < spec.cycles - 1:  # the last cycle's picks are never labelled
            unit.record(journal, cycle + 1, acq.picks)
            store = current.with_clicks(cycle + 1, acq.picks, unit.answer(oracle, acq.picks))
            journal.write_selections(store.frame)
        if spec.retrain == RETRAIN_FINETUNE:
            state = {k: v.detach().cpu().clone() for k, v in trained.model.state_dict().items()}
            journal.save_model_state(cycle, state)
        journal.write_maps(cycle, uncertainty_maps(trained.model, data, spec, cycle))
        record = cycle_record(spec, cycle, current, data.total_pixels, trained, acq, clicks_added(current, cycle, rare, unit),
                              unit.columns(current, cycle, truth))
        journal.append_cycle(record, trained.metrics["class_iou"])
        yield record
