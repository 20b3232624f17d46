"""`benchmark launch` through the CLI: the debug and local executors run real jobs here; the Slurm
executor is driven up to sbatch, which a stand-in records (there is no Slurm cluster here)."""
import json
import os
import pickle
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

from benchmark.records.schema import TIMING_COLUMNS
from tests.conftest import REPO, assert_usage_error
from tests.fixtures.gated_strategy import GATED_PLAN, open_gate, wait_at_gate
from tests.fixtures.processes import left_after, tagged
from tests.integration.test_cli_run import TINY

pytestmark = pytest.mark.integration

RUNS = ["--strategy", "balent,random", "--model", "fpn"]
FAKE_SBATCH = """#!/bin/sh
# stands in for sbatch: keeps the submitted script, answers as sbatch does
n=$(( $(ls "$FAKE_SBATCH_DIR" | wc -l) + 1001 ))
cp "$1" "$FAKE_SBATCH_DIR/$n.sh"
echo "Submitted batch job $n"
"""


@pytest.fixture(scope="module")
def reference(run_cli, tmp_path_factory):
    """The same plan, run one run after another by `run` (no figures: --no-plot)."""
    out = tmp_path_factory.mktemp("sequential")
    run_cli("run", *RUNS, "--out", out, *TINY, "--no-plot")
    assert not (out / "figures").exists()
    return out


def launch_in_background(benchmark_cache, *args, **env_extra):
    """`launch` with its output in a file: local jobs inherit the launcher's streams, so waiting on
    pipes would wait for the jobs too."""
    out = Path(args[args.index("--out") + 1])
    out.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ, BENCHMARK_CACHE=str(benchmark_cache), PYTHONPATH=str(REPO), OMP_NUM_THREADS="1",
               **env_extra)
    with open(out.parent / f"{out.name}-launch.txt", "a") as log:
        proc = subprocess.run([sys.executable, "-m", "benchmark", "launch", *map(str, args)], cwd=REPO, env=env,
                              stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, timeout=600)
    text = (out.parent / f"{out.name}-launch.txt").read_text()
    assert proc.returncode == 0, text
    return text


def manifest(out) -> dict:
    return json.loads((out / "launch_logs" / "submitted.json").read_text())


def wait_for_job(out, kind, timeout=900.0):
    """The result of the (last) job of ``kind``: waits for submitit's result file."""
    job = [j for j in manifest(out)["jobs"] if j["kind"] == kind][-1]
    path = out / "launch_logs" / f"{job['job_id']}_0_result.pkl"
    deadline = time.time() + timeout
    while not path.exists():
        assert time.time() < deadline, f"job {job} did not end"
        time.sleep(1)
    with open(path, "rb") as handle:
        outcome, result = pickle.load(handle)
    assert outcome == "success", result
    return result


def assert_same_tables(out, reference, strategies=("balent", "random", "supervised")):
    expected = pd.read_csv(reference / "cycles.csv")
    expected = expected[expected["strategy"].isin(strategies)].reset_index(drop=True)
    pd.testing.assert_frame_equal(pd.read_csv(out / "cycles.csv").drop(columns=TIMING_COLUMNS),
                                  expected.drop(columns=TIMING_COLUMNS))
    for name in strategies:
        run = f"runs/synthetic__fpn__{name}__seed0"
        pd.testing.assert_frame_equal(pd.read_csv(out / run / "class_iou.csv"),
                                      pd.read_csv(reference / run / "class_iou.csv"))
        if name != "supervised":
            pd.testing.assert_frame_equal(pd.read_csv(out / run / "selections.csv"),
                                          pd.read_csv(reference / run / "selections.csv"))


def test_debug_executor_runs_the_graph_in_order_with_cycle_0_once(run_cli, reference, tmp_path):
    out = tmp_path / "out"
    proc = run_cli("launch", "--executor", "debug", *RUNS, "--out", out, *TINY, env_extra={"COLUMNS": "200"})
    assert "cycle0:synthetic__fpn__seed0" in proc.stdout and "status --results" in proc.stdout
    assert_same_tables(out, reference)
    assert (out / "leaderboard.csv").read_bytes() == (reference / "leaderboard.csv").read_bytes()
    # cycle 0 trained once, by the cycle-0 job, into the cache; both strategy runs loaded it
    entries = list((out / "cache" / "cycle0").glob("*.pt"))
    assert len(entries) == 1 and (entries[0].with_suffix("") / "train_logs" / "cycle_00").is_dir()
    for name in ("balent", "random"):
        assert not (out / "runs" / f"synthetic__fpn__{name}__seed0" / "train_logs" / "cycle_00").exists()
    kinds = [job["kind"] for job in manifest(out)["jobs"]]
    assert kinds == ["cycle0", "run", "run", "run", "tables"]
    assert (out / "figures" / "learning_curves_synthetic_fpn.png").is_file()  # the tables job drew them
    assert f"in {out / 'figures'}" in proc.stdout.replace("\n", "")

    again = run_cli("launch", "--executor", "debug", *RUNS, "--out", out, *TINY, "--resume")
    assert "nothing to submit" in again.stdout and "3 run(s) finished, skipped" in again.stdout

    shutil.rmtree(out / "runs" / "synthetic__fpn__random__seed0")
    shutil.rmtree(out / "figures")
    run_cli("launch", "--executor", "debug", *RUNS, "--out", out, *TINY, "--resume", "--no-plot")
    assert [job["kind"] for job in manifest(out)["jobs"]] == ["run", "tables"]  # cycle 0 is cached
    assert not (out / "figures").exists()
    assert_same_tables(out, reference)


def test_local_executor_in_parallel_gives_the_sequential_tables(benchmark_cache, reference, tmp_path, run_cli):
    out = tmp_path / "out"
    text = launch_in_background(benchmark_cache, *RUNS, "--executor", "local", "--max-parallel", "2",
                                "--out", out, *TINY)
    assert "this command returns now" in text
    result = wait_for_job(out, "tables")
    assert result["states"] == {"finished": 3}
    assert_same_tables(out, reference)
    assert (out / "leaderboard.csv").read_bytes() == (reference / "leaderboard.csv").read_bytes()
    status = run_cli("status", "--results", out, env_extra={"COLUMNS": "200"}).stdout
    assert "3 runs: 3 finished" in status and "2/2" in status


def job_log(out, run_id) -> str:
    """The .out and .err of the last launch's job of ``run_id``."""
    job = [j for j in manifest(out)["jobs"] if j["name"] == run_id][0]
    return "".join((out / "launch_logs" / f"{job['job_id']}_0_log.{kind}").read_text() for kind in ("out", "err"))


def wait_gone(pid: int, seconds: float = 60.0) -> bool:
    deadline = time.time() + seconds
    while time.time() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        time.sleep(0.1)
    return False


GATED_ONLY = [*GATED_PLAN[:GATED_PLAN.index("--strategy") + 1], "gated",
              *GATED_PLAN[GATED_PLAN.index("--strategy") + 2:], "--no-supervised"]


def test_a_preempted_local_job_is_requeued_and_ends_with_the_same_tables(benchmark_cache, gated_reference, tmp_path):
    out = tmp_path / "out"
    launch_in_background(benchmark_cache, *GATED_ONLY, "--executor", "local", "--out", out, BENCHMARK_GATE=str(out))
    run = out / "runs" / "synthetic__fpn__gated__seed0"
    pid = wait_at_gate(out, run.name)  # in cycle 1: cycle 0 recorded, cycle 1 trained, not recorded
    os.kill(pid, signal.SIGUSR2)  # what Slurm sends before a time limit or a preemption
    again = wait_at_gate(out, run.name, not_pid=pid)  # the requeued job, in the same cycle
    open_gate(out)
    wait_for_job(out, "tables")
    log = job_log(out, run.name)
    assert "Caught signal SIGUSR2" in log and "Requeued job" in log
    status = json.loads((run / "status.json").read_text())
    assert status["state"] == "finished" and status["pid"] == again  # the requeued process finished it
    assert_same_tables(out, gated_reference, strategies=("gated",))


def test_sigterm_stops_a_local_job_at_once_and_so_does_the_loss_of_its_controller(benchmark_cache, gated_reference,
                                                                                 tmp_path):
    """SIGTERM (Slurm's requeue or cancel, a `kill`) is a checkpoint: the job stops where it is, its
    run marked interrupted, and ends (a local job is not requeued). A job whose controller process
    is killed outright stops the same way. Relaunched with --resume, the run ends with the tables of
    an uninterrupted one."""
    out = tmp_path / "out"
    tag = tagged()
    flags = [*GATED_ONLY, "--executor", "local", "--out", out]
    launch_in_background(benchmark_cache, *flags, BENCHMARK_GATE=str(out), **tag)
    run = out / "runs" / "synthetic__fpn__gated__seed0"
    pid = wait_at_gate(out, run.name)
    os.kill(pid, signal.SIGTERM)
    assert wait_gone(pid)
    assert wait_for_job(out, "tables")["states"] == {"interrupted": 1}
    status = json.loads((run / "status.json").read_text())
    assert status["state"] == "interrupted" and status["pid"] == pid  # written by the job itself, at once
    log = job_log(out, run.name)
    assert "Caught signal SIGTERM" in log and "Bypassing signal SIGTERM" not in log and "Requeued" not in log

    launch_in_background(benchmark_cache, *flags, "--resume", BENCHMARK_GATE=str(out), **tag)
    second = wait_at_gate(out, run.name, not_pid=pid)
    controller = int([j for j in manifest(out)["jobs"] if j["name"] == run.name][0]["job_id"])
    os.kill(controller, signal.SIGKILL)  # the local job's parent, gone without a word
    assert wait_gone(second)
    status = json.loads((run / "status.json").read_text())
    assert status["state"] == "interrupted" and status["pid"] == second
    assert left_after(tag, 60) == []  # the tables job too has seen its dependency gone, and ended

    open_gate(out)
    launch_in_background(benchmark_cache, *flags, "--resume", BENCHMARK_GATE=str(out), **tag)
    assert wait_for_job(out, "tables")["states"] == {"finished": 1}
    assert_same_tables(out, gated_reference, strategies=("gated",))
    assert left_after(tag, 60) == []


def fake_slurm(tmp_path) -> tuple[dict, Path]:
    """A stand-in ``sbatch`` that keeps every script it is given (an ``srun`` that does nothing, a
    ``squeue`` that reaches no controller) first on PATH: the environment for the CLI and the
    folder of the scripts. Whatever Slurm this machine may have is not asked."""
    bin_dir, scripts = tmp_path / "bin", tmp_path / "sbatch"
    bin_dir.mkdir()
    scripts.mkdir()
    (bin_dir / "srun").write_text("#!/bin/sh\nexit 0\n")
    (bin_dir / "sbatch").write_text(FAKE_SBATCH)
    (bin_dir / "squeue").write_text("#!/bin/sh\necho 'squeue: error: Unable to contact slurm controller' >&2\nexit 1\n")
    for tool in ("srun", "sbatch", "squeue"):
        (bin_dir / tool).chmod(0o755)
    return {"PATH": f"{bin_dir}:{os.environ['PATH']}", "FAKE_SBATCH_DIR": str(scripts)}, scripts


def test_slurm_submission_reaches_sbatch_with_the_graph_and_the_options(run_cli, tmp_path):
    env, scripts = fake_slurm(tmp_path)
    env["COLUMNS"] = "200"
    out = tmp_path / "out"
    two_seeds = [*TINY[:TINY.index("--seeds")], "--seeds", "0,1", *TINY[TINY.index("--seeds") + 2:]]
    proc = run_cli("launch", "--executor", "slurm", *RUNS, "--out", out, *two_seeds, "--device", "cuda", "--slurm-partition", "gpu", "--slurm-time", "4:00:00",
                   "--max-parallel", "3", "--slurm-option", "account=proj", "--slurm-option", "mem=32G",
                   env_extra=env)
    sbatch = {int(p.stem): p.read_text() for p in scripts.glob("*.sh")}
    assert sorted(sbatch) == [1001, 1002, 1003, 1004]
    first, seed0, seed1, tables = (sbatch[k] for k in sorted(sbatch))
    for script in (first, seed0, seed1):  # training jobs: options, one GPU, requeue signal
        for line in ("--partition=gpu", "--time=240", "--account=proj", "--mem=32G", "--gpus-per-node=1",
                     "--ntasks-per-node=1", "--signal=USR2@90"):
            assert f"#SBATCH {line}\n" in script, (line, script)
    assert "#SBATCH --array=0-3%3\n" in first and "--dependency" not in first  # 2 cycle-0 + 2 supervised
    assert "#SBATCH --array=0-1%2\n" in seed0 and "#SBATCH --dependency=afterok:1001_0\n" in seed0
    assert "#SBATCH --dependency=afterok:1001_2\n" in seed1 and "--kill-on-invalid-dep=yes" in seed1
    assert "#SBATCH --dependency=afterany:1001:1002:1003\n" in tables and "gpus" not in tables
    assert "#SBATCH --time=30\n" in tables and "--array" not in tables
    ids = {job["name"]: job["job_id"] for job in manifest(out)["jobs"]}
    assert ids["cycle0:synthetic__fpn__seed1"] == "1001_2" and ids["synthetic__fpn__random__seed1"] == "1003_1"
    assert "1003_1" in proc.stdout and str(out / "launch_logs") in proc.stdout
    status = run_cli("status", "--results", out, env_extra={"COLUMNS": "200"}).stdout
    assert "6 runs: 6 queued" in status


def test_slurm_runs_with_several_gpus_are_multi_task_jobs(run_cli, tmp_path):
    env, scripts = fake_slurm(tmp_path)
    run_cli("launch", "--executor", "slurm", "--strategy", "random", "--model", "fpn", "--no-supervised",
            "--out", tmp_path / "out", *TINY, "--device", "cuda", "--gpus-per-run", "4", "--slurm-time", "60",
            env_extra=env)
    cycle0, runs, tables = (p.read_text() for p in sorted(scripts.glob("*.sh")))
    for script in (cycle0, runs):  # one task per GPU: the ranks of one DDP run; a failed rank ends the job
        assert "#SBATCH --ntasks-per-node=4\n" in script and "#SBATCH --gpus-per-node=4\n" in script
        assert "srun --unbuffered" in script and "--kill-on-bad-exit=1" in script
    assert "#SBATCH --ntasks-per-node=1\n" in tables and "kill-on-bad-exit" not in tables
    config_run = json.loads((tmp_path / "out" / "launch_logs" / "submitted.json").read_text())["jobs"][1]
    assert config_run["after"] == ["1001"]


@pytest.mark.parametrize("args, phrases", [
    (["--executor", "slurm", "--slurm-time", "1:00:00"], ["no srun", "--executor local"]),
    (["--executor", "local", "--slurm-partition", "gpu"], ["--executor slurm only"]),
    (["--executor", "local", "--slurm-time", "soon"], ["--slurm-time", "HH:MM:SS"]),
    (["--executor", "local", "--gpus-per-run", "2"], ["torchrun"]),
    (["--executor", "debug", "--gpus-per-run", "2"], ["torchrun"]),
    (["--executor", "debug", "--device", "cuda:1"], ["--device cuda"]),
])
def test_launch_flag_mistakes(run_cli, tmp_path, args, phrases):
    empty = tmp_path / "empty-bin"
    empty.mkdir()
    env = {"PATH": str(empty)}  # no srun, whether or not this machine has Slurm's clients (in /usr/bin on Debian)
    proc = run_cli("launch", "--out", tmp_path / "out", *args, check=False, env_extra=env)
    assert_usage_error(proc, *phrases)
    assert not (tmp_path / "out").exists()
