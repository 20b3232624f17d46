"""`benchmark status` after a launch on Slurm: each run's folder state joined with squeue's word on
its job (a stand-in ``squeue`` here; tests/slurm runs the real one), and a stale ``running`` repaired."""
import json
import multiprocessing as mp

import pytest

from benchmark.execution import scheduler
from benchmark.execution.run_state import run_lock_path
from benchmark.execution.scheduler import SlurmJob, joined_state, parse_squeue
from benchmark.execution.status import SUBMITTED_FILE, run_states
from benchmark.records.run_folder import RunFolder
from tests.test_benchmark.test_concurrency import _hold
from tests.test_benchmark.test_status import make_run

SQUEUE = """\
1001_0|COMPLETED|None|0|
1002_0|PENDING|BeginTime|2|
1002_1|CANCELLED|DependencyNeverSatisfied|0|
1002_2|PENDING|JobHeldUser|0|
1002_3|RUNNING|None|0|
1003|TIMEOUT|TimeLimit|3|
1004_0|PENDING|Dependency|0|
1004_1|OUT_OF_MEMORY|OutOfMemory|0|
"""


@pytest.mark.parametrize("folder, job, expected", [
    ("interrupted", SlurmJob("PENDING", "BeginTime", 1), "requeued"),
    ("interrupted", SlurmJob("REQUEUED", "None", 0), "requeued"),
    ("interrupted", SlurmJob("PENDING", "JobHeldUser", 1), "held"),
    ("queued", SlurmJob("PENDING", "Dependency"), "queued"),
    ("failed", SlurmJob("PENDING", "Priority"), "queued"),  # launched again with --resume
    ("queued", SlurmJob("CANCELLED", "DependencyNeverSatisfied"), "cancelled"),
    ("interrupted", SlurmJob("CANCELLED", "None"), "cancelled"),
    ("interrupted", SlurmJob("TIMEOUT", "TimeLimit", 3), "timed out"),
    ("interrupted", SlurmJob("OUT_OF_MEMORY", "OutOfMemory"), "failed"),
    ("not started", SlurmJob("RUNNING"), "starting"),
    ("failed", SlurmJob("CANCELLED"), "failed"),  # the run's own error says more
    ("running", SlurmJob("CANCELLED"), "running"),  # a lock holder is running, whatever squeue says
    ("finished", SlurmJob("FAILED"), "finished"),
    ("interrupted", SlurmJob("COMPLETED"), "interrupted"),
    ("interrupted", None, "interrupted"),  # Slurm forgot the job, or was not reachable
])
def test_a_runs_state_joined_with_its_jobs(folder, job, expected):
    assert joined_state(folder, job) == expected


def test_squeue_lines_are_parsed():
    jobs = parse_squeue(SQUEUE + "garbage\n")
    assert jobs["1002_0"] == SlurmJob("PENDING", "BeginTime", 2)
    assert jobs["1003"].describe() == "TIMEOUT (TimeLimit), requeued 3x"
    assert jobs["1004_0"].describe() == "PENDING (Dependency)" and len(jobs) == 8


def fake_squeue(tmp_path, monkeypatch, stdout: str = SQUEUE, code: int = 0, stderr: str = ""):
    """A stand-in ``squeue`` first on PATH, alone there: what it was asked goes to ``asked.txt``."""
    folder = tmp_path / "bin"
    folder.mkdir()
    (tmp_path / "answer.txt").write_text(stdout)
    (folder / "squeue").write_text(f'#!/bin/sh\necho "$@" > {tmp_path}/asked.txt\n/bin/cat {tmp_path}/answer.txt\n'
                                   f'echo "{stderr}" >&2\nexit {code}\n')
    (folder / "squeue").chmod(0o755)
    monkeypatch.setenv("PATH", str(folder))


def test_query_jobs_asks_for_the_arrays_and_answers_per_task(tmp_path, monkeypatch):
    fake_squeue(tmp_path, monkeypatch)
    jobs = scheduler.query_jobs(["1002_0", "1002_1", "1003", None])
    assert jobs["1002_1"].state == "CANCELLED"
    asked = (tmp_path / "asked.txt").read_text()
    assert "--jobs=1002,1003" in asked and "--states=all" in asked and "--array" in asked


def test_query_jobs_without_a_controller_or_a_squeue_is_none_and_forgotten_jobs_are_no_jobs(tmp_path, monkeypatch):
    fake_squeue(tmp_path, monkeypatch, stdout="", code=1, stderr="slurm_load_jobs error: Unable to contact slurm controller")
    assert scheduler.query_jobs(["7"]) is None
    (tmp_path / "bin" / "squeue").write_text('#!/bin/sh\necho "slurm_load_jobs error: Invalid job id specified" >&2\n'
                                             'exit 1\n')
    assert scheduler.query_jobs(["7"]) == {}
    monkeypatch.setenv("PATH", str(tmp_path / "nothing"))
    assert scheduler.query_jobs(["7"]) is None


def launched(out, executor="slurm", **runs):
    (out / SUBMITTED_FILE).parent.mkdir(parents=True, exist_ok=True)
    (out / SUBMITTED_FILE).write_text(json.dumps(dict(executor=executor, runs={
        f"synthetic__fpn__{name}__seed0": dict(job_id=job, cycles_planned=4) for name, job in runs.items()})))


def test_status_after_a_slurm_launch_joins_each_run_with_its_job(tmp_path, monkeypatch):
    make_run(tmp_path, "balent", 2, dict(state="interrupted", job_id="1002_0"))
    make_run(tmp_path, "bald", 1, dict(state="running", pid=1, host="n1"))  # killed outright: lock free
    make_run(tmp_path, "entropy", 4, dict(state="finished"))
    make_run(tmp_path, "margin", 2, dict(state="interrupted"))
    launched(tmp_path, balent="1002_0", bald="1003", entropy="1001_0", margin="1002_2", random="1002_1",
             pbald="1004_0", powerbald="1009_0")
    fake_squeue(tmp_path, monkeypatch)
    frame = run_states(tmp_path).set_index("run")
    state = {run.split("__")[2]: value for run, value in frame["state"].items()}
    assert state == {"balent": "requeued", "bald": "timed out", "entropy": "finished", "margin": "held",
                     "random": "cancelled", "pbald": "queued", "powerbald": "queued"}
    assert frame.loc["synthetic__fpn__balent__seed0", "scheduler"] == "PENDING (BeginTime), requeued 2x"
    assert frame.loc["synthetic__fpn__random__seed0", "job_id"] == "1002_1"


def test_without_slurm_status_reads_the_folders_alone(tmp_path, monkeypatch):
    make_run(tmp_path, "balent", 2, dict(state="interrupted"))
    launched(tmp_path, balent="1002_0", random="1002_1")
    monkeypatch.setenv("PATH", str(tmp_path / "nothing"))  # no squeue
    assert run_states(tmp_path)["state"].tolist() == ["interrupted", "queued"]
    launched(tmp_path, executor="local", balent="1002_0", random="1002_1")
    fake_squeue(tmp_path, monkeypatch)  # a local launch: Slurm is not asked, even where it answers
    assert run_states(tmp_path)["state"].tolist() == ["interrupted", "queued"]
    assert not (tmp_path / "asked.txt").exists()


def test_a_stale_running_is_repaired_and_a_held_one_left_alone(tmp_path):
    run = make_run(tmp_path, "balent", 1, dict(state="running", pid=5, host="n3"))
    ctx = mp.get_context("spawn")
    barrier = ctx.Barrier(2)
    holder = ctx.Process(target=_hold, args=(str(run_lock_path(run)), 60.0, barrier))
    holder.start()
    barrier.wait()
    try:
        assert run_states(tmp_path)["state"].tolist() == ["running"]
        assert RunFolder(run.run_dir).read_status()["state"] == "running"  # its holder lives: untouched
    finally:
        holder.kill()
        holder.join()
    assert run_states(tmp_path)["state"].tolist() == ["interrupted"]
    status = RunFolder(run.run_dir).read_status()
    assert status["state"] == "interrupted" and "pid 5 on host n3" in status["note"]
