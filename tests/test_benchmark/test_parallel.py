"""`run --workers`: how many workers, and the order the runs are handed to them."""
import os
import subprocess
import sys
from types import SimpleNamespace

import pytest

from benchmark.errors import UsageError
from benchmark.execution.workers import interleave_seeds, resolve_workers


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
    assert resolve_workers("3", runs(), "cuda:1", "ground-truth", 1) == 3  # runs sharing one GPU
    assert resolve_workers("8", runs(seeds=(0,), strategies=("a",), supervised=False), "cpu", "ground-truth", 1) == 1


@pytest.mark.parametrize("value, device, oracle, gpus, phrase", [
    ("0", "cpu", "ground-truth", 1, "below 1"),
    ("x", "cpu", "ground-truth", 1, "not a count"),
    ("2", "mps", "ground-truth", 1, "only on cuda"),
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


CORES_AND_AUTO = """
from types import SimpleNamespace
from benchmark.execution.workers import available_cores, resolve_workers
runs = [SimpleNamespace(seed=s, strategy="a", is_supervised=False) for s in range(64)]
print(available_cores(), resolve_workers("auto", runs, "cpu", "ground-truth", 1))
"""


def _cores_and_auto_workers(cores: set | None) -> tuple[int, int]:
    """(available_cores(), --workers auto) in a process started on ``cores`` only (as under Slurm's
    or taskset's allocation); None: on every core this process may use."""
    from tests.conftest import REPO

    restrict = None if cores is None else (lambda: os.sched_setaffinity(0, cores))
    proc = subprocess.run([sys.executable, "-c", CORES_AND_AUTO], cwd=REPO, capture_output=True, text=True,
                          preexec_fn=restrict, timeout=300)
    assert proc.returncode == 0, proc.stderr
    cores_seen, workers = map(int, proc.stdout.split()[-2:])
    return cores_seen, workers


@pytest.mark.skipif(not hasattr(os, "sched_setaffinity"), reason="no CPU affinity masks on this OS")
def test_available_cores_and_auto_workers_follow_the_affinity_mask():
    allowed = sorted(os.sched_getaffinity(0))
    assert _cores_and_auto_workers(None) == (len(allowed), min(len(allowed), 64))
    assert _cores_and_auto_workers({allowed[-1]}) == (1, 1)
    if len(allowed) >= 2:
        assert _cores_and_auto_workers(set(allowed[:2])) == (2, 2)
