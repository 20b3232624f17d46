"""Query diagnostics: hand-computed values and the documented edge cases."""
from __future__ import annotations

import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from benchmark.cycle.query_diagnostics import (
    DIAGNOSTIC_COLUMNS,
    query_class_entropy,
    query_diagnostics,
    query_rare_share,
    query_spread,
    rare_classes,
)

REPO = Path(__file__).resolve().parents[2]


# --- rare_classes -----------------------------------------------------------------------------

def test_rare_classes_take_the_rarest_within_the_share() -> None:
    # total 1000; 10% = 100: classes 3 (10) and 1 (40) sum to 50, adding 2 (90) would give 140
    counts = [860, 40, 90, 10]
    assert rare_classes(counts) == {1, 3}
    assert rare_classes(counts, share=0.14) == {1, 2, 3}  # 140 <= 140: reaching it exactly fits
    assert rare_classes(counts, share=0.0) == set()


def test_rare_classes_accept_a_mapping_and_drop_the_ignore_index() -> None:
    counts = {0: 500, 4: 30, 7: 20, 255: 10_000}
    assert rare_classes(counts) == {4, 7}  # total 550 without void; 10% = 55 >= 20 + 30
    assert rare_classes(counts, share=0.09) == {7}  # 49.5 < 50
    # with void counted as a class: total 10550, budget 1055 >= 20 + 30 + 500
    assert rare_classes(counts, ignore_index=None) == {0, 4, 7}


def test_zero_count_classes_are_always_rare() -> None:
    assert rare_classes([0, 500, 500]) == {0}  # and 500 alone is 50% > 10%


def test_the_rarest_class_alone_above_the_share_gives_no_rare_class() -> None:
    assert rare_classes([300, 350, 350]) == set()  # balanced: nothing is rare


def test_equal_counts_are_taken_together_or_not_at_all() -> None:
    # total 200, budget 20: classes 1 and 2 (15 each) are 30 together: neither is taken alone
    assert rare_classes([170, 15, 15]) == set()
    assert rare_classes([170, 15, 15], share=0.15) == {1, 2}


def test_rare_classes_with_nothing_counted_is_empty() -> None:
    assert rare_classes([0, 0, 0]) == set()
    assert rare_classes({}) == set()


@pytest.mark.parametrize("counts", [[1, -2, 3], [1.0, float("nan")], [float("inf"), 1.0]])
def test_rare_classes_reject_bad_counts(counts) -> None:
    with pytest.raises(ValueError, match="finite and >= 0"):
        rare_classes(counts)


def test_rare_classes_reject_a_bad_share() -> None:
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        rare_classes([1, 2], share=1.5)


# --- query_class_entropy ----------------------------------------------------------------------

def test_class_entropy_by_hand() -> None:
    assert query_class_entropy([3, 3, 3, 3]) == 0.0
    assert query_class_entropy([1, 2]) == pytest.approx(math.log(2))
    assert query_class_entropy([0, 1, 2, 3]) == pytest.approx(math.log(4))
    # p = (1/2, 1/4, 1/4): H = 1/2 log 2 + 2 * 1/4 log 4 = 1.5 log 2
    assert query_class_entropy(np.array([[5, 5], [6, 7]])) == pytest.approx(1.5 * math.log(2))


def test_class_entropy_leaves_out_void_and_unanswered_clicks() -> None:
    assert query_class_entropy([1, 2, 255, 255, -1]) == pytest.approx(math.log(2))
    assert query_class_entropy([4, 9, 9], ignore_index=9) == 0.0


def test_class_entropy_without_any_class_is_nan() -> None:
    assert math.isnan(query_class_entropy([255, 255]))
    assert math.isnan(query_class_entropy([]))


# --- query_rare_share -------------------------------------------------------------------------

def test_rare_share_by_hand() -> None:
    labels = [1, 3, 3, 0, 0, 255, 255, 2]  # six clicks with a class; 1 and 3 rare: three of six
    assert query_rare_share(labels, {1, 3}) == pytest.approx(0.5)
    assert query_rare_share(labels, set()) == 0.0
    assert query_rare_share(labels, {0, 1, 2, 3}) == 1.0


def test_rare_share_without_any_class_is_nan() -> None:
    assert math.isnan(query_rare_share([255, 255], {1}))


# --- query_spread -----------------------------------------------------------------------------

def test_spread_by_hand() -> None:
    # image 0 (30 x 40, diagonal 50): (0,0)-(0,10) 10 apart, (20,10) 20 from (0,10):
    #   nearest = 10, 10, 20 -> ratios 0.2, 0.2, 0.4
    # image 1 (6 x 8, diagonal 10): two clicks 5 apart (3-4-5) -> 0.5, 0.5
    # image 2: a single click, left out
    picks = {0: [[0, 0], [0, 10], [20, 10]], 1: np.array([[0, 0], [3, 4]]), 2: [[1, 1]]}
    shapes = {0: (30, 40), 1: (6, 8), 2: (5, 5)}
    assert query_spread(picks, shapes) == pytest.approx((0.2 + 0.2 + 0.4 + 0.5 + 0.5) / 5)


def test_spread_clicks_on_one_pixel_are_at_distance_zero() -> None:
    assert query_spread({0: [[2, 2], [2, 2]]}, {0: (3, 4)}) == 0.0


def test_spread_without_an_image_of_two_clicks_is_nan() -> None:
    assert math.isnan(query_spread({0: [[1, 1]], 1: np.zeros((0, 2))}, {0: (4, 4), 1: (4, 4)}))
    assert math.isnan(query_spread({}, {}))


def test_spread_needs_the_shape_of_each_image_with_two_clicks() -> None:
    with pytest.raises(KeyError, match="image 7"):
        query_spread({7: [[0, 0], [1, 1]]}, {})


# --- all three at once ------------------------------------------------------------------------

def test_query_diagnostics_combines_the_three() -> None:
    picks = {0: [[0, 0], [0, 10]], 1: [[5, 5]]}
    labels = {0: [1, 255], 1: [2]}
    out = query_diagnostics(picks, labels, {0: (30, 40), 1: (9, 9)}, rare={2})
    assert tuple(out) == DIAGNOSTIC_COLUMNS
    assert out["query_class_entropy"] == pytest.approx(math.log(2))
    assert out["query_rare_share"] == pytest.approx(0.5)
    assert out["query_spread"] == pytest.approx(0.2)


def test_query_diagnostics_checks_labels_against_clicks() -> None:
    with pytest.raises(KeyError, match="no labels"):
        query_diagnostics({0: [[0, 0]]}, {}, {0: (2, 2)}, rare=set())
    with pytest.raises(ValueError, match="2 labels for 1 clicks"):
        query_diagnostics({0: [[0, 0]]}, {0: [1, 2]}, {0: (2, 2)}, rare=set())


def test_module_imports_neither_mmseg_nor_torch() -> None:
    code = ("import sys, benchmark.cycle.query_diagnostics; "
            "print(sorted(m for m in ('mmseg', 'mmengine', 'torch') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True,
                         timeout=120, env={"PYTHONPATH": str(REPO), "PATH": "/usr/bin:/bin"})
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"
