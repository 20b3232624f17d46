"""Superpixel queries through the CLI on the real model: pixel and superpixel arms side by side at
equal cost, the region ledger, kill and resume, the annotator round trip with region queries, and a
real dataset layout (CamVid's, with void)."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from benchmark.records.schema import TIMING_COLUMNS
from tests.fixtures.native_layouts import make_camvid, write_tiny_preset

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
TINY = ["--cycles", "3", "--train-iters", "2", "--mc-samples", "2", "--pixels-per-image", "3", "--seeds", "0",
        "--map-images", "0", "--batch-size", "8", "--no-supervised"]
RUN = "synthetic__deeplabv3plus__entropy__superpixel__seed0"


@pytest.fixture(scope="module")
def both_units(run_cli, tmp_path_factory):
    out = tmp_path_factory.mktemp("units")
    run_cli("run", "--strategy", "entropy", "--unit", "pixel,superpixel", "--out", out, *TINY)
    return out


def without_timings(frame: pd.DataFrame) -> pd.DataFrame:
    return frame.drop(columns=TIMING_COLUMNS)


def test_units_are_compared_at_equal_cost(both_units):
    cycles = pd.read_csv(both_units / "cycles.csv")
    assert list(cycles.columns[-5:]) == ["unit", "cost", "cumulative_cost", "queries", "region_purity"]
    pixel, region = (cycles[cycles["unit"] == u].set_index("cycle") for u in ("pixel", "superpixel"))
    assert (pixel["cumulative_cost"] == [120.0, 240.0, 360.0]).all()  # 40 images x 3 queries per cycle
    assert (region["cumulative_cost"] == pixel["cumulative_cost"]).all()
    assert (pixel["labeled_pixels"] == pixel["queries"]).all() and (region["queries"] == pixel["queries"]).all()
    assert region.loc[0, "miou"] == pixel.loc[0, "miou"]  # the shared cycle 0
    assert (region.loc[1:, "labeled_pixels"] > 20 * pixel.loc[1:, "labeled_pixels"]).all()
    assert pixel["region_purity"].isna().all() and region.loc[0, "region_purity"] != region.loc[0, "region_purity"]
    assert ((region.loc[1:, "region_purity"] > 0.5) & (region.loc[1:, "region_purity"] <= 1)).all()
    board = pd.read_csv(both_units / "leaderboard.csv")
    assert sorted(board["unit"]) == ["pixel", "superpixel"] and board["aulc_cost_mean"].notna().all()
    assert (board["cost_span_end"] == 360).all()


def test_the_ledger_matches_the_labelled_pixels(both_units):
    run = both_units / "runs" / RUN
    ledger = pd.read_csv(run / "regions.csv")
    selections = pd.read_csv(run / "selections.csv")
    assert sorted(ledger["cycle"].unique()) == [1, 2]
    assert (ledger.groupby(["cycle", "image_id"]).size() == 3).all()  # 3 regions per image per cycle
    for cycle in (1, 2):
        with np.load(run / "regions" / f"cycle_{cycle:02d}.npz") as members:
            assert len(members["y"]) == ledger.loc[ledger["cycle"] == cycle, "pixels"].sum()
            labelled = selections[selections["cycle"] == cycle]
            assert len(labelled) == len(members["y"])
            keyed = labelled.set_index(["image_id", "y", "x"])["label"]
            per_region = pd.DataFrame({k: members[k] for k in ("image_id", "region", "y", "x")})
            per_region["label"] = keyed.loc[list(zip(per_region["image_id"], per_region["y"], per_region["x"]))].to_numpy()
            assert (per_region.groupby(["image_id", "region"])["label"].nunique() == 1).all()  # one answer a region


def test_resume_after_kill_with_region_units_gives_the_same_tables(both_units, benchmark_cache, tmp_path):
    args = ["run", "--strategy", "entropy", "--unit", "superpixel", "--out", str(tmp_path), *TINY]
    env = dict(os.environ, BENCHMARK_CACHE=str(benchmark_cache), OMP_NUM_THREADS="1",
               PYTHONPATH=os.pathsep.join(p for p in (str(REPO), os.environ.get("PYTHONPATH", "")) if p))
    proc = subprocess.Popen([sys.executable, "-m", "benchmark", *args], env=env, cwd=REPO,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    marker = tmp_path / "runs" / RUN / "cycles.csv"
    deadline = time.time() + 600
    while not marker.exists() and time.time() < deadline and proc.poll() is None:
        time.sleep(0.05)
    assert proc.poll() is None, "the run ended before it could be killed"
    os.kill(proc.pid, signal.SIGKILL)  # after cycle 0 (and maybe the picks of cycle 1)
    proc.wait()
    subprocess.run([sys.executable, "-m", "benchmark", *args, "--resume"], env=env, cwd=REPO, check=True,
                   capture_output=True)
    expected = pd.read_csv(both_units / "cycles.csv")
    expected = expected[expected["unit"] == "superpixel"].reset_index(drop=True)
    pd.testing.assert_frame_equal(without_timings(pd.read_csv(tmp_path / "cycles.csv")), without_timings(expected))
    for name in ("selections.csv", "regions.csv"):
        assert (tmp_path / "runs" / RUN / name).read_bytes() == (both_units / "runs" / RUN / name).read_bytes()


def test_region_queries_round_trip_through_an_annotator(run_cli, both_units, tmp_path):
    args = ["run", "--strategy", "entropy", "--unit", "superpixel", "--oracle", "file", "--out", tmp_path, *TINY]
    seg = pd.read_csv(both_units / "runs" / RUN / "images.csv").set_index("img_path")["seg_path"]
    for cycle in (1, 2):
        assert run_cli(*args, *(["--resume"] if cycle > 1 else []), check=False).returncode == 3
        run_cli("export-queries", "--results", tmp_path, "--run", RUN, "--cycle", cycle)
        path = tmp_path / "runs" / RUN / "queries" / f"cycle_{cycle:02d}.csv"
        queries = pd.read_csv(path)
        assert list(queries.columns) == ["image_path", "region", "x", "y", "pixels", "mask_path", "mask_value",
                                         "image_id", "label"]
        labels = []
        for row in queries.itertuples():  # the annotator: the dominant true class inside the mask
            with Image.open(row.mask_path) as mask, Image.open(seg[row.image_path]) as truth:
                inside = np.asarray(mask) == row.mask_value
                assert inside.sum() == row.pixels and inside[row.y, row.x]
                values, counts = np.unique(np.asarray(truth)[inside], return_counts=True)
                labels.append(int(values[np.argmax(counts)]))
        queries.assign(label=labels).to_csv(path, index=False)
        proc = run_cli("import-labels", "--results", tmp_path, "--run", RUN, "--file", path)
        assert f"{len(queries)} labels imported" in proc.stdout.replace("\n", " ")
    run_cli(*args, "--resume")
    expected = pd.read_csv(both_units / "runs" / RUN / "cycles.csv")
    pd.testing.assert_frame_equal(without_timings(pd.read_csv(tmp_path / "runs" / RUN / "cycles.csv")),
                                  without_timings(expected))
    assert (tmp_path / "runs" / RUN / "selections.csv").read_bytes() == \
        (both_units / "runs" / RUN / "selections.csv").read_bytes()


def test_a_real_layout_with_void_runs_region_queries(run_cli, tmp_path):
    root = make_camvid(tmp_path / "data", n_train=3, n_val=2)
    out = tmp_path / "out"
    preset = write_tiny_preset(tmp_path / "tiny_camvid.py", "camvid")  # the paper preset, CPU-sized model and crops
    run_cli("run", "--dataset", "camvid", "--data-root", root, "--preset", preset, "--strategy", "bald",
            "--unit", "superpixel", "--out", out, "--cycles", "2", "--train-iters", "2", "--mc-samples", "2", "--pixels-per-image", "4",
            "--seeds", "0", "--map-images", "0", "--batch-size", "2", "--no-supervised")
    cycles = pd.read_csv(out / "cycles.csv").set_index("cycle")
    assert cycles.loc[1, "cumulative_cost"] == 24.0 and cycles.loc[1, "queries"] == 24
    ledger = pd.read_csv(out / "runs" / "camvid__deeplabv3plus__bald__superpixel__seed0" / "regions.csv")
    assert len(ledger) == 12 and cycles.loc[1, "labeled_pixels"] == 12 + ledger["pixels"].sum()
