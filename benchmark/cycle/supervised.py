"""The fully supervised reference: every pool pixel labelled, the same model and schedule as the
strategies' runs of that seed; one training, one record (its cycle 0). Not ranked; it gives the
leaderboard's "% of supervised"."""
from __future__ import annotations

import math
from dataclasses import fields
from typing import Iterator

from benchmark.model.training import Reporter, train_and_evaluate
from benchmark.records.schema import CycleRecord


def run_supervised(spec, preset, data, journal, reporter: Reporter | None = None) -> Iterator[CycleRecord]:
    """Train on dense labels once (unless already done) and yield its one record."""
    reporter = reporter or Reporter()
    if journal.completed_cycles() > 0:
        return
    trained = train_and_evaluate(spec, preset, data, None, 0, journal.path / "train_logs" / "cycle_00", reporter)
    values = {f.name: math.nan for f in fields(CycleRecord)}
    values.update(dataset=spec.dataset, model=spec.model, strategy=spec.strategy, selection=spec.selection,
                  seed=spec.seed, cycle=0, void_clicks=0, evaluation_seconds=trained.eval_seconds,
                  labeled_pixels=data.total_pixels, labeled_fraction=1.0,
                  miou=trained.metrics["miou"], macc=trained.metrics["macc"], aacc=trained.metrics["aacc"],
                  train_seconds=trained.train_seconds, inference_seconds=0.0, acquisition_seconds=0.0,
                  unit=spec.unit, queries=data.total_pixels)  # dense labels: no click cost (cost NaN)
    record = CycleRecord(**values)
    journal.append_cycle(record, trained.metrics["class_iou"])
    yield record
