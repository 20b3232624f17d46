"""Smoke test of the performance suite: `python -m benchmark perf --tiny` runs and prints its four
sections. No timing is asserted (the machine is shared and noisy)."""
import re

import pytest

SECTIONS = ("1. MC dropout: last layer vs full network", "1b. One last-layer MC sample",
            "2. Pool scoring throughput", "3. Peak memory", "4. Time of one cycle")


@pytest.fixture(scope="module")
def tiny_run(run_cli):
    """The suite through the CLI; ``run_cli`` fails the test on a non-zero exit."""
    return run_cli("perf", "--tiny", timeout=600)


@pytest.mark.parametrize("title", SECTIONS)
def test_tiny_suite_prints_every_section(tiny_run, title):
    assert title in tiny_run.stdout


def test_tiny_suite_lists_every_builtin_strategy_and_cycle_stage(tiny_run):
    for name in ("balent", "balent_ref", "bald", "pbald", "entropy", "margin", "random"):
        assert f" {name} " in tiny_run.stdout
    for stage in ("train", "evaluation", "MC inference", "scoring", "selection"):
        assert stage in tiny_run.stdout


def test_tiny_suite_prints_balent_throughput_against_balds(tiny_run):
    for name in ("balent", "balent_ref"):
        assert f"{name} at " in tiny_run.stdout and "% of bald's throughput" in tiny_run.stdout


def test_unknown_device_is_a_usage_error(run_cli):
    proc = run_cli("perf", "--tiny", "--device", "tpu", check=False)
    assert proc.returncode == 2
    assert "unknown device" in proc.stderr


def test_strategy_scoring_benchmark_tiny_prints_both_sides_and_ratio():
    import subprocess
    import sys

    from tests.conftest import REPO

    proc = subprocess.run([sys.executable, "-m", "benchmark.perf.strategy_scoring", "--tiny"], cwd=REPO,
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr
    for name in ("random", "entropy", "margin", "bald", "pbald", "balent", "balent_ref"):
        row = next(line for line in proc.stdout.splitlines() if line.strip().startswith(name + " "))
        assert re.search(r"\b\d+\.\d+x\b", row), row  # the speed-up: a number followed by x
        assert re.search(r"\b\d+(\.\d+)?%\s*$", row), row  # the top-1% overlap, last
    assert "speed-up >= 3x" in proc.stdout and "streaming peak memory" in proc.stdout
