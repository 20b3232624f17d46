"""`run --workers N` on one GPU (benchmark/execution/gpu_sharing.py): the rule that picks N from the
device's free memory and one run's measured peak, each worker's memory fraction, the plan that
`run` follows, and the probe's code path (on the CPU here: on a GPU `perf --gpu-check` runs it).
That N processes give the tables of one is tests/integration/test_cli_workers.py's (the runs are
independent; on a GPU each worker only adds its memory cap)."""
from dataclasses import replace
from types import SimpleNamespace

import pytest

from benchmark.execution import gpu_sharing
from benchmark.execution.gpu_sharing import (
    CONTEXT_BYTES,
    GIB,
    HEADROOM,
    MEMORY_SHARE,
    memory_fraction,
    workers_for_memory,
)
from benchmark.execution.workers import WorkerPlan, plan_workers

RUNS = [SimpleNamespace(seed=s, strategy=k, is_supervised=False, device="cuda") for s in range(3) for k in "abcdef"]


def test_the_rule_divides_the_free_memory_by_one_runs_share():
    # the embedded default on an H200: ~1 GiB peak per run, 139 GiB free
    per_worker = HEADROOM * GIB + CONTEXT_BYTES
    assert workers_for_memory(139 * GIB, GIB, runs=18, cores=16) == 16  # capped by the cores
    assert workers_for_memory(139 * GIB, GIB, runs=100, cores=1000) == int(MEMORY_SHARE * 139 * GIB // per_worker)
    # the paper preset: 23.5 GiB peak in fp32 -> 4 runs at once
    assert workers_for_memory(139 * GIB, int(23.5 * GIB), runs=60, cores=16) == 4
    assert workers_for_memory(20 * GIB, int(23.5 * GIB), runs=60, cores=16) == 1  # never below 1
    assert workers_for_memory(139 * GIB, GIB, runs=2, cores=16) == 2  # never more than the runs


def test_each_worker_may_allocate_an_equal_share_of_the_free_memory():
    assert memory_fraction(4, 100 * GIB, 140 * GIB) == pytest.approx(MEMORY_SHARE * 25 / 140)
    assert memory_fraction(1, 140 * GIB, 140 * GIB) == pytest.approx(MEMORY_SHARE)
    assert memory_fraction(0, 1, 1) == 1.0 and memory_fraction(2, 1, 0) == 1.0


def test_auto_on_cuda_probes_one_run_and_caps_every_worker(monkeypatch):
    probed = []
    monkeypatch.setattr(gpu_sharing, "probe_peak_bytes", lambda run: probed.append(run) or (2 * GIB, 100 * GIB, 140 * GIB))
    monkeypatch.setattr("benchmark.execution.workers.available_cores", lambda: 16)
    lines = []
    plan = plan_workers("auto", RUNS, "cuda", "ground-truth", 1, SimpleNamespace(print=lines.append))
    expected = workers_for_memory(100 * GIB, 2 * GIB, len(RUNS), 16)
    assert plan == WorkerPlan(expected, memory_fraction(expected, 100 * GIB, 140 * GIB)) and expected > 1
    assert probed == [RUNS[0]] and "--workers auto on the GPU" in lines[0] and "2.00 GiB" in lines[0]
    assert plan_workers(None, RUNS[:1], "cuda", "ground-truth", 1) == WorkerPlan(1)  # one run: no probe
    assert plan_workers("auto", RUNS, "cuda", "file", 1) == WorkerPlan(1)  # answers from a file: serial
    assert len(probed) == 1


def test_an_explicit_count_on_cuda_gives_each_an_equal_share_and_the_cpu_none():
    assert plan_workers("3", RUNS, "cuda:0", "ground-truth", 1) == WorkerPlan(3, MEMORY_SHARE / 3)
    assert plan_workers("3", RUNS, "cpu", "ground-truth", 1) == WorkerPlan(3)
    assert plan_workers("1", RUNS, "cuda", "ground-truth", 1) == WorkerPlan(1)


def test_the_device_index_and_no_cap_without_cuda():
    assert gpu_sharing.device_index("cuda") == 0 and gpu_sharing.device_index("cuda:3") == 3
    gpu_sharing.limit_this_process("cpu", 0.5)  # no CUDA here: nothing to cap, no error


@pytest.mark.integration
def test_the_probe_trains_and_infers_one_runs_model(tmp_path):
    """The probe's path through the harness's functions (a fresh model, a few iterations on
    random clicks, one MC batch), on the CPU where its peak is 0."""
    from benchmark.config.presets import PRESET_DIR
    from benchmark.perf import cycle

    args = SimpleNamespace(tiny=True, device="cpu", cycle_mc_samples=2, cycle_iters=2, strategy="random")
    _, _, spec, _ = cycle.prepare(args)
    spec = replace(spec, preset=str(PRESET_DIR / cycle.DEFAULT_PRESET), seed=0)
    assert gpu_sharing._probe(spec) == (0, 0, 0)
