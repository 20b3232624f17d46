"""`run --workers`: how many workers, and the order the runs are handed to them."""
from types import SimpleNamespace

import pytest

from benchmark.errors import UsageError
from benchmark.execution.workers import available_cores, interleave_seeds, resolve_workers


def runs(seeds=(0, 1, 2), strategies=("a", "b"), supervised=True):
    plan = [SimpleNamespace(seed=s, strategy=k, is_supervised=False) for s in seeds for k in strategies]
    if supervised:
        plan += [SimpleNamespace(seed=s, strategy="supervised", is_supervised=True) for s in seeds]
    return plan


def test_auto_is_one_worker_per_core_on_the_cpu_and_one_elsewhere(monkeypatch):
    monkeypatch.setattr("benchmark.execution.workers.available_cores", lambda: 2)
    assert resolve_workers(None, runs(), "cpu", "ground-truth", 1) == 2
    assert resolve_workers("auto", runs()[:1], "cpu", "ground-truth", 1) == 1  # never more workers than runs
    assert resolve_workers("auto", runs(), "cuda", "ground-truth", 1) == 1
    assert resolve_workers("auto", runs(), "cpu", "file", 1) == 1
    assert resolve_workers("auto", runs(), "cpu", "ground-truth", 2) == 1


def test_an_explicit_count_is_capped_by_the_runs():
    assert resolve_workers("3", runs(), "cpu", "ground-truth", 1) == 3
    assert resolve_workers("8", runs(seeds=(0,), strategies=("a",), supervised=False), "cpu", "ground-truth", 1) == 1


@pytest.mark.parametrize("value, device, oracle, gpus, phrase", [
    ("0", "cpu", "ground-truth", 1, "below 1"),
    ("x", "cpu", "ground-truth", 1, "not a count"),
    ("2", "cuda", "ground-truth", 1, "one device"),
    ("2", "cpu", "file", 1, "one at a time"),
    ("2", "cpu", "ground-truth", 2, "several GPUs"),
])
def test_impossible_counts_are_usage_errors(value, device, oracle, gpus, phrase):
    with pytest.raises(UsageError, match=phrase):
        resolve_workers(value, runs(), device, oracle, gpus)


def test_runs_started_together_have_different_seeds_and_supervised_come_last():
    plan = runs()
    ordered = interleave_seeds(plan)
    assert sorted(map(id, ordered)) == sorted(map(id, plan))  # every run once
    assert [(r.seed, r.strategy) for r in ordered] == [
        (0, "a"), (1, "a"), (2, "a"), (0, "b"), (1, "b"), (2, "b"),
        (0, "supervised"), (1, "supervised"), (2, "supervised")]


def test_available_cores_counts_this_process_s_cores():
    assert available_cores() >= 1
