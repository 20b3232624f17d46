"""Leaderboard: AULC, t-intervals, ranking, ties with the best, the CSV and the printed table."""
from __future__ import annotations

import io
import math

import numpy as np
import pandas as pd
import pytest
from rich.console import Console
from scipy import stats

from benchmark.errors import UsageError
from benchmark.reports.display import print_leaderboard
from benchmark.reports.leaderboard import LEADERBOARD_COLUMNS, leaderboard
from benchmark.reports.statistics import aulc, t_interval
from benchmark.reports.tables import read_cycles_csv, rebuild_leaderboard, sync_tables

CYCLE_COLUMNS = ["dataset", "model", "strategy", "seed", "cycle", "labeled_pixels", "labeled_fraction", "miou",
                 "macc", "aacc", "epistemic", "aleatoric", "posterior", "train_seconds", "inference_seconds",
                 "acquisition_seconds"]
FRACTIONS = [0.001, 0.002, 0.004, 0.008]


def rows(strategy, seed, mious, fractions=FRACTIONS, dataset="toy", model="fpn"):
    """cycles.csv rows of one run with the given mIoU per cycle."""
    out = []
    for cycle, (frac, miou) in enumerate(zip(fractions, mious)):
        out.append(dict(dataset=dataset, model=model, strategy=strategy, seed=seed, cycle=cycle,
                        labeled_pixels=int(frac * 1e6), labeled_fraction=frac, miou=miou, macc=miou + 5,
                        aacc=miou + 20, epistemic=0.1, aleatoric=0.5, posterior=0.3, train_seconds=1.0,
                        inference_seconds=0.5, acquisition_seconds=0.1))
    return out


def supervised(seed, miou, dataset="toy", model="fpn"):
    return rows("supervised", seed, [miou], fractions=[1.0], dataset=dataset, model=model)


def table(*parts) -> pd.DataFrame:
    return pd.DataFrame([r for part in parts for r in part], columns=CYCLE_COLUMNS)


def row_of(board, strategy):
    return board.set_index("strategy").loc[strategy]


# --- aulc -------------------------------------------------------------------------------------
@pytest.mark.parametrize("a,b", [(10.0, 2000.0), (50.0, 0.0), (-3.0, 7.5)])
def test_aulc_of_a_straight_line_is_its_mean_value(a, b):
    f = np.array([0.001, 0.003, 0.004, 0.01])
    assert aulc(f, a + b * f) == pytest.approx(a + b * (f[0] + f[-1]) / 2, rel=1e-12)


def test_aulc_sorts_points_by_fraction():
    assert aulc([0.3, 0.1, 0.2], [3.0, 1.0, 2.0]) == pytest.approx(2.0)


def test_aulc_of_one_point_or_zero_span_is_that_miou():
    assert aulc([0.5], [42.0]) == 42.0
    assert aulc([0.5, 0.5], [40.0, 42.0]) == 42.0


def test_aulc_normalises_by_span_not_by_one():
    # constant curve: the AULC is the constant whatever the span
    assert aulc([0.01, 0.02], [30.0, 30.0]) == pytest.approx(30.0)


# --- t_interval -------------------------------------------------------------------------------
@pytest.mark.parametrize("values", [[1.0, 2.0], [30.1, 31.5, 29.8], [5.0, 6.0, 7.0, 9.0, 4.0]])
def test_t_interval_matches_scipy(values):
    mean, half = t_interval(values)
    lo, hi = stats.t.interval(0.95, len(values) - 1, loc=np.mean(values), scale=stats.sem(values))
    assert mean == pytest.approx(np.mean(values))
    assert half == pytest.approx((hi - lo) / 2)


def test_t_interval_of_one_value_has_no_half_width():
    mean, half = t_interval([3.5])
    assert mean == 3.5 and math.isnan(half)


def test_t_interval_of_nothing_is_nan():
    assert all(math.isnan(v) for v in t_interval([]))


# --- leaderboard ------------------------------------------------------------------------------
def test_columns_in_order_and_supervised_not_ranked():
    board = leaderboard(table(rows("random", 0, [10, 20, 30, 40]), supervised(0, 80)))
    assert list(board.columns[:11]) == LEADERBOARD_COLUMNS[:11]
    assert list(board["strategy"]) == ["random"]


def test_aulc_and_final_miou_over_seeds():
    seeds = {0: [10, 20, 30, 40], 1: [12, 22, 33, 44], 2: [11, 19, 31, 41]}
    board = leaderboard(table(*(rows("entropy", s, m) for s, m in seeds.items())))
    per_seed = [aulc(FRACTIONS, m) for m in seeds.values()]
    finals = [m[-1] for m in seeds.values()]
    r = row_of(board, "entropy")
    assert r["n_seeds"] == 3
    assert r["aulc_mean"] == pytest.approx(np.mean(per_seed))
    assert r["aulc_ci95"] == pytest.approx(t_interval(per_seed)[1])
    assert r["final_miou_mean"] == pytest.approx(np.mean(finals))
    assert r["final_miou_ci95"] == pytest.approx(t_interval(finals)[1])


def test_one_seed_has_nan_intervals_and_a_note():
    r = row_of(leaderboard(table(rows("bald", 0, [10, 20, 30, 40]))), "bald")
    assert r["n_seeds"] == 1
    assert math.isnan(r["aulc_ci95"]) and math.isnan(r["final_miou_ci95"])
    assert "1 seed, no interval" in r["note"]


def test_every_arm_is_ranked_on_the_span_every_ranked_run_reached():
    # margin's seed 1 stopped one cycle early: everybody is ranked on cycles 0-2, and it says so
    board = leaderboard(table(rows("margin", 0, [10, 20, 30, 40]), rows("margin", 1, [10, 20, 30]),
                              rows("random", 0, [10, 20, 30, 90]), rows("random", 1, [10, 20, 30, 90])))
    margin, random = row_of(board, "margin"), row_of(board, "random")
    assert margin["final_miou_mean"] == pytest.approx(30.0) and random["final_miou_mean"] == pytest.approx(30.0)
    expected_aulc = aulc(FRACTIONS[:3], [10, 20, 30])
    assert margin["aulc_mean"] == pytest.approx(expected_aulc) and random["aulc_mean"] == pytest.approx(expected_aulc)
    assert margin["ranked_cycles"] == random["ranked_cycles"] == 3
    assert "ranked on cycles 0-2" in random["note"] and margin["n_cycles"] == 4


def test_pct_of_supervised_divides_by_the_same_seed_of_the_same_dataset_model():
    board = leaderboard(table(rows("random", 0, [10, 20, 30, 40]), rows("random", 1, [10, 20, 30, 60]),
                              rows("random", 2, [10, 20, 30, 50]), supervised(0, 80), supervised(1, 100),
                              supervised(0, 10, model="other")))
    pct = [100 * 40 / 80, 100 * 60 / 100, 100 * 50 / 90]  # seed 2 has no reference: the mean over its seeds
    r = row_of(board, "random")
    assert r["pct_of_supervised"] == pytest.approx(np.mean(pct))
    assert r["pct_of_supervised_ci95"] == pytest.approx(t_interval(pct)[1])


def test_pct_of_supervised_is_nan_without_reference():
    assert math.isnan(row_of(leaderboard(table(rows("random", 0, [1, 2, 3, 4]))), "random")["pct_of_supervised"])


def test_rank_by_aulc_then_final_miou():
    board = leaderboard(table(
        rows("a_low", 0, [10, 10, 10, 10]),
        rows("b_high", 0, [20, 20, 20, 20]),
        # same AULC as b_high (constant 20 vs. line from 15 to 25 over the span) but higher final
        rows("c_same_aulc", 0, [15, 15 + 10 * (0.001 / 0.007), 15 + 10 * (0.003 / 0.007), 25])))
    assert row_of(board, "c_same_aulc")["aulc_mean"] == pytest.approx(20.0)
    assert list(board["strategy"]) == ["c_same_aulc", "b_high", "a_low"]
    assert list(board["rank"]) == [1, 2, 3]


def test_exact_ties_share_the_smaller_rank():
    board = leaderboard(table(rows("x", 0, [10, 20, 30, 40]), rows("y", 0, [10, 20, 30, 40]),
                              rows("z", 0, [1, 2, 3, 4])))
    assert list(board["strategy"]) == ["x", "y", "z"]  # ties sorted by name
    assert list(board["rank"]) == [1, 1, 3]


def test_rank_is_within_dataset_and_model():
    board = leaderboard(table(rows("a", 0, [1, 2, 3, 4], model="m1"), rows("b", 0, [5, 6, 7, 8], model="m1"),
                              rows("a", 0, [9, 9, 9, 9], model="m2")))
    assert list(zip(board["model"], board["strategy"], board["rank"])) == [
        ("m1", "b", 1), ("m1", "a", 2), ("m2", "a", 1)]


def test_tied_with_best_separated_vs_overlapping():
    best = {s: [30 + s, 40 + s, 50 + s, 60 + s] for s in range(4)}
    noise = [0.5, -0.4, 0.3, -0.2]
    parts = [rows("best", s, m) for s, m in best.items()]
    # far below on every seed -> distinguishable
    parts += [rows("worse", s, [v - 10 + noise[s] for v in m]) for s, m in best.items()]
    # slightly below on some seeds, above on others -> not distinguishable
    parts += [rows("close", s, [v - 0.1 + noise[s] for v in m]) for s, m in best.items()]
    board = leaderboard(table(*parts)).set_index("strategy")
    assert board.loc["best", "rank"] == 1 and bool(board.loc["best", "tied_with_best"]) is True
    assert bool(board.loc["close", "tied_with_best"]) is True
    assert bool(board.loc["worse", "tied_with_best"]) is False


@pytest.mark.parametrize("diffs, tied", [
    # d = 1..5: mean 3, sd sqrt(2.5), t = 3 / (sqrt(2.5) / sqrt(5)) = 4.243, df 4: p = 0.0132 < 0.05
    ([1.0, 2.0, 3.0, 4.0, 5.0], False),
    # mean 0.2, sd 1.6432, t = 0.272, df 4: p = 0.799 >= 0.05
    ([1.0, -1.0, 2.0, -2.0, 1.0], True),
])
def test_tied_with_best_is_the_paired_t_test_at_alpha_005(diffs, tied):
    base = np.array([40.0, 42.0, 39.0, 41.0, 43.0])
    parts = [rows("a", s, [base[s]] * 4) for s in range(5)] + [rows("b", s, [base[s] - diffs[s]] * 4)
                                                                 for s in range(5)]
    board = leaderboard(table(*parts)).set_index("strategy")
    assert stats.ttest_rel(base, base - np.array(diffs)).pvalue == pytest.approx(0.0132 if not tied else 0.799,
                                                                               abs=5e-4)
    assert board.loc["a", "rank"] == 1
    assert bool(board.loc["b", "tied_with_best"]) is tied


def test_tied_with_best_is_na_with_fewer_than_two_shared_seeds():
    board = leaderboard(table(rows("a", 0, [50] * 4), rows("a", 1, [51] * 4),
                              rows("b", 1, [10] * 4), rows("b", 2, [11] * 4))).set_index("strategy")
    assert bool(board.loc["a", "tied_with_best"]) is True
    assert pd.isna(board.loc["b", "tied_with_best"])


def test_duplicate_rows_keep_the_last():
    old = rows("random", 0, [1, 2, 3, 4])
    new = rows("random", 0, [10, 20, 30, 40])
    board = leaderboard(table(old, new))
    r = row_of(board, "random")
    assert r["n_seeds"] == 1 and r["final_miou_mean"] == 40


def test_row_order_is_deterministic_whatever_the_input_order():
    parts = table(rows("b", 0, [5] * 4), rows("a", 0, [5] * 4), rows("c", 1, [9] * 4, dataset="d0"),
                  supervised(0, 50))
    shuffled = parts.sample(frac=1.0, random_state=7)
    pd.testing.assert_frame_equal(leaderboard(parts), leaderboard(shuffled))
    assert list(leaderboard(parts)["dataset"]) == ["d0", "toy", "toy"]


def test_missing_columns_is_a_usage_error_naming_them():
    frame = table(rows("random", 0, [1, 2, 3, 4])).drop(columns=["miou", "labeled_fraction"])
    with pytest.raises(UsageError, match="labeled_fraction, miou"):
        leaderboard(frame)


def test_only_supervised_gives_an_empty_board():
    board = leaderboard(table(supervised(0, 80)))
    assert len(board) == 0 and list(board.columns) == LEADERBOARD_COLUMNS


# --- files and printing -----------------------------------------------------------------------
def test_rebuild_writes_byte_identical_csv_for_identical_input(tmp_path):
    frame = table(*(rows(s, seed, list(np.linspace(10, 40, 4) + seed * 0.37 + i))
                    for i, s in enumerate(["random", "entropy", "balent"]) for seed in range(3)), supervised(0, 77.7))
    first, second = tmp_path / "one", tmp_path / "two"
    for folder, data in [(first, frame), (second, frame.sample(frac=1.0, random_state=1))]:
        folder.mkdir()
        data.to_csv(folder / "cycles.csv", index=False)
        rebuild_leaderboard(folder)
    a, b = (first / "leaderboard.csv").read_bytes(), (second / "leaderboard.csv").read_bytes()
    assert a == b
    header = a.decode().splitlines()[0].split(",")
    assert header[:11] == LEADERBOARD_COLUMNS[:11]
    back = pd.read_csv(first / "leaderboard.csv")
    assert list(back["strategy"]) == ["balent", "entropy", "random"]


def test_rebuild_without_cycles_csv_is_a_usage_error(tmp_path):
    with pytest.raises(UsageError, match="no cycles.csv in .*python -m benchmark run"):
        rebuild_leaderboard(tmp_path)


def test_garbled_cells_are_a_usage_error_naming_the_lines(tmp_path):
    frame = table(rows("random", 0, [1, 2, 3, 4])).astype(object)
    frame.loc[2, "miou"] = "n/a?"
    frame.loc[3, "seed"] = "1.5"
    frame.to_csv(tmp_path / "cycles.csv", index=False)
    with pytest.raises(UsageError, match=r"garbled, column seed is not an integer: line 5 \('1.5'\); "
                                         r"column miou is not a number: line 4 \('n/a\?'\)"):
        rebuild_leaderboard(tmp_path)
    assert not (tmp_path / "leaderboard.csv").exists()


@pytest.mark.parametrize("content", [b"", b"\x89PNG\r\n\x1a\n\x00\xff\xfe", b'dataset,model\n"unclosed'])
def test_unreadable_cycles_csv_is_a_usage_error(tmp_path, content):
    (tmp_path / "cycles.csv").write_bytes(content)
    with pytest.raises(UsageError, match="cannot read .*cycles.csv|lacks column"):
        rebuild_leaderboard(tmp_path)


def test_header_lines_repeated_by_concatenation_are_dropped(tmp_path):
    a, b = table(rows("random", 0, [1, 2, 3, 4])), table(rows("random", 1, [2, 3, 4, 5]))
    text = a.to_csv(index=False) + b.to_csv(index=False)  # `cat a/cycles.csv b/cycles.csv`
    (tmp_path / "cycles.csv").write_text(text)
    back = read_cycles_csv(tmp_path / "cycles.csv")
    assert len(back) == 8 and back["seed"].dtype == "int64" and back["miou"].dtype == "float64"
    assert row_of(rebuild_leaderboard(tmp_path), "random")["n_seeds"] == 2


def write_run_folder(results, part):
    frame = table(part)
    first = frame.iloc[0]
    run = results / "runs" / f"{first.dataset}__{first.model}__{first.strategy}__seed{first.seed}"
    run.mkdir(parents=True)
    frame.to_csv(run / "cycles.csv", index=False)
    frame[["dataset", "model", "strategy", "seed", "cycle"]].assign(**{"class": "road", "iou": 50.0}).to_csv(
        run / "class_iou.csv", index=False)


def test_sync_keeps_rows_of_runs_merged_from_another_machine(tmp_path):
    # this machine ran seed 0 (now with 4 cycles); cycles.csv also holds seed 1 from elsewhere and a stale seed 0
    write_run_folder(tmp_path, rows("random", 0, [10, 20, 30, 40]))
    table(rows("random", 0, [1, 2]), rows("random", 1, [11, 21, 31, 41])).to_csv(tmp_path / "cycles.csv",
                                                                                 index=False)
    sync_tables(tmp_path)
    merged = read_cycles_csv(tmp_path / "cycles.csv")
    assert merged.groupby("seed")["miou"].apply(list).to_dict() == {0: [10, 20, 30, 40], 1: [11, 21, 31, 41]}
    assert set(pd.read_csv(tmp_path / "class_iou.csv")["seed"]) == {0}
    assert row_of(rebuild_leaderboard(tmp_path), "random")["n_seeds"] == 2


def test_sync_without_foreign_rows_writes_the_tables_as_run_does(tmp_path):
    from benchmark.reports.tables import write_tables

    for seed in (0, 1):
        write_run_folder(tmp_path, rows("random", seed, [10 + seed, 20, 30, 40.123456789]))
    write_tables(tmp_path)
    expected = (tmp_path / "cycles.csv").read_bytes(), (tmp_path / "class_iou.csv").read_bytes()
    (tmp_path / "cycles.csv").unlink()
    sync_tables(tmp_path)
    assert ((tmp_path / "cycles.csv").read_bytes(), (tmp_path / "class_iou.csv").read_bytes()) == expected


def render(board) -> str:
    console = Console(file=io.StringIO(), width=160, color_system=None)
    print_leaderboard(board, console)
    return console.file.getvalue()


def test_print_shows_intervals_marker_and_caption():
    parts = [rows("a", s, [30 + s] * 4) for s in range(3)] + [rows("b", s, [29.9 + s] * 4) for s in range(3)]
    text = render(leaderboard(table(*parts, supervised(0, 60))))
    assert "toy / fpn" in text and "±" in text and "≈" in text
    assert "paired" in text  # the caption explains the marker
    assert "supervised reference mIoU 60.00" in text


def test_print_one_seed_says_no_interval_instead_of_a_fake_one():
    text = render(leaderboard(table(rows("a", 0, [30] * 4))))
    assert "1 seed, no interval" in text
    assert "±" not in text.split("mean ±")[0]  # only the caption mentions ±


def test_holm_adjusts_the_family_of_paired_tests_against_the_best():
    base = np.array([40.0, 42.0, 39.0, 41.0, 43.0])
    diffs = {"b": [2.0, 1.0, 3.0, 0.5, 2.5], "c": [1.0, 0.2, 2.0, 0.8, 1.6], "d": [0.5, 2.0, 1.0, 3.0, 0.2]}
    raw = {k: stats.ttest_rel(base, base - np.array(d)).pvalue for k, d in diffs.items()}
    assert [round(raw[k], 4) for k in "bcd"] == [0.0178, 0.0234, 0.0600]  # b and c "differ" uncorrected
    parts = [rows("a", s, [base[s]] * 4) for s in range(5)]
    parts += [rows(k, s, [base[s] - d[s]] * 4) for k, d in diffs.items() for s in range(5)]
    board = leaderboard(table(*parts)).set_index("strategy")
    # Holm over 3 comparisons: 3 x 0.0178 = 0.0534; max(0.0534, 2 x 0.0234); max(0.0534, 0.0600)
    assert board.loc["b", "p_holm"] == pytest.approx(3 * raw["b"])
    assert board.loc["c", "p_holm"] == pytest.approx(3 * raw["b"])
    assert board.loc["d", "p_holm"] == pytest.approx(raw["d"])
    assert all(bool(board.loc[k, "tied_with_best"]) for k in "bcd")  # none tells apart from the best


def test_holm_step_down_by_hand():
    from benchmark.reports.statistics import holm

    adjusted = holm({"x": 0.01, "y": 0.04, "z": 0.03, "w": math.nan})
    assert adjusted["x"] == pytest.approx(0.03) and adjusted["z"] == pytest.approx(0.06)
    assert adjusted["y"] == pytest.approx(0.06) and math.isnan(adjusted["w"])


def test_arms_of_one_strategy_with_two_selectors_are_ranked_apart():
    spread = table(rows("bald", 0, [10, 20, 30, 60])).assign(selection="spread")
    board = leaderboard(pd.concat([table(rows("bald", 0, [10, 20, 30, 40])), spread]))
    assert board[["strategy", "selection", "rank"]].values.tolist() == [["bald", "spread", 1], ["bald", "topn", 2]]
