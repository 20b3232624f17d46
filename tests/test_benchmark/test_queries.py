"""Annotator hand-off: export a cycle's clicks, import the answers back into selections.csv."""
from __future__ import annotations

import json

import pandas as pd
import pytest

from benchmark.cycle.annotator_files import export_queries, import_labels
from benchmark.errors import UsageError

RUN = "toy__fpn__entropy__seed0"
CLASSES = ["road", "building", "sky"]


@pytest.fixture
def report_run(tmp_path):
    """A run folder whose cycle 0 clicks are answered and cycle 1 clicks are pending (-1)."""
    results = tmp_path / "results"
    run = results / "runs" / RUN
    run.mkdir(parents=True)
    (run / "config.json").write_text(json.dumps(dict(dataset="toy", model="fpn", strategy="entropy", seed=0,
                                                     classes=CLASSES)))
    pd.DataFrame(dict(image_id=[0, 1], img_path=["/data/img/b.png", "/data/img/a.png"],
                      seg_path=["/data/seg/b.png", "/data/seg/a.png"], height=[8, 8], width=[10, 10])
                 ).to_csv(run / "images.csv", index=False)
    pd.DataFrame([(0, 0, 1, 2, 0), (0, 1, 3, 4, 2), (1, 1, 5, 1, -1), (1, 0, 7, 9, -1), (1, 0, 2, 3, -1)],
                 columns=["cycle", "image_id", "y", "x", "label"]).to_csv(run / "selections.csv", index=False)
    pd.DataFrame([dict(dataset="toy", model="fpn", strategy="entropy", seed=0, cycle=0, miou=10.0)]
                 ).to_csv(run / "cycles.csv", index=False)  # cycle 0 trained; cycle 1 awaits labels
    return results


def selections(results):
    return pd.read_csv(results / "runs" / RUN / "selections.csv")


def test_export_writes_the_cycles_clicks_sorted_with_an_empty_label(report_run):
    path = export_queries(report_run, RUN, 1)
    assert path == report_run / "runs" / RUN / "queries" / "cycle_01.csv"
    lines = path.read_text().splitlines()
    assert lines == ["image_path,x,y,image_id,label",
                     "/data/img/b.png,3,2,0,", "/data/img/b.png,9,7,0,", "/data/img/a.png,1,5,1,"]


def test_export_to_a_chosen_path_is_deterministic(report_run, tmp_path):
    a = export_queries(report_run, RUN, 1, tmp_path / "a.csv")
    b = export_queries(report_run, RUN, 1, tmp_path / "b.csv")
    assert a.read_bytes() == b.read_bytes()


def test_round_trip_fills_the_labels(report_run):
    path = export_queries(report_run, RUN, 1)
    answers = pd.read_csv(path)
    answers["label"] = [1, 255, 0]  # b.png (3,2), b.png (9,7), a.png (1,5)
    answers.to_csv(path, index=False)
    assert import_labels(report_run, RUN, path) == (3, 0)  # imported, still pending
    sel = selections(report_run).set_index(["image_id", "y", "x"])["label"]
    assert sel.loc[(0, 2, 3)] == 1 and sel.loc[(0, 7, 9)] == 255 and sel.loc[(1, 5, 1)] == 0
    assert sel.loc[(0, 1, 2)] == 0 and sel.loc[(1, 3, 4)] == 2  # cycle 0 untouched
    assert list(selections(report_run).columns) == ["cycle", "image_id", "y", "x", "label"]


def test_import_without_image_id_and_with_blank_rows_left_pending(report_run, tmp_path):
    answers = tmp_path / "answers.csv"
    answers.write_text("image_path,x,y,label\n/data/img/a.png,1,5,2\n/data/img/b.png,9,7,\n")
    assert import_labels(report_run, RUN, answers) == (1, 2)
    sel = selections(report_run).set_index(["image_id", "y", "x"])["label"]
    assert sel.loc[(1, 5, 1)] == 2 and sel.loc[(0, 7, 9)] == -1


@pytest.mark.parametrize("label", ["3", "-1", "254", "1.5", "cat"])
def test_bad_label_is_rejected_and_nothing_written(report_run, tmp_path, label):
    before = (report_run / "runs" / RUN / "selections.csv").read_bytes()
    answers = tmp_path / "answers.csv"
    answers.write_text(f"image_path,x,y,label\n/data/img/a.png,1,5,2\n/data/img/b.png,9,7,{label}\n")
    with pytest.raises(UsageError, match=r"label must be an integer in \[0, 3\) or 255 \(ignore\): line 3 "):
        import_labels(report_run, RUN, answers)
    assert (report_run / "runs" / RUN / "selections.csv").read_bytes() == before


def test_unmatched_rows_are_rejected_naming_them(report_run, tmp_path):
    before = (report_run / "runs" / RUN / "selections.csv").read_bytes()
    answers = tmp_path / "answers.csv"
    answers.write_text("image_path,x,y,label\n/data/img/a.png,1,5,2\n/data/img/zzz.png,1,5,1\n")
    with pytest.raises(UsageError, match=r"line 3 \(/data/img/zzz.png, x=1, y=5"):
        import_labels(report_run, RUN, answers)
    assert (report_run / "runs" / RUN / "selections.csv").read_bytes() == before


def test_pixels_already_trained_on_are_rejected_and_nothing_written(report_run, tmp_path):
    before = (report_run / "runs" / RUN / "selections.csv").read_bytes()
    answers = tmp_path / "answers.csv"
    # (2, 1) of b.png is a cycle-0 click: cycle 0 is trained, its label must not change
    answers.write_text("image_path,x,y,label\n/data/img/a.png,1,5,2\n/data/img/b.png,2,1,1\n")
    with pytest.raises(UsageError, match=r"already trained on .*line 3 \(/data/img/b.png, x=2, y=1"):
        import_labels(report_run, RUN, answers)
    assert (report_run / "runs" / RUN / "selections.csv").read_bytes() == before


def test_an_answer_can_be_corrected_before_resuming(report_run, tmp_path):
    answers = tmp_path / "answers.csv"
    answers.write_text("image_path,x,y,label\n/data/img/a.png,1,5,2\n")
    import_labels(report_run, RUN, answers)
    answers.write_text("image_path,x,y,label\n/data/img/a.png,1,5,0\n")
    assert import_labels(report_run, RUN, answers) == (1, 2)
    assert selections(report_run).set_index(["image_id", "y", "x"])["label"].loc[(1, 5, 1)] == 0


def test_duplicate_answers_are_rejected(report_run, tmp_path):
    answers = tmp_path / "answers.csv"
    answers.write_text("image_path,x,y,label\n/data/img/a.png,1,5,2\n/data/img/a.png,1,5,1\n")
    with pytest.raises(UsageError, match="more than once"):
        import_labels(report_run, RUN, answers)


def test_missing_columns_and_no_filled_label_are_usage_errors(report_run, tmp_path):
    answers = tmp_path / "answers.csv"
    answers.write_text("image_path,x,label\n/data/img/a.png,1,2\n")
    with pytest.raises(UsageError, match="lacks column.*y"):
        import_labels(report_run, RUN, answers)
    answers.write_text("image_path,x,y,label\n/data/img/a.png,1,5,\n")
    with pytest.raises(UsageError, match="no filled label"):
        import_labels(report_run, RUN, answers)


def test_unknown_run_lists_the_runs(report_run):
    with pytest.raises(UsageError, match=f"no run 'nope'.*{RUN}"):
        export_queries(report_run, "nope", 1)
    with pytest.raises(UsageError, match="no run"):
        import_labels(report_run, "../runs", "x.csv")


def test_cycle_without_selections_lists_the_cycles(report_run):
    with pytest.raises(UsageError, match=r"no selections at cycle 4.*0 \(2 pixels\), 1 \(3 pixels, pending\)"):
        export_queries(report_run, RUN, 4)


def test_missing_answers_file_is_a_usage_error(report_run, tmp_path):
    with pytest.raises(UsageError, match="not found"):
        import_labels(report_run, RUN, tmp_path / "missing.csv")
