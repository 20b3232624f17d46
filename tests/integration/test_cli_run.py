"""The main job through the CLI on the real mmseg models: tables, determinism, resume, bad input."""
import json
import os
import signal
import subprocess
import sys
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


def cycle_files(run_dir: Path, cycle: int) -> dict:
    """{path: (size, mtime_ns)} of a run's files of one cycle (its training logs, its maps): a
    process that computed the cycle again would write them anew."""
    return {str(p.relative_to(run_dir)): (p.stat().st_size, p.stat().st_mtime_ns)
            for p in sorted(run_dir.rglob("*")) if p.is_file() and f"cycle_{cycle:02d}" in str(p.relative_to(run_dir))}


@pytest.mark.parametrize("signal_name", ["SIGKILL", "SIGTERM"])
def test_a_killed_run_resumes_where_it_stopped_and_ends_with_the_same_tables(run_cli, gated_reference,
                                                                            benchmark_cache, tmp_path, signal_name):
    """kill -9 (or SIGTERM) mid-run, at a known point (the gated run waits in cycle 1: cycle 0
    recorded, cycle 1 trained but not recorded; the random run not begun). After SIGTERM the run
    wrote ``interrupted`` itself and the command exited 143; after SIGKILL `status` reads it as
    interrupted and repairs the stale ``running``. --resume computes only what is missing (cycle
    0's files are the ones written before the kill; cycle 1 is trained again), ending with an
    uninterrupted run's tables."""
    from tests.fixtures.gated_strategy import GATED_PLAN, wait_at_gate

    out = tmp_path / "out"
    args = ["run", *GATED_PLAN, "--workers", "1", "--out", str(out)]
    env = dict(os.environ, BENCHMARK_CACHE=str(benchmark_cache), OMP_NUM_THREADS="1",
               PYTHONPATH=str(Path(__file__).resolve().parents[2]), BENCHMARK_GATE=str(out))
    proc = subprocess.Popen([sys.executable, "-m", "benchmark", *args], env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True, cwd=Path(__file__).resolve().parents[2])
    run = out / "runs" / "synthetic__fpn__gated__seed0"
    try:
        wait_at_gate(out, run.name, alive=lambda: proc.poll() is None)
        proc.send_signal(getattr(signal, signal_name))  # SIGKILL: no handler runs, nothing is written on the way out
        _, stderr = proc.communicate(timeout=120)
    finally:
        proc.kill()
        proc.wait()
    assert pd.read_csv(run / "cycles.csv")["cycle"].tolist() == [0]  # a partial run
    assert not (out / "runs" / "synthetic__fpn__random__seed0").exists()
    cycle0 = cycle_files(run, 0)
    assert any("train_logs" in name for name in cycle0) and any("maps" in name for name in cycle0)
    if signal_name == "SIGTERM":
        assert proc.returncode == 143 and "--resume" in stderr.strip().splitlines()[-1]
        recorded = json.loads((run / "status.json").read_text())
        assert recorded["state"] == "interrupted" and "note" not in recorded  # written by the run itself
    else:
        assert json.loads((run / "status.json").read_text())["state"] == "running"  # stale: its process is gone
    status = run_cli("status", "--results", out, env_extra={"COLUMNS": "200"}).stdout
    assert "1 interrupted" in status
    repaired = json.loads((run / "status.json").read_text())
    assert repaired["state"] == "interrupted"
    assert ("killed outright" in repaired.get("note", "")) == (signal_name == "SIGKILL")

    run_cli(*args, "--resume")
    assert cycle_files(run, 0) == cycle0  # cycle 0 was not computed again
    assert len(list((run / "train_logs" / "cycle_01").glob("*.py"))) == 2  # cycle 1 was, once more
    resumed, expected = (pd.read_csv(d / "cycles.csv") for d in (out, gated_reference))
    pd.testing.assert_frame_equal(without_timings(resumed), without_timings(expected))
    for name in ("gated", "random"):
        run_dir = f"runs/synthetic__fpn__{name}__seed0"
        pd.testing.assert_frame_equal(pd.read_csv(out / run_dir / "selections.csv"),
                                      pd.read_csv(gated_reference / run_dir / "selections.csv"))
    assert json.loads((run / "status.json").read_text())["state"] == "finished"
