"""Two commands on one output folder through the CLI: a run another process executes is refused."""
import multiprocessing as mp

import pytest

from tests.conftest import assert_usage_error
from tests.test_benchmark.test_concurrency import _hold

pytestmark = pytest.mark.integration


def test_run_refuses_a_run_that_another_process_executes(run_cli, tmp_path):
    out = tmp_path / "out"
    lock = out / "locks" / "runs" / "synthetic__fpn__random__seed0.lock"
    ctx = mp.get_context("spawn")
    barrier = ctx.Barrier(2)
    holder = ctx.Process(target=_hold, args=(str(lock), 120.0, barrier))
    holder.start()
    barrier.wait()
    try:
        proc = run_cli("run", "--strategy", "random", "--model", "fpn", "--no-supervised", "--out", out,
                       "--cycles", "1", "--resume", check=False)
    finally:
        holder.kill()
        holder.join()
    assert_usage_error(proc, "run synthetic__fpn__random__seed0 is being executed by", "benchmark status")
    assert not (out / "runs").exists()  # refused before anything was written


def test_status_of_a_folder_without_runs(run_cli, tmp_path):
    assert_usage_error(run_cli("status", "--results", tmp_path, check=False), "no runs in", "--results")
