"""Several processes writing into one output folder: table rebuilds, the cycle-0 lock, run locks.

Workers are started with the ``spawn`` method (a fresh interpreter each, as separate jobs are),
released together by a barrier so that they really overlap.
"""
import json
import multiprocessing as mp
import time
from dataclasses import replace
from pathlib import Path

import pandas as pd
import pytest
import torch

from benchmark.config.run_spec import RunSpec
from benchmark.errors import UsageError
from benchmark.execution.run_state import FINISHED, INTERRUPTED, RUNNING, RunClaim, check_not_running, run_lock_path
from benchmark.records.locks import FileLock, is_locked
from benchmark.records.run_folder import RunFolder
from benchmark.records.schema import CycleRecord
from benchmark.reports.tables import collect_tables, rebuild_leaderboard, write_tables
from tests.test_benchmark.test_plan import SPEC
from tests.test_benchmark.test_records import record

WORKERS, RUNS_PER_WORKER, CYCLES = 3, 2, 3


def spec(out, strategy="balent", seed=0) -> RunSpec:
    return replace(SPEC, strategy=strategy, seed=seed, cycles=CYCLES, out=str(out))


def _record(strategy, seed, cycle) -> CycleRecord:
    return record(strategy, seed, cycle, miou=10.0 + cycle + seed)


def _table_writer(out, worker, barrier):
    """Owns RUNS_PER_WORKER runs; after every cycle it appends, it rebuilds the union tables and
    checks that they hold every row it has appended so far (a stale rebuild by another worker,
    from run folders read before the append, would have dropped one)."""
    mine = set()
    barrier.wait()
    for cycle in range(CYCLES):
        for k in range(RUNS_PER_WORKER):
            RunFolder(Path(out) / "runs" / f"w{worker}_r{k}").append_cycle(
                _record(f"s{k}", worker, cycle), {"road": 1.0 * cycle, "sky": 2.0})
            mine.add((f"s{k}", worker, cycle))
            write_tables(out)
            rebuild_leaderboard(out)
            table = pd.read_csv(Path(out) / "cycles.csv")
            assert mine <= set(table[["strategy", "seed", "cycle"]].itertuples(index=False, name=None))


def _spawn(target, *args_per_worker):
    ctx = mp.get_context("spawn")
    barrier = ctx.Barrier(len(args_per_worker))
    procs = [ctx.Process(target=target, args=(*args, barrier)) for args in args_per_worker]
    for proc in procs:
        proc.start()
    for proc in procs:
        proc.join(timeout=300)
    assert all(proc.exitcode == 0 for proc in procs), [proc.exitcode for proc in procs]


def test_concurrent_table_rebuilds_never_drop_a_row(tmp_path):
    _spawn(_table_writer, *[(str(tmp_path), w) for w in range(WORKERS)])
    cycles = pd.read_csv(tmp_path / "cycles.csv")
    assert len(cycles) == WORKERS * RUNS_PER_WORKER * CYCLES
    assert not cycles.duplicated(["strategy", "seed", "cycle"]).any()
    expected, ious = collect_tables(tmp_path)
    pd.testing.assert_frame_equal(cycles, expected, check_dtype=False)
    assert len(pd.read_csv(tmp_path / "class_iou.csv")) == len(ious) == 2 * len(cycles)
    board = pd.read_csv(tmp_path / "leaderboard.csv")
    assert set(board["n_cycles"]) == {CYCLES}  # the last rebuild saw every run's last cycle


def _cycle0_worker(out, worker, barrier):
    """train_cycle_zero with training replaced by a slow fake that logs who trained."""
    import benchmark.cycle.loop as loop
    from benchmark.model.training import Reporter, Trained

    def fake_train(spec, preset, data, store, cycle, work_dir, reporter, state=None):
        with open(Path(out) / "trained_by.txt", "a") as log:
            log.write(f"{worker}\n")
        time.sleep(1.0)
        torch.manual_seed(worker)  # each worker would train a different model
        return Trained(model=torch.nn.Linear(3, 2), metrics={"miou": float(worker)}, train_seconds=1.0,
                       eval_seconds=0.5, clicks_in_loss=1.0)

    loop.train_and_evaluate = fake_train
    loop.fresh_model = lambda spec, preset, data: torch.nn.Linear(3, 2)
    barrier.wait()
    trained = loop.train_cycle_zero(spec(out), None, None, None, Path(out) / "logs", Reporter())
    result = dict(miou=trained.metrics["miou"], weight=trained.model.weight.tolist())
    (Path(out) / f"result_{worker}.json").write_text(json.dumps(result))


def test_cycle_zero_is_trained_once_when_processes_race_for_it(tmp_path):
    _spawn(_cycle0_worker, *[(str(tmp_path), w) for w in range(WORKERS)])
    trainers = (tmp_path / "trained_by.txt").read_text().split()
    assert len(trainers) == 1
    results = [json.loads((tmp_path / f"result_{w}.json").read_text()) for w in range(WORKERS)]
    assert all(r == results[0] for r in results)  # every worker ends with the one trained model
    assert results[0]["miou"] == float(trainers[0])


def _hold(path, seconds, barrier):
    with FileLock(path):
        barrier.wait()
        time.sleep(seconds)


def _held_elsewhere(path, seconds=30.0):
    ctx = mp.get_context("spawn")
    barrier = ctx.Barrier(2)
    proc = ctx.Process(target=_hold, args=(str(path), seconds, barrier))
    proc.start()
    barrier.wait()
    return proc


def test_a_run_held_by_another_process_fails_fast_and_names_the_holder(tmp_path):
    run = spec(tmp_path)
    RunFolder(run.run_dir).write_status(dict(state=RUNNING, pid=4242, host="node7", job_id="77_3"))
    holder = _held_elsewhere(run_lock_path(run))
    try:
        assert is_locked(run_lock_path(run))
        with pytest.raises(UsageError, match="pid 4242 on host node7, job 77_3"):
            check_not_running([spec(tmp_path, "random"), run])
        started = time.monotonic()
        with pytest.raises(UsageError, match="is being executed by"):
            with RunClaim(run, wait=0.3):
                pass
        assert time.monotonic() - started < 5
    finally:
        holder.kill()
        holder.join()
    assert not is_locked(run_lock_path(run))  # a killed holder leaves no stale lock
    check_not_running([run])


def test_a_job_waits_for_the_run_lock_instead_of_failing(tmp_path):
    run = spec(tmp_path)
    holder = _held_elsewhere(run_lock_path(run), seconds=1.5)
    told = []
    started = time.monotonic()
    with RunClaim(run, wait=None, on_wait=told.append):
        waited = time.monotonic() - started
    holder.join()
    assert waited >= 0.5 and told and "waiting for run" in told[0]


def test_status_file_follows_the_run(tmp_path):
    run = spec(tmp_path)
    folder = RunFolder(run.run_dir)
    with RunClaim(run) as claim:
        claim.start(folder)
        status = folder.read_status()
        assert status["state"] == RUNNING and status["cycles_planned"] == CYCLES and status["cycles_done"] == 0
        folder.append_cycle(_record("balent", 0, 0), {"road": 1.0})
        claim.progress(1)
        claim.end(FINISHED)
    assert folder.read_status()["state"] == FINISHED and folder.read_status()["cycles_done"] == 1
    with pytest.raises(KeyboardInterrupt):
        with RunClaim(run) as claim:
            claim.start(folder)
            raise KeyboardInterrupt
    assert folder.read_status()["state"] == INTERRUPTED
    assert not is_locked(run_lock_path(run))


def test_locks_are_reentrant_within_a_process(tmp_path):
    path = tmp_path / "locks" / "x.lock"
    with FileLock(path):
        with FileLock(path):
            third = FileLock(path)
            assert third.acquire(timeout=0)
            third.release()
        assert path.exists()
    assert not is_locked(path) and FileLock(path).acquire(timeout=0)


def test_a_follower_rank_writes_nothing(tmp_path):
    from benchmark.records.run_folder import FollowerFolder

    writers = [name for name in dir(RunFolder) if name.startswith(("write_", "append_", "save_"))]
    assert {"write_config", "write_selections", "append_cycle", "write_status", "write_maps"} <= set(writers)
    folder = FollowerFolder(tmp_path / "run")
    for name in writers:
        assert getattr(FollowerFolder, name) is not getattr(RunFolder, name), name
    folder.write_config({})
    folder.write_selections(pd.DataFrame())
    folder.append_cycle(_record("balent", 0, 0), {"road": 1.0})
    folder.save_model_state(0, {})
    folder.write_error("Traceback")
    folder.write_status({"state": RUNNING})
    folder.write_maps(0, [{"image_id": 0}])
    assert not (tmp_path / "run").exists()
