"""`run --workers N`: the runs of a plan in N local processes give the tables of one process doing
the same arithmetic, a failed run stops the rest and keeps what was done, and mistakes are one line."""
import json
import os
import signal
import subprocess
import sys
import textwrap
import time

import pandas as pd
import pytest

from benchmark.records.schema import TIMING_COLUMNS
from tests.conftest import REPO, assert_usage_error
from tests.fixtures.gated_strategy import GATED_PLAN, wait_at_gate
from tests.fixtures.processes import TAG, alive_with, left_after, tagged

pytestmark = pytest.mark.integration

TINY = ["--cycles", "2", "--train-iters", "4", "--mc-samples", "3", "--pixels-per-image", "4",
        "--map-images", "0", "--batch-size", "4"]
PLAN = ["--strategy", "balent,random", "--seeds", "0,1", *TINY]

CRASHING = textwrap.dedent('''\
    from strategies import STRATEGIES


    @STRATEGIES.register_module(name="crashes")
    class Crashes:
        """Scores the pool in cycles 0 and 1, then fails in cycle 2."""

        calls = 0

        def score(self, post, generator=None):
            if min(post.mean.shape[-2:]) >= 32:  # a pool image (not a conformance check's small posterior)
                if Crashes.calls >= 80:  # the pool scored in cycles 0 and 1: cycle 2 fails
                    raise RuntimeError("scoring exploded")
                Crashes.calls += 1
            return 1.0 - post.mean.max(dim=-3).values
    ''')


def test_two_workers_give_the_tables_of_one_single_threaded_process(run_cli, tmp_path):
    parallel, serial = tmp_path / "parallel", tmp_path / "serial"
    proc = run_cli("run", *PLAN, "--workers", "2", "--out", parallel)
    assert "in 2 worker processes, 1 thread(s) each" in proc.stdout
    # the same arithmetic in one process: one thread, as each worker has
    run_cli("run", *PLAN, "--workers", "1", "--out", serial, env_extra=dict(OMP_NUM_THREADS="1"))
    a, b = (pd.read_csv(d / "cycles.csv").drop(columns=TIMING_COLUMNS) for d in (parallel, serial))
    assert len(a) == 2 * (2 * 2 + 1)  # two seeds: two strategies x two cycles + the supervised reference
    pd.testing.assert_frame_equal(a, b)
    assert (parallel / "leaderboard.csv").read_bytes() == (serial / "leaderboard.csv").read_bytes()
    # each seed's cycle 0 was trained once and shared by both strategies, across processes
    assert len(list((parallel / "cache" / "cycle0").glob("*.pt"))) == 2


def test_a_run_failing_in_a_worker_stops_the_others_and_keeps_its_cycles(run_cli, tmp_path):
    plugins = tmp_path / "plugins"
    plugins.mkdir()
    (plugins / "crashing.py").write_text(CRASHING)
    out = tmp_path / "out"
    proc = run_cli("run", "--strategy", "crashes,random", "--seeds", "0", "--no-supervised", *TINY, "--cycles", "3",
                   "--plugins", "crashing", "--workers", "2", "--out", out, check=False,
                   env_extra=dict(PYTHONPATH=os.pathsep.join([str(plugins), str(REPO)])))
    assert proc.returncode == 1, proc.stderr
    line = proc.stderr.strip().splitlines()[-1]
    assert "scoring exploded" in line and "--resume" in line and "Traceback" not in proc.stderr
    run = out / "runs" / "synthetic__deeplabv3plus__crashes__seed0"
    assert (run / "error.log").is_file()
    assert sorted(pd.read_csv(run / "cycles.csv")["cycle"]) == [0, 1]  # the completed cycles are kept
    assert (out / "cycles.csv").is_file()  # the tables hold what was done


@pytest.mark.parametrize("args, phrases", [
    (["--workers", "0"], ["--workers 0", "below 1"]),
    (["--workers", "two"], ["--workers 'two'", "whole number"]),
    (["--workers", "2", "--oracle", "file"], ["--workers 2", "--workers 1"]),
])
def test_worker_mistakes_are_one_line(run_cli, tmp_path, args, phrases):
    out = tmp_path / "out"
    proc = run_cli("run", "--strategy", "random", *TINY, *args, "--out", out, check=False)
    assert_usage_error(proc, *phrases)
    assert not out.exists()


def start_in_background(benchmark_cache, out, *args, **env_extra):
    """`python -m benchmark ARGS` in its own session, as from a terminal (Ctrl-C's default action
    restored: a test runner started in the background has SIGINT ignored), with the gate of
    tests/fixtures/gated_strategy.py at ``out`` and a tag on every process it starts."""
    env = dict(os.environ, BENCHMARK_CACHE=str(benchmark_cache), PYTHONPATH=str(REPO), OMP_NUM_THREADS="1",
               BENCHMARK_GATE=str(out), **tagged(), **env_extra)
    proc = subprocess.Popen([sys.executable, "-m", "benchmark", *map(str, args)], cwd=REPO, env=env,
                            start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    return proc, env


@pytest.mark.parametrize("how", ["Ctrl-C", "SIGTERM to the main process"])
def test_ctrl_c_or_sigterm_stops_every_worker_and_starts_no_further_run(run_cli, benchmark_cache, gated_reference,
                                                                       tmp_path, how):
    """Both workers wait at the gate in cycle 0 of their first run (one per seed), four runs queued.
    Ctrl-C reaches the whole process group; a SIGTERM (a `kill`, a scheduler) only the main
    process, which passes it on. Either way the two runs stop at once, marked interrupted, the
    queued ones never begin, nothing is left running, and --resume completes the plan."""
    out = tmp_path / "out"
    two_seeds = [*GATED_PLAN[:GATED_PLAN.index("--seeds")], "--seeds", "0,1",
                 *GATED_PLAN[GATED_PLAN.index("--seeds") + 2:]]
    args = ["run", *two_seeds, "--workers", "2", "--out", str(out)]
    proc, env = start_in_background(benchmark_cache, out, *args, BENCHMARK_GATE_CYCLE="0")
    try:
        # the first run of each seed (gated) waits in cycle 0, one per worker; four runs are queued
        for seed in (0, 1):
            wait_at_gate(out, f"synthetic__fpn__gated__seed{seed}", alive=lambda: proc.poll() is None)
        if how == "Ctrl-C":
            os.killpg(proc.pid, signal.SIGINT)  # what a terminal sends to the whole foreground group
        else:
            os.kill(proc.pid, signal.SIGTERM)
        _, stderr = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    assert proc.returncode == (130 if how == "Ctrl-C" else 143), stderr
    assert "--resume" in stderr.strip().splitlines()[-1]
    started = sorted(p.name for p in (out / "runs").iterdir())
    assert started == ["synthetic__fpn__gated__seed0", "synthetic__fpn__gated__seed1"]  # the queued never began
    for name in started:
        assert json.loads((out / "runs" / name / "status.json").read_text())["state"] == "interrupted"
    assert left_after(env, 30) == []
    run_cli(*args, "--resume")
    cycles = pd.read_csv(out / "cycles.csv")
    assert len(cycles) == 2 * (2 * 2 + 1)
    seed0 = cycles[cycles["seed"] == 0].reset_index(drop=True).drop(columns=TIMING_COLUMNS)
    pd.testing.assert_frame_equal(seed0, pd.read_csv(gated_reference / "cycles.csv").drop(columns=TIMING_COLUMNS))


@pytest.mark.parametrize("moment", ["workers starting", "cycle 0", "cycle 1"])
def test_killing_the_main_process_leaves_no_worker_and_resume_completes(run_cli, benchmark_cache, gated_reference,
                                                                        tmp_path, moment):
    """kill -9 of `run --workers 2`'s main process (the OOM killer, a closed terminal): its workers
    notice, stop at once with their runs marked interrupted, and are gone within seconds; --resume
    then completes with an uninterrupted run's tables. Moments: while the workers start (no run
    begun), with the gated run waiting in cycle 0 (nothing recorded) or in cycle 1 (cycle 0
    recorded), the random run and the supervised reference wherever the other worker has got to."""
    out = tmp_path / "out"
    args = ["run", *GATED_PLAN, "--workers", "2", "--out", str(out)]
    gate_cycle = {"workers starting": "0", "cycle 0": "0", "cycle 1": "1"}[moment]
    proc, env = start_in_background(benchmark_cache, out, *args, BENCHMARK_GATE_CYCLE=gate_cycle)
    marker = f"{TAG}={env[TAG]}"
    try:
        if moment == "workers starting":  # the main process has started its first children, no run yet
            deadline = time.time() + 300
            while len(alive_with(marker)) < 3 and proc.poll() is None and time.time() < deadline:
                time.sleep(0.05)
        else:
            wait_at_gate(out, "synthetic__fpn__gated__seed0", alive=lambda: proc.poll() is None)
        assert proc.poll() is None, proc.stderr.read()
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.communicate(timeout=60)
    assert left_after(env, 30) == []
    for status in out.glob("runs/*/status.json"):  # every run ended by its own worker, none left running
        assert json.loads(status.read_text())["state"] in ("interrupted", "finished"), status
    if moment == "cycle 1":
        assert pd.read_csv(out / "runs" / "synthetic__fpn__gated__seed0" / "cycles.csv")["cycle"].tolist() == [0]
    run_cli(*args, "--resume")
    resumed, expected = (pd.read_csv(d / "cycles.csv").drop(columns=TIMING_COLUMNS) for d in (out, gated_reference))
    pd.testing.assert_frame_equal(resumed, expected)
