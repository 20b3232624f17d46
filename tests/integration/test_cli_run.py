"""The main job through the CLI on the real mmseg models: tables, determinism, resume, bad input."""
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from benchmark.records.schema import CYCLE_COLUMNS, TIMING_COLUMNS

pytestmark = pytest.mark.integration

TINY = ["--cycles", "2", "--train-iters", "6", "--mc-samples", "3", "--pixels-per-image", "4",
        "--seeds", "0", "--map-images", "1", "--batch-size", "8"]
N_TRAIN = 40  # images in the embedded dataset's training pool (synthetic preset)


@pytest.fixture(scope="module")
def two_model_run(run_cli, tmp_path_factory):
    out = tmp_path_factory.mktemp("results")
    proc = run_cli("run", "--strategy", "balent,random", "--model", "all", "--out", out, *TINY)
    return out, proc


def without_timings(frame: pd.DataFrame) -> pd.DataFrame:
    return frame.drop(columns=TIMING_COLUMNS)


def test_run_writes_tidy_tables_for_both_models(two_model_run):
    out, proc = two_model_run
    cycles = pd.read_csv(out / "cycles.csv")
    assert list(cycles.columns) == CYCLE_COLUMNS
    # per model: 2 strategies x 2 cycles + the supervised reference
    assert len(cycles) == 2 * (2 * 2 + 1)
    assert set(cycles["model"]) == {"deeplabv3plus", "fpn"}
    assert set(cycles["strategy"]) == {"balent", "random", "supervised"}
    active = cycles[cycles["strategy"] != "supervised"]
    assert (active.groupby(["model", "strategy"])["labeled_pixels"].apply(list)
            == [[4 * N_TRAIN, 8 * N_TRAIN]] * 4).all()
    assert active[["epistemic", "aleatoric", "miou"]].notna().all().all()
    supervised = cycles[cycles["strategy"] == "supervised"]
    assert (supervised["labeled_fraction"] == 1.0).all()
    class_iou = pd.read_csv(out / "class_iou.csv")
    assert {"class", "iou"} <= set(class_iou.columns) and len(class_iou) > 0
    board = pd.read_csv(out / "leaderboard.csv")
    assert set(board["strategy"]) == {"balent", "random"}
    assert {"n_seeds", "aulc_mean", "aulc_ci95", "final_miou_mean", "final_miou_ci95",
            "pct_of_supervised", "rank"} <= set(board.columns)
    assert "balent" in proc.stdout  # the rich leaderboard table at the end


def test_cycle_zero_is_trained_once_per_seed_and_the_cache_is_faithful(run_cli, two_model_run, tmp_path):
    out, _ = two_model_run
    assert len(list((out / "cache" / "cycle0").glob("synthetic__fpn__seed0__*.pt"))) == 1
    # random loaded cycle 0 from balent's cache there; alone here it trains cycle 0 itself: the same
    # cycle-0 metrics, hence the same model, hence the same clicks and metrics afterwards
    run_cli("run", "--strategy", "random", "--model", "fpn", "--no-supervised", "--out", tmp_path, *TINY)
    shared = pd.read_csv(out / "runs" / "synthetic__fpn__random__seed0" / "cycles.csv")
    alone = pd.read_csv(tmp_path / "runs" / "synthetic__fpn__random__seed0" / "cycles.csv")
    pd.testing.assert_frame_equal(without_timings(shared), without_timings(alone))
    pd.testing.assert_frame_equal(pd.read_csv(out / "runs" / "synthetic__fpn__random__seed0" / "selections.csv"),
                                  pd.read_csv(tmp_path / "runs" / "synthetic__fpn__random__seed0" / "selections.csv"))
    runs = out / "runs"
    a = pd.read_csv(runs / "synthetic__fpn__balent__seed0" / "selections.csv")
    b = pd.read_csv(runs / "synthetic__fpn__random__seed0" / "selections.csv")
    pd.testing.assert_frame_equal(a[a["cycle"] == 0], b[b["cycle"] == 0])
    assert not a[a["cycle"] == 1].reset_index(drop=True).equals(b[b["cycle"] == 1].reset_index(drop=True))


def test_run_folder_holds_config_selections_and_maps(two_model_run):
    out, _ = two_model_run
    run = out / "runs" / "synthetic__deeplabv3plus__balent__seed0"
    for name in ("config.json", "images.csv", "selections.csv", "cycles.csv", "class_iou.csv"):
        assert (run / name).is_file(), name
    environment = json.loads((run / "config.json").read_text())["environment"]  # what ran the run
    assert environment["device"] == "cpu" and environment["device_name"]
    assert {"torch", "cuda", "cudnn", "mmcv", "mmcv_compiled_ops", "mmengine", "mmseg", "numpy", "python"} <= set(environment)
    from strategies import scoring_backend  # which kernel scored BalEnt: the one this process would use

    assert {key: environment[key] for key in scoring_backend("cpu")} == scoring_backend("cpu")
    assert environment["balent_kernel"] in ("native", "torch")
    selections = pd.read_csv(run / "selections.csv")
    assert list(selections.columns) == ["cycle", "image_id", "y", "x", "label"]
    assert not selections.duplicated(["image_id", "y", "x"]).any()
    maps = sorted((run / "maps").glob("*.npz"))
    assert len(maps) == 2  # one validation image, two cycles
    with np.load(maps[0]) as saved:
        names = saved["map_strategies"].tolist()
        assert names == ["balent", "bald", "pbald", "entropy"]  # the preset's map strategies, saved by name
        assert saved["image"].ndim == 3 and saved["scores"].shape == (4,) + saved["gt"].shape
        assert saved["scores"].dtype == np.float32 and np.isfinite(saved["ranks"]).all()


def test_same_seed_gives_identical_tables(run_cli, two_model_run, tmp_path):
    out, _ = two_model_run
    run_cli("run", "--strategy", "balent,random", "--model", "all", "--out", tmp_path, *TINY)
    first, second = pd.read_csv(out / "cycles.csv"), pd.read_csv(tmp_path / "cycles.csv")
    pd.testing.assert_frame_equal(without_timings(first), without_timings(second))
    assert (out / "leaderboard.csv").read_bytes() == (tmp_path / "leaderboard.csv").read_bytes()
    assert (out / "class_iou.csv").read_bytes() == (tmp_path / "class_iou.csv").read_bytes()


def test_resume_after_kill_gives_the_same_tables(run_cli, two_model_run, benchmark_cache, tmp_path):
    reference, _ = two_model_run
    args = ["run", "--strategy", "balent,random", "--model", "fpn", "--out", str(tmp_path), *TINY]
    env = dict(os.environ, BENCHMARK_CACHE=str(benchmark_cache), OMP_NUM_THREADS="1",
               PYTHONPATH=str(Path(__file__).resolve().parents[2]))
    proc = subprocess.Popen([sys.executable, "-m", "benchmark", *args], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            cwd=Path(__file__).resolve().parents[2])
    marker = tmp_path / "runs" / "synthetic__fpn__balent__seed0" / "cycles.csv"
    deadline = time.time() + 600
    while not marker.exists() and time.time() < deadline and proc.poll() is None:
        time.sleep(0.05)
    assert proc.poll() is None, "the run ended before it could be killed"
    os.kill(proc.pid, signal.SIGKILL)  # mid-run: balent has one cycle, random none
    proc.wait()
    done = pd.read_csv(tmp_path / "cycles.csv") if (tmp_path / "cycles.csv").exists() else None
    assert done is None or len(done) < 5
    run_cli(*args[:-len(TINY)], *TINY, "--resume")
    resumed = pd.read_csv(tmp_path / "cycles.csv")
    expected = pd.read_csv(reference / "cycles.csv")
    expected = expected[expected["model"] == "fpn"].reset_index(drop=True)
    pd.testing.assert_frame_equal(without_timings(resumed), without_timings(expected))
    for run in ("balent", "random"):
        name = f"synthetic__fpn__{run}__seed0"
        pd.testing.assert_frame_equal(pd.read_csv(tmp_path / "runs" / name / "selections.csv"),
                                      pd.read_csv(reference / "runs" / name / "selections.csv"))
