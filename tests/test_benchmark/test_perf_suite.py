"""The performance suite through the CLI: `python -m benchmark perf --tiny --json` runs every
section, prints it, and its measured numbers hold what must hold whatever the machine's speed
(agreements, finite positive ratios, estimates that are positive or "too fast to estimate",
never negative). No timing is compared with a goal (the machine is shared and noisy)."""
import json
import math
import re

import pytest

from strategies import STRATEGIES, scores_alone

SECTIONS = ("1. MC dropout: last layer vs full network", "1b. One last-layer MC sample",
            "2. Pool scoring throughput", "3. Peak memory", "4. Time of one cycle",
            "5. One training iteration: the harness vs a plain mmengine Runner",
            "5b. Stages of the harness's iteration", "5c. Levers",
            "6. One cycle's acquisition per strategy", "6b. The sampled record against the exact one",
            "7. BADGE: factorised vs explicit embeddings", "7b. One image's choice")
BUILTINS = tuple(n for n in STRATEGIES.names() if scores_alone(STRATEGIES.get(n)))  # the ones scored on their own


def positive(value) -> bool:
    return isinstance(value, (int, float)) and math.isfinite(value) and value > 0


def positive_or_too_fast(value) -> bool:
    """An estimate by subtraction: a positive time, or None ("too fast to estimate")."""
    return value is None or positive(value)


@pytest.fixture(scope="module")
def tiny_run(run_cli, tmp_path_factory):
    """The suite through the CLI (``run_cli`` fails the test on a non-zero exit): (stdout, numbers)."""
    path = tmp_path_factory.mktemp("perf") / "perf.json"
    proc = run_cli("perf", "--tiny", "--json", path, timeout=600)
    return proc.stdout, json.loads(path.read_text())


@pytest.fixture(scope="module")
def sections(tiny_run):
    return tiny_run[1]["sections"]


def test_tiny_suite_prints_every_section(tiny_run):
    stdout, numbers = tiny_run
    missing = [title for title in SECTIONS if title not in stdout]
    assert not missing
    assert sorted(numbers["sections"]) == ["1", "2", "3", "4", "5", "6", "7"] and positive(numbers["copy_bandwidth"])


def test_last_layer_mc_equals_the_full_network_path_under_the_same_masks(sections):
    for name, r in sections["1"]["models"].items():
        assert r["diff"] < 1e-4 and r["element_diff"] < 1e-4, name  # the same statistics, channel and element masks
        for key in ("features", "fast", "full", "element", "speedup", "full_per_sample", "element_vs_channel"):
            assert positive(r[key]), (name, key)
        assert positive_or_too_fast(r["head_per_sample"])
    for stage, s in sections["1"]["head_stages"].items():
        assert positive_or_too_fast(s["seconds"]), stage
        assert (s["bytes_per_second"] is None) == (s["seconds"] is None), stage


def test_pool_throughput_covers_every_strategy_with_what_each_reads(sections):
    figures = sections["2"]["strategies"]
    assert set(BUILTINS) | {"(decomposition)"} <= set(figures)
    for name, f in figures.items():
        assert positive(f["pixels_per_second"]) and positive(f["bytes_per_pixel"]), name
        assert 0 < f["fixed_cost_share"] <= 1, name
    assert figures["random"]["reads"] == [] and figures["entropy"]["reads"] == ["predictive_entropy"]
    assert set(figures["balent"]["reads"]) == {"mean", "variance", "predictive_entropy"}
    assert all(positive(share) for share in sections["2"]["share_of_bald"].values())


def test_the_fused_kernel_agrees_with_the_torch_kernel(sections):
    """Where the fused kernel runs, its BalEnt scores have the torch kernel's top 1% and -inf pixels."""
    kernels = sections["2"]["kernels"]
    if not kernels:
        pytest.skip("the fused kernel is unavailable here")
    for name, k in kernels.items():
        assert k["agreement"]["top_overlap"] == 1.0 and k["agreement"]["same_inf"], name
        assert k["agreement"]["max_relative_difference"] < 1e-9 and positive(k["speedup"]), name


def test_memory_growth_and_its_ratios_are_positive(sections):
    memory = sections["3"]
    assert all(run["bytes"] > 0 for runs in memory["growth_bytes"].values() for run in runs)
    assert all(positive(r) for ratios in memory["ratios"].values() for r in ratios.values())


def test_the_cycle_breakdown_covers_every_stage(sections):
    from benchmark.perf.cycle import BOUNDS

    cycle = sections["4"]
    assert list(cycle["stages"]) == list(BOUNDS) and all(s >= 0 for s in cycle["stages"].values())
    assert sum(cycle["shares"].values()) == pytest.approx(1.0)
    assert positive(cycle["stages"]["train"])


def test_training_estimates_are_positive_or_too_fast(sections):
    training = sections["5"]
    for key in ("harness_seconds", "peer_seconds", "ratio", "rest_seconds"):
        assert positive_or_too_fast(training[key]), key
    assert all(positive(s) for s in training["stages"].values())
    assert training["levers"][0]["vs_baseline"] == 1.0 and all(positive(row["seconds"]) for row in training["levers"])


def test_real_pool_estimates_are_positive_or_too_fast(sections):
    pool = sections["6"]
    assert positive_or_too_fast(pool["per_iter"])
    if pool["per_iter"] is None:
        assert pool["train_per_cycle"] is None
    else:
        assert pool["train_per_cycle"] == pytest.approx(pool["per_iter"] * pool["iters"])
    for name, s in pool["strategies"].items():
        for key in ("before_share", "after_share", "record_speedup"):
            assert positive_or_too_fast(s[key]), (name, key)


def test_the_exact_record_does_not_depend_on_whose_copy_it_is(sections):
    """balent's exact record reuses the posterior term its scoring computed, the others compute it."""
    records = sections["6"]["records"]
    reference = records["random"]["exact"]
    for name, record in records.items():
        for key, value in record["exact"].items():
            assert value == pytest.approx(reference[key], rel=1e-9, abs=1e-12), (name, key)
        for key in ("balent_positive_share", "balent_negative_share", "balent_degenerate_share"):
            assert 0 <= record["sampled"][key] <= 1, (name, key)


def test_unknown_device_is_a_usage_error(run_cli):
    proc = run_cli("perf", "--tiny", "--device", "tpu", check=False)
    assert proc.returncode == 2
    assert "unknown device" in proc.stderr


def test_strategy_scoring_benchmark_tiny_prints_both_sides_and_ratio(tmp_path):
    import subprocess
    import sys

    from tests.conftest import REPO

    path = tmp_path / "scoring.json"
    proc = subprocess.run([sys.executable, "-m", "benchmark.perf.strategy_scoring", "--tiny", "--json", str(path)],
                          cwd=REPO, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr
    for name in BUILTINS:
        row = next(line for line in proc.stdout.splitlines() if line.strip().startswith(name + " "))
        assert re.search(r"\b\d+\.\d+x\b", row), row  # the speed-up: a number followed by x
    assert "speed-up >= 3x" in proc.stdout and "streaming peak memory" in proc.stdout
    rows = {row["strategy"]: row for row in json.loads(path.read_text())["rows"]}
    assert set(rows) == set(BUILTINS)
    for name, row in rows.items():  # float32 streaming against the float64 reference, same generator
        assert positive(row["speedup"]) and row["top_overlap"] >= 0.9, (name, row["top_overlap"])
    assert rows["random"]["max_rel_diff"] == 0.0  # the same uniform numbers on both paths


@pytest.mark.skipif(__import__("torch").cuda.is_available(), reason="this machine has a GPU")
def test_gpu_check_without_cuda_is_one_line_and_exit_2(run_cli):
    from tests.conftest import assert_usage_error

    assert_usage_error(run_cli("perf", "--gpu-check", check=False), "--gpu-check", "CUDA")


@pytest.fixture(scope="module")
def gpu_check_on_cpu(run_cli, tmp_path_factory):
    """The GPU check's every path but the kernels, on the CPU at tiny sizes: (stdout, numbers)."""
    path = tmp_path_factory.mktemp("gpu-check") / "check.json"
    proc = run_cli("perf", "--gpu-check", "--gpu-check-device", "cpu", "--json", path, timeout=900)
    return proc.stdout, json.loads(path.read_text())


def test_gpu_check_trains_twice_per_precision_each_from_its_own_loader(gpu_check_on_cpu):
    """Warm-up then timed, fp32 then the AMP row (fp32 on the CPU): four trainings from one
    dataset. Reusing a loader stops the second training at once (StopIteration: the check
    collects the previous Runner first), so getting here means every training had its own."""
    _, out = gpu_check_on_cpu
    assert [(t["amp"], t["phase"]) for t in out["training_log"]] == [
        (False, "warm-up"), (False, "timed"), (False, "warm-up"), (False, "timed")]
    assert all(positive(t["seconds"]) for t in out["training_log"])
    assert all(positive(t["iterations_per_second"]) for t in out["trainings"].values())
    assert positive(out["forward_seconds"]) and positive(out["mc_seconds"])
    assert set(out["scoring_seconds"]) == set(BUILTINS) and all(positive(s) for s in out["scoring_seconds"].values())


def test_gpu_check_agreement_and_clicks_with_the_harness_generators(gpu_check_on_cpu):
    """Same posteriors, same generators: every strategy, random and pbald included, picks the same
    top 1%; cycle 0's clicks and a random acquisition are identical (here CPU against CPU; on a
    GPU, CUDA against CPU)."""
    stdout, out = gpu_check_on_cpu
    for name in BUILTINS:
        assert out["agreement"][name]["top_overlap"] == 1.0, name
        assert out["agreement"][name]["max_relative_difference"] == 0.0, name
    clicks = out["clicks"]
    assert clicks["cycle0_identical"] and clicks["random_identical"] and clicks["random_clicks"] > 0
    assert "cycle 0's" in stdout and "identical" in stdout and "DIFFERENT" not in stdout


def test_gpu_check_states_the_paper_protocol_estimate_and_its_provenance(gpu_check_on_cpu):
    import torch

    stdout, out = gpu_check_on_cpu
    protocol, estimate = out["protocol"], out["estimate"]
    assert (len(protocol["strategies"]), protocol["seeds"], protocol["cycles"], protocol["iters"]) == (len(STRATEGIES.names()), 3, 10, 8000)
    assert estimate["trainings"] == 3 * (2 + len(STRATEGIES.names()) * 9)
    assert all(positive(hours) for hours in estimate["hours"].values()) and positive(estimate["total_hours"])
    assert estimate["total_hours"] == pytest.approx(sum(estimate["hours"].values()))
    text = " ".join(stdout.split())
    assert f"{estimate['total_hours']:.1f} GPU-hours" in text and "K x [(2 + S(C-1))" in text
    assert f"torch {torch.__version__}" in out["provenance"] and "cuDNN" in out["provenance"]
    assert out["provenance"].split(";")[0] in text


def test_badges_factorised_form_holds_less_than_the_explicit_one_and_picks_the_same(sections):
    forms = sections["7"]["forms"]
    assert sections["7"]["same_picks"]
    held = forms["explicit"]["embedding_bytes"] / forms["factorised"]["embedding_bytes"]
    assert held == pytest.approx(5 * 16 / (5 + 16))  # tiny sizes: n x C x d against n x (C + d)
    assert set(sections["7"]["per_image_ms"]) == {"coreset", "badge", "class_balanced"}
    assert all(positive(ms) for ms in sections["7"]["per_image_ms"].values())


def test_gpu_check_prints_balents_throughput_against_balds_and_its_accuracy(gpu_check_on_cpu):
    """On the CPU the native kernel scores (the GPU's compiled kernel is chosen on CUDA only); the
    path that times both, computes the ratios and compares with the 40-digit values is the GPU's."""
    stdout, out = gpu_check_on_cpu
    throughput, accuracy = out["balent"]["throughput"], out["balent"]["accuracy"]
    assert throughput["kernel"] in ("native", "torch") and out["scoring_kernels"]["balent_kernel"] == throughput["kernel"]
    for name in ("bald", "balent"):
        assert positive(throughput[name]["score_seconds"]) and positive(throughput[name]["score_and_select_seconds"])
    assert throughput["ratio_score"] == pytest.approx(throughput["bald"]["score_seconds"] / throughput["balent"]["score_seconds"])
    assert accuracy["pixels"] == 320 and accuracy["same_infinite"] and accuracy["within"]
    assert accuracy["worst_relative_error"] <= 1e-12
    text = " ".join(stdout.split())
    assert "of BALD's throughput" in text and "40-digit" in text and "NOT within" not in text


def test_gpu_check_times_the_peer_and_prints_the_verdicts(gpu_check_on_cpu):
    """The peer (plain PyTorch loop, 2 loader workers here) trained on the check's images; the
    verdicts of issue 27 computed from the check's own numbers; runs per hour on a GPU only."""
    stdout, out = gpu_check_on_cpu
    assert positive(out["peer"]["iterations_per_second"]) and out["peer"]["workers"] == 2 and not out["peer"]["amp"]
    v = out["verdicts"]
    assert v["harness_vs_peer"] == pytest.approx(
        max(t["iterations_per_second"] for t in out["trainings"].values()) / out["peer"]["iterations_per_second"])
    assert positive(v["gpu_hours_before"]) and positive(v["gpu_hours_after"]) and out["workers"] is None
    text = " ".join(stdout.split())
    assert "verdicts" in text and "the peer's" in text and "paper protocol GPU-hours" in text
