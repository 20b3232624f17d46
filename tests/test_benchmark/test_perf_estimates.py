"""The perf suite's estimates by subtraction (benchmark/perf/estimates.py) and the GPU check's
estimate of the paper protocol (benchmark/perf/gpu_check.py): never a negative time."""
import math

import pytest

from benchmark.perf.estimates import TOO_FAST, per_unit, ratio, remainder, scaled, shown
from benchmark.perf.gpu_check import Protocol, paper_protocol, protocol_estimate


def test_per_unit_is_the_difference_over_the_units():
    assert per_unit(7.0, 1.0, 3) == pytest.approx(2.0)
    assert per_unit(1.5, 1.0, 50) == pytest.approx(0.01)


@pytest.mark.parametrize("longer, shorter", [(1.0, 1.0), (0.9, 1.26), (0.0, 0.0), (math.nan, 1.0), (math.inf, 1.0)])
def test_per_unit_below_the_noise_is_too_fast_to_estimate(longer, shorter):
    # the case: a fast device where T(n2) came out below T(n1) gave -0.36 s/iteration
    assert per_unit(longer, shorter, 160) is None


def test_per_unit_needs_a_positive_number_of_units():
    with pytest.raises(ValueError):
        per_unit(2.0, 1.0, 0)


def test_remainder_of_a_total_after_its_parts():
    assert remainder(10.0, [2.0, 3.0]) == pytest.approx(5.0)
    assert remainder(10.0, [6.0, 5.0]) is None  # the parts measured apart exceed the total
    assert remainder(None, [1.0]) is None


def test_what_is_derived_from_an_unknown_estimate_is_unknown():
    assert scaled(None, 160) is None and scaled(0.5, 160) == pytest.approx(80.0)
    assert ratio(None, 2.0) is None and ratio(2.0, None) is None and ratio(1.0, 0.0) is None
    assert ratio(3.0, 2.0) == pytest.approx(1.5)
    assert ratio(-1.0, 2.0) is None  # a negative share is no share


def test_shown_says_too_fast_instead_of_a_number():
    assert shown(None, ".2f") == TOO_FAST == "too fast to estimate"
    assert shown(None, ".1%", missing="n/a") == "n/a"
    assert shown(0.0123, ".1f", 1e3) == "12.3"
    assert "-" not in shown(per_unit(0.9, 1.26, 160), ".2f")


def test_protocol_estimate_counts_each_stage_once_per_what_runs_it():
    protocol = Protocol(strategies=("a", "b"), seeds=3, cycles=4, iters=100, pool=10, val=5, mc_samples=20)
    out = protocol_estimate(protocol, train_its=2.0, forward_s=0.1, mc_s=0.5,
                            scoring_s={"a": 0.01, "b": 0.03, "unused": 100.0})
    trainings = 3 * (1 + 2 * 3 + 1)  # per seed: cycle 0 shared, 2 strategies x cycles 1-3, the supervised one
    assert out["trainings"] == trainings == 24
    assert out["hours"]["training"] == pytest.approx(trainings * 100 / 2.0 / 3600)
    assert out["hours"]["evaluation"] == pytest.approx(trainings * 5 * 0.1 / 3600)
    assert out["hours"]["mc_inference"] == pytest.approx(3 * 2 * 4 * 10 * 0.5 / 3600)
    assert out["hours"]["scoring"] == pytest.approx(3 * 4 * 10 * (0.01 + 0.03) / 3600)
    assert out["total_hours"] == pytest.approx(sum(out["hours"].values()))
    assert "K = 3 seeds, S = 2 strategies, C = 4 cycles, I = 100 iterations" in out["formula"]


def test_the_paper_protocol_is_read_from_the_preset_the_registry_and_the_dataset():
    from benchmark.config.presets import PRESET_DIR, load_preset
    from benchmark.data import get_dataset
    from strategies import STRATEGIES

    preset = load_preset(PRESET_DIR / "cityscapes_deeplabv3plus.py")
    protocol = paper_protocol(preset)
    assert protocol.strategies == tuple(STRATEGIES.names())
    assert (protocol.seeds, protocol.cycles, protocol.iters, protocol.mc_samples) == (
        len(preset.active_learning.seeds), preset.active_learning.cycles, preset.schedule.iters,
        preset.active_learning.mc_samples) == (3, 10, 8000, 20)
    assert (protocol.pool, protocol.val) == (get_dataset("cityscapes").split_images["train"], 500)
