"""`launch --executor slurm` against a real Slurm (a private single node, tests/slurm/conftest.py):
the job graph and its dependencies, --max-parallel, a failing cycle 0, USR2 and requeue signals,
a cancelled launch and a 2-task (DDP on gloo) run, each ending with the tables of a run that was
never interrupted. Runs stop at known points through the gated strategy
(tests/fixtures/gated_strategy.py), not by racing them. Every test ends with no process of its own
left. Kept small (one seed, two cycles, a few iterations): about a minute of CPU each.
"""
import json
import os
import subprocess
import sys
import time

import pandas as pd
import pytest

from benchmark.execution.scheduler import parse_squeue
from benchmark.records.schema import TIMING_COLUMNS
from tests.conftest import REPO
from tests.fixtures.gated_strategy import GATED_PLAN, PLUGIN, open_gate, wait_at_gate
from tests.fixtures.processes import left_after, tagged
from tests.integration.test_cli_launch import GATED_ONLY, assert_same_tables, job_log, manifest, wait_for_job, wait_gone

pytestmark = pytest.mark.integration

FORMAT = "--Format=JobArrayID:|,State:|,Reason:|,RestartCnt:|"
ENDED = ("COMPLETED", "CANCELLED", "FAILED", "TIMEOUT", "OUT_OF_MEMORY", "NODE_FAIL")


@pytest.fixture
def env(slurm, benchmark_cache):
    """What every command of one test runs with: this Slurm, the dataset cache, one thread, a tag."""
    return dict(os.environ, BENCHMARK_CACHE=str(benchmark_cache), PYTHONPATH=str(REPO), OMP_NUM_THREADS="1",
                COLUMNS="200", **slurm.env, **tagged())


def launch(env, out, *args, **extra) -> str:
    proc = subprocess.run([sys.executable, "-m", "benchmark", "launch", "--executor", "slurm", "--slurm-time", "20",
                           *map(str, args), "--out", str(out)], cwd=REPO, env=dict(env, **extra),
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc.stdout


def status(env, out) -> str:
    proc = subprocess.run([sys.executable, "-m", "benchmark", "status", "--results", str(out)], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def jobs(slurm, out) -> dict:
    """squeue's word on every job of the last launch into ``out``: {job id: SlurmJob}."""
    arrays = sorted({job["job_id"].split("_")[0] for job in manifest(out)["jobs"]})
    return parse_squeue(slurm.client("squeue", "--noheader", "--states=all", "--array", f"--jobs={','.join(arrays)}",
                                     FORMAT).stdout)


def wait_for(slurm, out, job_id, condition, seconds=300.0):
    """The job ``job_id`` once ``condition(job)`` holds (AssertionError after ``seconds``)."""
    deadline = time.time() + seconds
    while True:
        job = jobs(slurm, out).get(job_id)
        if job is not None and condition(job):
            return job
        assert time.time() < deadline, f"job {job_id}: {job}"
        time.sleep(0.5)


def wait_until_all_ended(slurm, out, seconds=120.0) -> dict:
    """squeue's word on every job of the last launch, once each has ended (a job that has written
    its result may still be exiting)."""
    for job in manifest(out)["jobs"]:
        wait_for(slurm, out, job["job_id"], lambda j: j.state in ENDED, seconds)
    return jobs(slurm, out)


def details(slurm, job_id) -> dict:
    """``scontrol show job`` of one job (array task) as {key: value}."""
    text = slurm.client("scontrol", "show", "job", "--oneliner", job_id).stdout
    return dict(item.split("=", 1) for item in text.split() if "=" in item)


def run_job(out, run_id) -> str:
    return manifest(out)["runs"][run_id]["job_id"]


def release(slurm, job_id) -> None:
    """Start a requeued job now: Slurm holds it for about two minutes first (its begin time)."""
    slurm.client("scontrol", "update", f"JobId={job_id}", "StartTime=now")


def test_the_job_graph_runs_in_order_with_its_dependencies_and_max_parallel(slurm, env, gated_reference, tmp_path):
    out = tmp_path / "out"
    launch(env, out, *GATED_PLAN, "--max-parallel", "1")
    assert wait_for_job(out, "tables", timeout=900)["states"] == {"finished": 3}
    assert_same_tables(out, gated_reference, strategies=("gated", "random", "supervised"))
    assert (out / "leaderboard.csv").read_bytes() == (gated_reference / "leaderboard.csv").read_bytes()

    submitted = manifest(out)["jobs"]
    wait_until_all_ended(slurm, out)
    info = {job["job_id"]: details(slurm, job["job_id"]) for job in submitted}
    assert {job_id: i["JobState"] for job_id, i in info.items()} == {j["job_id"]: "COMPLETED" for j in submitted}
    cycle0, = (j["job_id"] for j in submitted if j["kind"] == "cycle0")
    strategy_runs = [j["job_id"] for j in submitted if j["after"] == [cycle0]]
    tables, = (j["job_id"] for j in submitted if j["kind"] == "tables")
    assert len(strategy_runs) == 2  # gated and random wait for their seed's cycle 0; the reference does not
    for job_id in strategy_runs:  # afterok honoured: they began once cycle 0 had ended
        assert info[job_id]["StartTime"] >= info[cycle0]["EndTime"]
    for array in {job_id.split("_")[0] for job_id in info if "_" in job_id}:  # --max-parallel 1: one at a time
        tasks = sorted((i for job_id, i in info.items() if job_id.startswith(f"{array}_")), key=lambda i: i["StartTime"])
        assert all(i["ArrayTaskThrottle"] == "1" for i in tasks)
        assert all(later["StartTime"] >= earlier["EndTime"] for earlier, later in zip(tasks, tasks[1:]))
    assert info[tables]["StartTime"] >= max(i["EndTime"] for job_id, i in info.items() if job_id != tables)
    text = status(env, out)
    assert "3 runs: 3 finished" in text and "COMPLETED" in text
    assert left_after(env, 30) == []


def test_a_failed_cycle_0_cancels_its_runs_and_a_relaunch_completes_them(slurm, env, gated_reference, tmp_path):
    out = tmp_path / "out"
    flags = [*GATED_ONLY[:GATED_ONLY.index("gated")], "random", *GATED_ONLY[GATED_ONLY.index("gated") + 1:]]
    failing = [*flags[:flags.index(PLUGIN)], f"{PLUGIN},tests.fixtures.fails_in_cycle0_job", *flags[flags.index(PLUGIN) + 1:]]
    launch(env, out, *failing)
    cycle0, = (j["job_id"] for j in manifest(out)["jobs"] if j["kind"] == "cycle0")
    run = run_job(out, "synthetic__fpn__random__seed0")
    assert wait_for_job(out, "tables", timeout=600)["states"] == {"cancelled": 1}  # the tables job asked squeue too
    states = wait_until_all_ended(slurm, out)
    assert states[cycle0].state == "FAILED"
    assert states[run].state == "CANCELLED"  # not left pending on a dependency that can never be met
    assert "1 runs: 1 cancelled" in status(env, out)

    launch(env, out, *flags, "--resume")  # the cause fixed (the failing plugin gone)
    assert wait_for_job(out, "tables", timeout=600)["states"] == {"finished": 1}
    assert_same_tables(out, gated_reference, strategies=("random",))
    assert left_after(env, 30) == []


def test_usr2_and_a_requeue_stop_the_run_at_once_and_the_requeued_job_resumes_it(slurm, env, gated_reference,
                                                                                 tmp_path):
    out = tmp_path / "out"
    launch(env, out, *GATED_ONLY, BENCHMARK_GATE=str(out))
    name = "synthetic__fpn__gated__seed0"
    run, job = out / "runs" / name, run_job(out, name)
    first = wait_at_gate(out, name)  # cycle 0 recorded, cycle 1 trained and not recorded

    slurm.client("scancel", "--signal=USR2", job)  # a time limit near, or a preemption that warns
    wait_for(slurm, out, job, lambda j: j.state == "PENDING" and j.restarts == 1)
    assert json.loads((run / "status.json").read_text())["state"] == "interrupted"
    assert "1 runs: 1 requeued" in status(env, out)  # not merely interrupted: Slurm will start it again
    release(slurm, job)
    second = wait_at_gate(out, name, not_pid=first)  # resumed: in cycle 1 again

    slurm.client("scontrol", "requeue", job)  # SIGTERM to the job's processes, SIGKILL KillWait (10 s) later
    wait_for(slurm, out, job, lambda j: j.state == "PENDING" and j.restarts == 2)
    recorded = json.loads((run / "status.json").read_text())
    assert recorded["state"] == "interrupted" and recorded["pid"] == second  # written by the job on SIGTERM
    log = job_log(out, name)
    assert "Caught signal SIGUSR2" in log and "Caught signal SIGTERM" in log
    assert "Bypassing signal SIGTERM" not in log
    text = status(env, out)
    assert "1 runs: 1 requeued" in text and "requeued 2x" in text

    open_gate(out)
    release(slurm, job)
    assert wait_for_job(out, "tables", timeout=600)["states"] == {"finished": 1}
    assert len(list((run / "train_logs" / "cycle_01").glob("*.py"))) == 3  # cycle 1 begun three times ...
    assert pd.read_csv(run / "cycles.csv")["cycle"].tolist() == [0, 1]  # ... recorded once, after cycle 0
    assert_same_tables(out, gated_reference, strategies=("gated",))
    assert left_after(env, 30) == []


def test_scancel_of_a_whole_launch_stops_its_run_and_leaves_nothing_pending(slurm, env, gated_reference, tmp_path):
    out = tmp_path / "out"
    launch(env, out, *GATED_ONLY, BENCHMARK_GATE=str(out))
    name = "synthetic__fpn__gated__seed0"
    run = out / "runs" / name
    pid = wait_at_gate(out, name)
    # as a user would: every job of the launch (cycle 0's has ended: scancel says so, and goes on)
    slurm.client("scancel", *sorted({j["job_id"].split("_")[0] for j in manifest(out)["jobs"]}), check=False)
    states = {job_id: job.state for job_id, job in wait_until_all_ended(slurm, out).items()}
    kinds = {j["job_id"]: j["kind"] for j in manifest(out)["jobs"]}
    assert {kinds[job_id]: state for job_id, state in states.items()} == {
        "cycle0": "COMPLETED", "run": "CANCELLED", "tables": "CANCELLED"}
    assert wait_gone(pid)
    recorded = json.loads((run / "status.json").read_text())
    assert recorded["state"] == "interrupted" and recorded["pid"] == pid
    assert "1 runs: 1 cancelled" in status(env, out)
    assert left_after(env, 30) == []

    open_gate(out)
    launch(env, out, *GATED_ONLY, "--resume", BENCHMARK_GATE=str(out))
    assert wait_for_job(out, "tables", timeout=600)["states"] == {"finished": 1}
    assert_same_tables(out, gated_reference, strategies=("gated",))
    assert left_after(env, 30) == []


def test_a_run_on_two_tasks_trains_through_srun_on_gloo_as_torchrun_does(slurm, env, tmp_path):
    from tests.integration.test_ddp import torchrun

    flags = ["--strategy", "random", "--model", "fpn", "--no-supervised", "--gpus-per-run", "2",
             *GATED_PLAN[GATED_PLAN.index("--cycles"):]]
    reference, out = tmp_path / "torchrun", tmp_path / "out"
    torchrun(env["BENCHMARK_CACHE"], 2, "-m", "benchmark", "run", *flags, "--out", reference)
    launch(env, out, *flags, "--device", "cpu")
    assert wait_for_job(out, "tables", timeout=900)["states"] == {"finished": 1}
    submitted = manifest(out)["jobs"]
    for job in submitted:
        tasks = details(slurm, job["job_id"])["NumTasks"]
        assert tasks == ("1" if job["kind"] == "tables" else "2"), (job, tasks)
    run = "runs/synthetic__fpn__random__seed0"
    config = json.loads((out / run / "config.json").read_text())
    assert config["run"]["gpus_per_run"] == 2 and config["effective_batch_size"] == 2 * 8
    pd.testing.assert_frame_equal(pd.read_csv(out / "cycles.csv").drop(columns=TIMING_COLUMNS),
                                  pd.read_csv(reference / "cycles.csv").drop(columns=TIMING_COLUMNS))
    for table in ("selections.csv", "class_iou.csv"):
        pd.testing.assert_frame_equal(pd.read_csv(out / run / table), pd.read_csv(reference / run / table))
    assert left_after(env, 30) == []
