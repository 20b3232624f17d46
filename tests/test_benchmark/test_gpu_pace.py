"""The verdicts of `perf --gpu-check` (benchmark/perf/gpu_pace.py) from given numbers: every ratio of
issue 27, the GPU-hours before (the issue's H200 rates) and after, and the pieces of the runs-per-
hour measurement (which runs two `benchmark run` commands, on a GPU only)."""
import json

import pytest

from benchmark.perf import gpu_pace
from benchmark.perf.gpu_check import paper_protocol


def _out(fp32=10.0, amp=14.0, peer=15.0, bald=1e-4, balent=3e-4, workers=None):
    protocol = paper_protocol()
    scoring = dict.fromkeys(protocol.strategies, 1e-4)
    return dict(trainings=dict(fp32=dict(iterations_per_second=fp32), amp=dict(iterations_per_second=amp)),
                peer=dict(iterations_per_second=peer), protocol=dict(vars(protocol)), scoring_seconds=scoring,
                forward_seconds=0.01, mc_seconds=0.02, paper_workers=4, workers=workers,
                balent=dict(throughput=dict(ratio_score=bald / balent, ratio_score_and_select=0.6)))


def test_the_ratios_of_the_issue():
    v = gpu_pace.verdicts(_out(workers=dict(ratio=5.0)))
    assert v["best_precision"] == "amp" and v["harness_vs_peer"] == pytest.approx(14 / 15)
    assert v["harness_vs_baseline"] == pytest.approx(14 / 3.58)
    assert v["amp_vs_fp32"] == pytest.approx(1.4) and v["amp_win"]
    assert v["balent_vs_bald"] == pytest.approx(1 / 3) and v["workers_ratio"] == 5.0
    assert not gpu_pace.verdicts(_out(amp=10.5))["amp_win"]  # 5% is not a measurable win


def test_gpu_hours_before_use_the_issues_rates_and_after_the_measured_ones():
    from benchmark.perf.gpu_check import protocol_estimate

    out = _out()
    v = gpu_pace.verdicts(out)
    protocol = paper_protocol()
    before = dict(out["scoring_seconds"], balent=0.0497, balent_ref=0.0480)
    assert v["gpu_hours_before"] == pytest.approx(protocol_estimate(protocol, 3.58, 0.01, 0.047, before)["total_hours"])
    assert v["gpu_hours_after"] == pytest.approx(protocol_estimate(protocol, 14.0, 0.01, 0.02, out["scoring_seconds"])["total_hours"])
    assert v["gpu_hours_after_shared"] == pytest.approx(v["gpu_hours_after"] / 4)
    assert v["gpu_hours_after"] < v["gpu_hours_before"]


def test_the_workers_a_run_reports_and_the_span_of_its_runs(tmp_path):
    assert gpu_pace.workers_in("8 runs in 6 worker processes, 2 thread(s) each, sharing cuda\n") == (6, None)
    line = "--workers auto on the GPU: 6 (peak of one run's cycle 1.00 GiB, ...)"
    assert gpu_pace.workers_in(f"{line}\n8 runs in 6 worker processes, 2 thread(s) each\n") == (6, line)
    assert gpu_pace.workers_in("runs ━━━ 2/2\n") == (1, None)
    for name, start, end in (("a", "10:00:00", "10:00:30"), ("b", "10:00:05", "10:01:00")):
        (tmp_path / "runs" / name).mkdir(parents=True)
        (tmp_path / "runs" / name / "status.json").write_text(json.dumps(dict(
            started=f"2026-01-01T{start}+00:00", updated=f"2026-01-01T{end}+00:00")))
    assert gpu_pace._span_seconds(tmp_path) == (2, 60.0)


def test_paper_workers_follow_the_rule():
    assert gpu_pace.paper_workers(None, 139.0, 16, 30) == 1  # on the CPU: nothing measured
    assert gpu_pace.paper_workers(23.5, 139.0, 16, 30) == 4
