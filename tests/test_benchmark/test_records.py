"""The output schema, run folders and atomic tables."""
import math

import pandas as pd

from benchmark.records.run_folder import RunFolder
from benchmark.records.schema import CYCLE_COLUMNS, CycleRecord
from benchmark.reports.tables import collect_tables, write_tables

EXPECTED_COLUMNS = ["dataset", "model", "strategy", "selection", "seed", "cycle", "labeled_pixels",
                    "labeled_fraction", "miou", "macc", "aacc", "epistemic", "aleatoric",
                    "posterior", "train_seconds", "inference_seconds", "acquisition_seconds",
                    # appended later, in this order (docs/outputs.md)
                    "clicks_in_loss", "void_clicks", "query_class_entropy", "query_rare_share", "query_spread",
                    "evaluation_seconds", "scoring_seconds", "selection_seconds", "record_seconds",
                    "balent_positive_share", "balent_negative_share", "balent_degenerate_share",
                    "balent_saturated_share", "top_class_std_median",
                    "unit", "cost", "cumulative_cost", "queries", "region_purity"]


def record(strategy="bald", seed=0, cycle=0, miou=10.0):
    values = dict.fromkeys(CYCLE_COLUMNS, math.nan)
    values.update(dataset="synthetic", model="fpn", strategy=strategy, selection="topn", seed=seed, cycle=cycle,
                  labeled_pixels=10 * (cycle + 1), labeled_fraction=0.01 * (cycle + 1), miou=miou, macc=20.0,
                  aacc=30.0, epistemic=0.1, aleatoric=0.2, train_seconds=1.0, inference_seconds=2.0,
                  acquisition_seconds=3.0, void_clicks=0, unit="pixel")
    return CycleRecord(**values)


def test_cycle_columns_are_the_published_contract():
    assert CYCLE_COLUMNS == EXPECTED_COLUMNS


def test_run_folder_appends_and_replaces_cycles(tmp_path):
    run = RunFolder(tmp_path / "runs" / "a")
    run.append_cycle(record(cycle=0), {"road": 50.0, "sky": 10.0})
    run.append_cycle(record(cycle=1), {"road": 60.0, "sky": 20.0})
    run.append_cycle(record(cycle=1, miou=11.0), {"road": 61.0, "sky": 21.0})  # redone cycle
    cycles = run.read_cycles()
    assert cycles["cycle"].tolist() == [0, 1] and cycles["miou"].tolist() == [10.0, 11.0]
    ious = run.read_class_iou()
    assert len(ious) == 4 and ious[ious["cycle"] == 1]["iou"].tolist() == [61.0, 21.0]


def test_tables_are_the_sorted_union_of_runs(tmp_path):
    RunFolder(tmp_path / "runs" / "b").append_cycle(record("random", cycle=0), {"road": 1.0})
    RunFolder(tmp_path / "runs" / "a").append_cycle(record("bald", cycle=0), {"road": 2.0})
    cycles = write_tables(tmp_path)
    assert cycles["strategy"].tolist() == ["bald", "random"]
    on_disk = pd.read_csv(tmp_path / "cycles.csv")
    assert list(on_disk.columns) == EXPECTED_COLUMNS and len(on_disk) == 2
    assert list(pd.read_csv(tmp_path / "class_iou.csv").columns) == EXPECTED_COLUMNS[:6] + ["class", "iou", "unit"]
    first = (tmp_path / "cycles.csv").read_bytes()
    write_tables(tmp_path)
    assert (tmp_path / "cycles.csv").read_bytes() == first


def test_class_iou_of_an_uncommitted_cycle_is_left_out(tmp_path):
    run = RunFolder(tmp_path / "runs" / "a")
    run.append_cycle(record(cycle=0), {"road": 1.0})
    # a crash after class_iou.csv was written but before cycles.csv: cycle 1 is not complete
    ious = pd.concat([run.read_class_iou(), pd.DataFrame([{**run.read_class_iou().iloc[0].to_dict(),
                                                          "cycle": 1}])])
    ious.to_csv(run.path / "class_iou.csv", index=False)
    _, class_iou = collect_tables(tmp_path)
    assert class_iou["cycle"].tolist() == [0]


def test_atomic_writes_leave_no_temporary_and_use_the_umask_mode(tmp_path):
    import os
    import stat

    from benchmark.records.fileio import write_text_atomic

    old = os.umask(0o022)
    try:
        import importlib

        import benchmark.records.fileio as fileio
        importlib.reload(fileio)
        fileio.write_text_atomic(tmp_path / "a.csv", "x\n")
    finally:
        os.umask(old)
        importlib.reload(fileio)
    assert stat.S_IMODE((tmp_path / "a.csv").stat().st_mode) == 0o644
    write_text_atomic(tmp_path / "a.csv", "y\n")
    assert (tmp_path / "a.csv").read_text() == "y\n"
    assert [p.name for p in tmp_path.iterdir()] == ["a.csv"]
