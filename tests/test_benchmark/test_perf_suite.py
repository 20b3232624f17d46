"""Smoke test of the performance suite: `python -m benchmark perf --tiny` runs and prints every
section. No timing is asserted (the machine is shared and noisy)."""
import re

import pytest

SECTIONS = ("1. MC dropout: last layer vs full network", "1b. One last-layer MC sample",
            "2. Pool scoring throughput", "3. Peak memory", "4. Time of one cycle",
            "5. One training iteration: the harness vs a plain mmengine Runner",
            "5b. Stages of the harness's iteration", "5c. Levers",
            "6. One cycle's acquisition per strategy", "6b. The sampled record against the exact one",
            "7. BADGE: factorised vs explicit embeddings", "7b. One image's choice")


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


def test_tiny_suite_measures_badges_factorised_form_against_the_explicit_one(tiny_run):
    text = tiny_run.stdout
    assert re.search(r"factorised\s+│\s+512 x \(5 \+ 16\)", text) and re.search(r"explicit\s+│\s+512 x 5 x 16", text)
    assert re.search(r"explicit / factorised\s+│\s+ratio\s+│\s+3\.8\s+│", text)  # held: 5 x 16 / (5 + 16)
    assert "same 8 picks in both forms: yes" in text
    assert "not here: badge, coreset" in text  # section 2 says where the choosing strategies are timed
    for name in ("coreset", "badge", "class_balanced"):
        assert re.search(rf"{name} \d+\.\d ms", text)


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


@pytest.mark.skipif(__import__("torch").cuda.is_available(), reason="this machine has a GPU")
def test_gpu_check_without_cuda_is_one_line_and_exit_2(run_cli):
    from tests.conftest import assert_usage_error

    assert_usage_error(run_cli("perf", "--gpu-check", check=False), "--gpu-check", "CUDA")


def test_gpu_check_runs_its_pieces_on_the_cpu_at_tiny_sizes(run_cli):
    out = run_cli("perf", "--gpu-check", "--gpu-check-device", "cpu", timeout=900).stdout
    assert "training, crops" in out and "last-layer MC dropout" in out
    for name in ("random", "entropy", "margin", "bald", "pbald", "balent", "balent_ref"):
        assert f"scoring: {name}" in out
    rows = [line for line in out.splitlines() if "100.0%" in line]
    assert len(rows) == 7  # every strategy's scores agree between the two paths (here both on the CPU)


def test_tiny_suite_compares_the_two_kernels_scores(tiny_run):
    """Where the fused kernel runs, section 2 prints how its BalEnt scores agree with the torch
    kernel's: on these posteriors, the same top 1% and the same -inf pixels."""
    text = " ".join(tiny_run.stdout.split())
    if "fused C kernel (strategies/posterior_term.c)" not in text:
        pytest.skip("the fused kernel is unavailable here")
    agreements = re.findall(r"top-1% overlap (\d+)%, same -inf pixels: (\w+)", text)
    assert len(agreements) == 2 and all(a == ("100", "yes") for a in agreements), agreements
