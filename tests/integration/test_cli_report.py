"""Reporting through the CLI on a tiny real run: leaderboard, figures, and the annotator round trip
(`run --oracle file` -> export-queries -> labels -> import-labels -> `run --resume`)."""
from __future__ import annotations

import json
import shutil

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from benchmark.records.schema import TIMING_COLUMNS

pytestmark = pytest.mark.integration

TINY = ["--cycles", "2", "--train-iters", "3", "--mc-samples", "2", "--pixels-per-image", "2",
        "--map-images", "1", "--batch-size", "8"]
RUN = "synthetic__deeplabv3plus__balent__seed0"
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
ONE_THREAD = {"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}  # far faster on a shared, busy machine


@pytest.fixture(scope="module")
def cli(run_cli):
    def run(*args, check=True):
        return run_cli(*args, check=check, env_extra=ONE_THREAD)

    return run


@pytest.fixture(scope="module")
def reference_run(cli, tmp_path_factory):
    """Two strategies, two seeds, ground-truth oracle: the folder and what `run` printed."""
    out = tmp_path_factory.mktemp("report")
    proc = cli("run", "--strategy", "balent,random", "--seeds", "0,1", "--out", out, *TINY)
    figures = sorted(p.name for p in (out / "figures").glob("*.png"))  # before any test plots
    return out, proc, figures


@pytest.fixture(scope="module")
def reference(reference_run):
    return reference_run[0]


@pytest.fixture(scope="module")
def annotated(cli, tmp_path_factory):
    """The balent seed-0 run with a file oracle, stopped and waiting for its cycle-1 labels."""
    out = tmp_path_factory.mktemp("oracle")
    args = ["run", "--strategy", "balent", "--seeds", "0", "--no-supervised", "--oracle", "file",
            "--out", out, *TINY]
    first = cli(*args, check=False)
    return out, args, first


def one_error_line(proc) -> str:
    assert proc.returncode == 2, proc.stdout + proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), proc.stderr
    return lines[0]


def ground_truth_labels(out, queries: pd.DataFrame) -> pd.DataFrame:
    """The annotator: read each queried pixel from the label PNG of its image."""
    images = pd.read_csv(out / "runs" / RUN / "images.csv").set_index("img_path")["seg_path"]
    labels = []
    for path, x, y in zip(queries["image_path"], queries["x"], queries["y"]):
        with Image.open(images[path]) as seg:
            labels.append(int(np.asarray(seg)[y, x]))
    return queries.assign(label=labels)


def test_leaderboard_command_rebuilds_and_prints_the_table(cli, reference):
    written = (reference / "leaderboard.csv").read_bytes()
    (reference / "leaderboard.csv").unlink()
    proc = cli("leaderboard", "--results", reference)
    assert (reference / "leaderboard.csv").read_bytes() == written  # same bytes as `run` wrote
    board = pd.read_csv(reference / "leaderboard.csv")
    assert list(board.columns[:11]) == ["dataset", "model", "strategy", "selection", "n_seeds", "aulc_mean",
                                        "aulc_ci95", "final_miou_mean", "final_miou_ci95", "pct_of_supervised", "rank"]
    assert sorted(board["strategy"]) == ["balent", "random"] and (board["n_seeds"] == 2).all()
    assert board["aulc_ci95"].notna().all() and board["pct_of_supervised"].notna().all()
    assert sorted(board["rank"]) in ([1, 2], [1, 1])
    assert "synthetic / deeplabv3plus" in proc.stdout and "balent" in proc.stdout and "±" in proc.stdout


FIGURES = ["cost_curves_synthetic_deeplabv3plus.png", "learning_curves_synthetic_deeplabv3plus.png",
           "pairwise_synthetic_deeplabv3plus.png",
           "query_diagnostics_synthetic_deeplabv3plus.png", "uncertainty_decomposition_synthetic_deeplabv3plus.png",
           "uncertainty_maps_synthetic_deeplabv3plus_cycle1.png"]


def test_run_ends_with_the_figures_and_says_where(reference_run):
    out, proc, figures = reference_run
    assert figures == FIGURES
    assert f"figures: {len(FIGURES)} PNG(s) in {out / 'figures'}" in proc.stdout.replace("\n", "")
    assert (out / "pairwise.csv").is_file() and "pairwise.csv" in proc.stdout


def test_plot_command_writes_valid_figures(cli, reference):
    proc = cli("plot", "--results", reference)
    figures = sorted((reference / "figures").glob("*.png"))
    assert [p.name for p in figures] == FIGURES
    for path in figures:
        data = path.read_bytes()
        assert data[:8] == PNG_SIGNATURE and 20_000 < len(data) < 2_000_000, (path.name, len(data))
        with Image.open(path) as image:
            assert 600 <= image.width <= 3000 and 400 <= image.height <= 3000, (path.name, image.size)
        assert str(path) in proc.stdout.replace("\n", "")
    cli("plot", "--results", reference, "--cycle", "0")
    assert (reference / "figures" / "uncertainty_maps_synthetic_deeplabv3plus_cycle0.png").is_file()


def test_report_commands_bad_input_is_one_error_line(cli, reference, tmp_path):
    assert "--cycle 0, 1" in one_error_line(cli("plot", "--results", reference, "--cycle", "7", check=False))
    assert "no cycles.csv" in one_error_line(cli("leaderboard", "--results", tmp_path, check=False))
    shutil.copy(reference / "cycles.csv", tmp_path / "cycles.csv")
    text = (tmp_path / "cycles.csv").read_text().splitlines()
    text[3] = text[3].replace("balent", "balent,,garbage")
    (tmp_path / "cycles.csv").write_text("\n".join(text) + "\n")
    assert "cycles.csv" in one_error_line(cli("leaderboard", "--results", tmp_path, check=False))
    assert "cycles.csv" in one_error_line(cli("plot", "--results", tmp_path, check=False))
    assert not (tmp_path / "leaderboard.csv").exists() and not (tmp_path / "figures").exists()


def test_file_oracle_stops_awaiting_labels(annotated):
    out, _, first = annotated
    assert first.returncode == 3, first.stdout + first.stderr
    assert "import-labels" in first.stdout
    selections = pd.read_csv(out / "runs" / RUN / "selections.csv")
    assert (selections.loc[selections["cycle"] == 1, "label"] == -1).all()
    assert (selections.loc[selections["cycle"] == 0, "label"] >= 0).all()


def test_bad_queries_and_answers_are_refused_and_change_nothing(cli, annotated, tmp_path):
    out, _, _ = annotated
    selections = out / "runs" / RUN / "selections.csv"
    before = selections.read_bytes()
    assert "pass --run with one of" in one_error_line(
        cli("export-queries", "--results", out, "--run", "nope", "--cycle", "1", check=False))
    assert "pass --cycle with one of 0" in one_error_line(
        cli("export-queries", "--results", out, "--run", RUN, "--cycle", "5", check=False))
    cli("export-queries", "--results", out, "--run", RUN, "--cycle", "1", "--out", tmp_path / "q.csv")
    answers = ground_truth_labels(out, pd.read_csv(tmp_path / "q.csv"))
    n_classes = len(json.loads((out / "runs" / RUN / "config.json").read_text())["classes"])
    clicked = pd.read_csv(selections).query("cycle == 0").iloc[0]  # an initial pixel, trained on at cycle 0
    images = pd.read_csv(out / "runs" / RUN / "images.csv").set_index("image_id")["img_path"]
    bad = {
        "no_label.csv": answers.drop(columns="label"),
        "range.csv": answers.assign(label=[n_classes] + list(answers["label"][1:])),
        "not_queried.csv": pd.concat([answers, answers.head(1).assign(x=answers["x"].iloc[0] + 1000)]),
        "trained.csv": answers.head(1).assign(image_path=images[clicked["image_id"]], x=clicked["x"],
                                              y=clicked["y"]),
    }
    expected = {"no_label.csv": "lacks column", "range.csv": "label must be an integer",
                "not_queried.csv": "no selected pixel", "trained.csv": "already trained on"}
    for name, frame in bad.items():
        frame.to_csv(tmp_path / name, index=False)
        line = one_error_line(cli("import-labels", "--results", out, "--run", RUN, "--file", tmp_path / name,
                                      check=False))
        assert expected[name] in line, line
        assert selections.read_bytes() == before


def test_round_trip_gives_the_tables_of_the_ground_truth_oracle(cli, annotated, reference):
    out, args, _ = annotated
    proc = cli("export-queries", "--results", out, "--run", RUN, "--cycle", "1")
    path = out / "runs" / RUN / "queries" / "cycle_01.csv"
    assert str(path) in proc.stdout.replace("\n", "")
    queries = pd.read_csv(path)
    assert list(queries.columns[:3]) == ["image_path", "x", "y"] and len(queries) == 40 * 2
    ground_truth_labels(out, queries).to_csv(path, index=False)
    proc = cli("import-labels", "--results", out, "--run", RUN, "--file", path)
    assert "80 labels imported" in proc.stdout
    cli(*args, "--resume")
    keys = dict(strategy="balent", seed=0)
    for table in ("cycles.csv", "class_iou.csv"):
        mine = pd.read_csv(out / table)
        theirs = pd.read_csv(reference / table)
        theirs = theirs[(theirs["strategy"] == keys["strategy"]) & (theirs["seed"] == keys["seed"])]
        drop = [c for c in TIMING_COLUMNS if c in mine]
        pd.testing.assert_frame_equal(mine.drop(columns=drop).reset_index(drop=True),
                                      theirs.drop(columns=drop).reset_index(drop=True))
    pd.testing.assert_frame_equal(pd.read_csv(out / "runs" / RUN / "selections.csv"),
                                  pd.read_csv(reference / "runs" / RUN / "selections.csv"))
