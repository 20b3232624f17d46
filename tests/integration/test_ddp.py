"""Several ranks for one run on this CPU machine: torchrun with 2 processes on gloo.

What is compared, and why: DDP changes training (each rank trains on its share of every batch,
so the effective batch is 2 x --batch-size and the model differs from a single process's). So the
selection is compared given one model: cycle 0 trained once by a single-process `run`, then one
acquisition step with 1 and with 2 ranks (``ddp_acquire.py``): the clicks of every image and the
pool record (and the validation metrics) must be equal to the bit, and the clicks equal to those
that run recorded for cycle 1.
Separately, a whole run trains through mmengine's DDP under torchrun, rank 0 alone writing.
Every process runs with one thread (torchrun's default), so conv kernels sum in the same order.
"""
import json
import os
import subprocess
import sys

import pandas as pd
import pytest

from tests.conftest import REPO, assert_usage_error
from tests.integration.test_cli_run import TINY

pytestmark = pytest.mark.integration

FLAGS = ["--strategy", "balent", "--model", "fpn", "--no-supervised", *TINY]
ONE_THREAD = {"OMP_NUM_THREADS": "1"}
SCRIPT = REPO / "tests" / "integration" / "ddp_acquire.py"


def _env(benchmark_cache):
    return dict(os.environ, BENCHMARK_CACHE=str(benchmark_cache), PYTHONPATH=str(REPO), **ONE_THREAD)


def torchrun(benchmark_cache, nproc: int, *args, timeout=900):
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={nproc}", *args]
    proc = subprocess.run(command, cwd=REPO, env=_env(benchmark_cache), capture_output=True, text=True,
                          timeout=timeout)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc


@pytest.fixture(scope="module")
def single(run_cli, tmp_path_factory):
    out = tmp_path_factory.mktemp("one-process")
    run_cli("run", *FLAGS, "--out", out, env_extra=ONE_THREAD)
    return out


def test_two_ranks_select_the_same_pixels_as_one_process(single, benchmark_cache, tmp_path):
    one, two = tmp_path / "one.json", tmp_path / "two.json"
    proc = subprocess.run([sys.executable, str(SCRIPT), str(single), str(one), *FLAGS], cwd=REPO,
                          env=_env(benchmark_cache), capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stderr
    torchrun(benchmark_cache, 2, str(SCRIPT), str(single), str(two), *FLAGS)
    one, two = json.loads(one.read_text()), json.loads(two.read_text())
    assert (one["world_size"], two["world_size"]) == (1, 2)
    assert len(one["picks"]) == 40 and all(len(p) == 4 for p in one["picks"].values())
    assert two["picks"] == one["picks"]
    assert two["record"] == one["record"]  # every bit of every pool-record column
    assert two["metrics"] == one["metrics"]  # mIoU, mAcc, aAcc, per-class IoU, to the bit
    recorded = pd.read_csv(single / "runs" / "synthetic__fpn__balent__seed0" / "selections.csv")
    recorded = recorded[recorded["cycle"] == 1]
    as_run = {str(i): g[["y", "x"]].to_numpy().tolist() for i, g in recorded.groupby("image_id")}
    assert {i: sorted(p) for i, p in one["picks"].items()} == {i: sorted(p) for i, p in as_run.items()}


def test_torchrun_trains_one_run_on_two_ranks_and_rank_0_alone_writes(single, benchmark_cache, tmp_path):
    out = tmp_path / "two-ranks"
    proc = torchrun(benchmark_cache, 2, "-m", "benchmark", "run", "--gpus-per-run", "2", *FLAGS, "--out", out)
    assert proc.stdout.count("tables: ") == 1  # one leaderboard printed, by rank 0
    run = out / "runs" / "synthetic__fpn__balent__seed0"
    config = json.loads((run / "config.json").read_text())
    assert config["run"]["gpus_per_run"] == 2 and config["effective_batch_size"] == 2 * 8
    (key,) = [p.name for p in (out / "cache" / "cycle0").glob("*.pt")]
    (single_key,) = [p.name for p in (single / "cache" / "cycle0").glob("*.pt")]
    assert key != single_key  # 2 ranks train another cycle 0: its own cache entry
    cycles = pd.read_csv(out / "cycles.csv")
    assert cycles["cycle"].tolist() == [0, 1] and cycles["miou"].notna().all()
    assert cycles["labeled_pixels"].tolist() == [4 * 40, 8 * 40]
    status = json.loads((run / "status.json").read_text())
    assert status["state"] == "finished"
    selections = pd.read_csv(run / "selections.csv")
    first = pd.read_csv(single / "runs" / run.name / "selections.csv")
    pd.testing.assert_frame_equal(selections[selections["cycle"] == 0], first[first["cycle"] == 0])
    assert not selections.duplicated(["image_id", "y", "x"]).any()
    for cycle in ("cycle_00", "cycle_01"):  # one mmengine log per cycle: rank 1 kept none
        assert len(list((run / "train_logs" / cycle).glob("*/*.log"))) == 1


def test_gpus_per_run_needs_as_many_processes(run_cli, tmp_path):
    proc = run_cli("run", "--gpus-per-run", "2", "--out", tmp_path / "out", check=False)
    assert_usage_error(proc, "--gpus-per-run 2", "torchrun --nproc_per_node 2")
