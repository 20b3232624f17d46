"""`python -m benchmark study mc-dropout`: one ordinary run per configuration, a summary with the
regime shares, the figures; resumable; submitted through `launch` with --launch."""
import json

import pandas as pd
import pytest

from tests.conftest import assert_usage_error

pytestmark = pytest.mark.integration

TINY = ["--seeds", "0", "--cycles", "2", "--train-iters", "2", "--mc-samples", "2", "--pixels-per-image", "2",
        "--map-images", "0", "--batch-size", "4"]
STRATEGIES = {"balent", "bald", "entropy", "random"}


def test_study_runs_each_configuration_and_summarises_them(run_cli, tmp_path):
    out = tmp_path / "study"
    proc = run_cli("study", "mc-dropout", "--out", out, "--configs", "0.1:channel,0.5:element", *TINY)
    summary = pd.read_csv(out / "summary.csv")
    assert len(summary) == 2 * len(STRATEGIES) and set(summary["strategy"]) == STRATEGIES
    assert set(zip(summary["mc_dropout_rate"], summary["mc_dropout_mask"])) == {(0.1, "channel"), (0.5, "element")}
    for column in ("aulc_mean", "rank", "balent_positive_share", "balent_negative_share", "top_class_std_median"):
        assert summary[column].notna().all(), column
    for name in ("study_learning_curves.png", "study_balent_regime.png"):
        assert (out / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and name in proc.stdout
    config = json.loads((out / "rate0.5_element" / "runs" / "synthetic__deeplabv3plus__balent__seed0"
                         / "config.json").read_text())
    assert (config["run"]["mc_dropout_rate"], config["run"]["mc_dropout_mask"]) == (0.5, "element")
    before = (out / "rate0.1_channel" / "cycles.csv").read_bytes()
    run_cli("study", "mc-dropout", "--out", out, "--configs", "0.1:channel,0.5:element", *TINY)  # resumes
    assert (out / "rate0.1_channel" / "cycles.csv").read_bytes() == before


def test_study_through_the_launcher_then_summarised(run_cli, tmp_path):
    out = tmp_path / "study"
    proc = run_cli("study", "mc-dropout", "--out", out, "--configs", "0.3:channel", "--launch", "--executor", "debug",
                   *TINY)
    assert "--summarise-only" in proc.stdout
    assert (out / "rate0.3_channel" / "launch_logs" / "submitted.json").is_file()
    run_cli("study", "mc-dropout", "--out", out, "--configs", "0.3:channel", "--summarise-only")
    assert len(pd.read_csv(out / "summary.csv")) == len(STRATEGIES)


def test_a_bad_configuration_is_one_line(run_cli, tmp_path):
    proc = run_cli("study", "mc-dropout", "--out", tmp_path / "s", "--configs", "0.5:pixel", check=False)
    assert_usage_error(proc, "--configs", "pixel")
    assert not (tmp_path / "s").exists()
