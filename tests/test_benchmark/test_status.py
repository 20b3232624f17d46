"""`benchmark status`: the state of every run, read from run folders and run locks."""
import json
import multiprocessing as mp

import pytest
from rich.console import Console

from benchmark.errors import UsageError
from benchmark.execution.run_state import run_lock_path
from benchmark.execution.status import SUBMITTED_FILE, run_states
from benchmark.records.run_folder import RunFolder
from benchmark.reports.display import print_status
from tests.test_benchmark.test_concurrency import _hold, _record, spec


def make_run(out, strategy, cycles_done, status=None, error_log=None, cycles=4):
    run = spec(out, strategy)
    folder = RunFolder(run.run_dir)
    folder.write_config(dict(run=dict(strategy=strategy, cycles=cycles)))
    for cycle in range(cycles_done):
        folder.append_cycle(_record(strategy, 0, cycle), {"road": 1.0})
    if status is not None:
        folder.write_status(status)
    if error_log is not None:
        folder.write_error(error_log)
    return run


def test_every_state_and_the_last_error_line(tmp_path):
    make_run(tmp_path, "balent", 4, dict(state="finished", host="n1", job_id="12_0"))
    make_run(tmp_path, "bald", 1, dict(state="failed", error="CUDA error: out of memory"),
             error_log="Traceback (most recent call last):\n  ...\nRuntimeError: CUDA error: out of memory\n")
    make_run(tmp_path, "entropy", 2, dict(state="running", pid=1, host="n2"))  # lock free: killed
    make_run(tmp_path, "margin", 0, error_log="Traceback\nValueError: bad pixel\n")  # no status.json
    make_run(tmp_path, "random", 0)
    make_run(tmp_path, "supervised", 1, cycles=4)
    make_run(tmp_path, "pbald", 2, dict(state="awaiting-labels"))
    (tmp_path / SUBMITTED_FILE).parent.mkdir()
    (tmp_path / SUBMITTED_FILE).write_text(json.dumps({"runs": {
        "synthetic__fpn__balent__seed1": {"job_id": "13_4", "cycles_planned": 4},
        "synthetic__fpn__balent__seed0": {"job_id": "12_0", "cycles_planned": 4}}}))
    frame = run_states(tmp_path).set_index("run")
    state = frame["state"].to_dict()
    assert state == {
        "synthetic__fpn__balent__seed0": "finished", "synthetic__fpn__bald__seed0": "failed",
        "synthetic__fpn__entropy__seed0": "interrupted", "synthetic__fpn__margin__seed0": "failed",
        "synthetic__fpn__random__seed0": "not started", "synthetic__fpn__supervised__seed0": "finished",
        "synthetic__fpn__pbald__seed0": "awaiting-labels", "synthetic__fpn__balent__seed1": "queued"}
    assert frame.loc["synthetic__fpn__bald__seed0", "error"] == "CUDA error: out of memory"
    assert frame.loc["synthetic__fpn__margin__seed0", "error"] == "ValueError: bad pixel"
    assert frame.loc["synthetic__fpn__supervised__seed0", ["cycles_done", "cycles_planned"]].tolist() == [1, 1]
    assert frame.loc["synthetic__fpn__bald__seed0", ["cycles_done", "cycles_planned"]].tolist() == [1, 4]
    console = Console(record=True, width=200)
    print_status(run_states(tmp_path), console)
    text = console.export_text()
    assert "1/4" in text and "CUDA error: out of memory" in text and "8 runs: " in text


def test_a_held_run_lock_is_running(tmp_path):
    run = make_run(tmp_path, "balent", 1, dict(state="running", pid=5, host="n3"))
    ctx = mp.get_context("spawn")
    barrier = ctx.Barrier(2)
    holder = ctx.Process(target=_hold, args=(str(run_lock_path(run)), 60.0, barrier))
    holder.start()
    barrier.wait()
    try:
        assert run_states(tmp_path)["state"].tolist() == ["running"]
    finally:
        holder.kill()
        holder.join()
    assert run_states(tmp_path)["state"].tolist() == ["interrupted"]


def test_a_folder_without_runs_is_a_usage_error(tmp_path):
    with pytest.raises(UsageError, match="no runs in"):
        run_states(tmp_path)
