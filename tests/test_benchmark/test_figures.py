"""Figures from a synthetic results folder: every PNG is valid, readable back and of sensible size."""
from __future__ import annotations

import io
import json

import matplotlib

matplotlib.use("Agg")
import matplotlib.image as mpimg  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402

from benchmark.cycle.validation_maps import acquisition_ranks  # noqa: E402
from benchmark.errors import UsageError  # noqa: E402
from benchmark.reports import figures  # noqa: E402
from benchmark.reports.figures import choose_maps, make_figures, relative_to_first  # noqa: E402

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
STRATEGIES = ["random", "entropy", "margin", "bald", "pbald", "balent", "balent_ref"]
CLASSES = ["road", "building", "vegetation", "sky", "car"]
PALETTE = np.array([[128, 64, 128], [70, 70, 70], [107, 142, 35], [70, 130, 180], [0, 0, 142]], np.uint8)


def synthetic_cycles(dataset="toy", model="fpn", seeds=(0, 1, 2), cycles=6, strategies=STRATEGIES,
                     supervised=True) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    rows, pool = [], 40 * 60 * 80
    for i, strategy in enumerate(strategies):
        for seed in seeds:
            for cycle in range(cycles):
                labeled = 5 * 40 * (cycle + 1)
                miou = 20 + (8 + i) * np.log1p(cycle) + rng.normal(0, 0.8)
                decay = np.exp(-0.25 * cycle)
                rows.append(dict(dataset=dataset, model=model, strategy=strategy, seed=seed, cycle=cycle,
                                 labeled_pixels=labeled, labeled_fraction=labeled / pool, miou=miou,
                                 macc=miou + 8, aacc=miou + 30, epistemic=0.05 * decay * (1 + 0.1 * i),
                                 aleatoric=0.8 * (0.6 + 0.4 * decay), posterior=-0.2 + 0.5 * decay,
                                 train_seconds=3.0, inference_seconds=1.0, acquisition_seconds=0.2))
    if supervised:
        for seed in seeds:
            rows.append(dict(dataset=dataset, model=model, strategy="supervised", seed=seed, cycle=0,
                             labeled_pixels=pool, labeled_fraction=1.0, miou=68 + rng.normal(0, 1),
                             macc=75, aacc=90, epistemic=np.nan, aleatoric=np.nan, posterior=np.nan,
                             train_seconds=30.0, inference_seconds=0.0, acquisition_seconds=0.0))
    return pd.DataFrame(rows)


def synthetic_map(image_id: int, cycle: int, strategy: str, h=60, w=80, n=5) -> dict:
    rng = np.random.default_rng(100 * cycle + image_id)
    yy, xx = np.mgrid[0:h, 0:w]
    gt = np.zeros((h, w), np.uint8)
    gt[yy < h // 3] = 3
    gt[(yy >= h // 3) & (xx < w // 3)] = 1
    gt[(yy >= h // 3) & (xx > 2 * w // 3)] = 2
    gt[((yy - 2 * h // 3) ** 2 + (xx - w // 2) ** 2) < (h // 8) ** 2] = 4
    gt[:3, :] = 255
    pred = gt.copy()
    pred[pred == 255] = 3
    flip = rng.random((h, w)) < 0.05
    pred[flip] = rng.integers(0, len(CLASSES), flip.sum())
    image = (PALETTE[np.minimum(gt, 4)] * 0.7 + rng.integers(0, 60, (h, w, 3))).astype(np.uint8)
    g = gt.astype(int)
    edge = (np.abs(np.diff(g, axis=0, prepend=0)) + np.abs(np.diff(g, axis=1, prepend=0))) > 0
    blur = np.convolve(edge.ravel().astype(float), np.ones(5) / 5, mode="same").reshape(h, w)
    entropy = 0.1 + 1.4 * blur + rng.random((h, w)) * 0.1
    bald = np.maximum(1e-9, 0.3 * blur * rng.random((h, w)))
    pbald = np.log(bald) + rng.gumbel(size=(h, w))
    raw = 1.2 * (1 - blur) - 0.4 + rng.normal(0, 0.05, (h, w))  # BalEnt, small positive near edges
    raw[np.abs(raw) < 1e-7] = 1e-7
    balent = np.where(raw > 0, 1 / raw, raw)  # acquisition value: huge range, both signs
    balent[h // 2, :8] = -np.inf  # degenerate pixels
    balent[h // 2 + 1, :8] = np.nan
    names = ["balent", "bald", "pbald", "entropy"]
    scores = np.stack([balent, bald, pbald, entropy]).astype(np.float32)
    picks = []
    for score in scores:
        flat = np.argsort(-np.nan_to_num(score, nan=-np.inf), axis=None, kind="stable")[:n]
        picks.append(np.stack([flat // w, flat % w], axis=1).astype(np.int32))
    maps = dict(image=image, gt=gt, pred=pred, image_id=image_id, cycle=cycle, strategy=strategy,
                classes=np.array(CLASSES), palette=PALETTE, map_strategies=np.array(names),
                scores=scores, ranks=np.stack([acquisition_ranks(x) for x in scores]), picks=np.stack(picks))
    return maps


def write_run(results, dataset, model, strategy, seed, map_cycles=(), images=3):
    run = results / "runs" / f"{dataset}__{model}__{strategy}__seed{seed}"
    run.mkdir(parents=True)
    (run / "config.json").write_text(json.dumps(dict(dataset=dataset, model=model, strategy=strategy,
                                                     seed=seed, classes=CLASSES)))
    for cycle in map_cycles:
        for image_id in range(images):
            buffer = io.BytesIO()
            np.savez_compressed(buffer, **synthetic_map(image_id, cycle, strategy))
            (run / "maps").mkdir(exist_ok=True)
            (run / "maps" / f"cycle_{cycle:02d}_img_{image_id}.npz").write_bytes(buffer.getvalue())
    return run


def build_results(root, maps=True):
    """A results folder: two (dataset, model) pairs, one with maps for two runs at cycles 0, 3, 5."""
    results = root / "results"
    results.mkdir()
    cycles = pd.concat([synthetic_cycles(),
                        synthetic_cycles(dataset="toy", model="deeplabv3plus", seeds=(0,), cycles=4,
                                         strategies=["random", "balent"], supervised=False)])
    cycles.to_csv(results / "cycles.csv", index=False)
    if maps:
        write_run(results, "toy", "fpn", "entropy", 0, map_cycles=(0, 3, 5))
        write_run(results, "toy", "fpn", "balent", 1, map_cycles=(0, 3, 5))
        write_run(results, "toy", "fpn", "balent", 0, map_cycles=(0, 3))
    return results


def check_png(path):
    data = path.read_bytes()
    assert data[:8] == PNG_SIGNATURE
    assert len(data) < 2 * 1024 * 1024
    pixels = mpimg.imread(path)
    h, w = pixels.shape[:2]
    assert 400 <= w <= 3000 and 300 <= h <= 3000, (path.name, w, h)


@pytest.fixture(scope="module")
def report_figures(tmp_path_factory):
    results = build_results(tmp_path_factory.mktemp("figs"))
    return results, make_figures(results)


def test_every_figure_is_written_and_a_valid_png(report_figures):
    results, paths = report_figures
    names = sorted(p.name for p in paths)
    assert names == sorted([
        "learning_curves_toy_fpn.png", "learning_curves_toy_deeplabv3plus.png",
        "uncertainty_decomposition_toy_fpn.png", "uncertainty_decomposition_toy_deeplabv3plus.png",
        "pairwise_toy_fpn.png", "pairwise_toy_deeplabv3plus.png", "uncertainty_maps_toy_fpn_cycle5.png"])
    for path in paths:
        assert path.parent == results / "figures"
        check_png(path)


def test_maps_default_to_the_last_cycle_and_prefer_balent_then_lowest_seed(tmp_path):
    results = build_results(tmp_path)
    [(dataset, model, k, rows)] = choose_maps(results, None)
    assert (dataset, model, k) == ("toy", "fpn", 5)
    assert {r["run"] for r in rows} == {"toy__fpn__balent__seed1"}  # the only balent run with cycle 5
    [(_, _, k, rows)] = choose_maps(results, 3)
    assert k == 3 and {r["run"] for r in rows} == {"toy__fpn__balent__seed0"}
    assert [r["order"][1] for r in sorted(rows, key=lambda r: r["order"])] == [0, 1, 2]


def test_maps_at_a_chosen_cycle(tmp_path):
    results = build_results(tmp_path)
    paths = make_figures(results, cycle=0)
    assert "uncertainty_maps_toy_fpn_cycle0.png" in [p.name for p in paths]


def test_unknown_map_cycle_is_a_usage_error_listing_cycles(tmp_path):
    results = build_results(tmp_path)
    with pytest.raises(UsageError, match="cycle 9.*--cycle 0, 3, 5"):
        make_figures(results, cycle=9)


def test_no_maps_skips_the_maps_figure_but_a_cycle_asks_for_them(tmp_path):
    results = build_results(tmp_path, maps=False)
    assert not any("uncertainty_maps" in p.name for p in make_figures(results))
    with pytest.raises(UsageError, match="--map-images"):
        make_figures(results, cycle=0)


def test_missing_cycles_csv_is_a_usage_error(tmp_path):
    with pytest.raises(UsageError, match="no cycles.csv.*python -m benchmark run"):
        make_figures(tmp_path)


def test_acquisition_ranks_are_finite_and_follow_the_selection_order():
    score = np.array([[-1e30, 5.0, 3e38], [np.nan, 1e30, -0.5], [-np.inf, 0.0, 1.0]], dtype=np.float32)
    out = acquisition_ranks(score)
    assert out.dtype == np.float32 and np.isfinite(out).all()
    assert out[0, 2] == 1.0  # the largest acquisition value ranks first
    assert out[1, 0] == out[2, 0] < out[0, 0]  # NaN and -inf rank last, tied
    assert out[0, 0] < out[1, 2] < out[2, 1] < out[2, 2] < out[0, 1] < out[1, 1] < out[0, 2]


def test_maps_figure_panels_are_the_strategies_saved_with_the_maps(tmp_path, captured):
    results = build_results(tmp_path)
    make_figures(results)
    fig = captured["uncertainty_maps_toy_fpn_cycle5.png"]
    titles = [ax.get_title() for ax in fig.axes if ax.get_title()]
    assert titles[3:] == [f"{n}: acquisition rank" for n in ["balent", "bald", "pbald", "entropy"]]


def test_relative_to_first_is_one_at_the_start_and_keeps_up_meaning_more():
    assert relative_to_first([2.0, 1.0, 3.0]) == pytest.approx([1.0, 0.5, 1.5])  # = v / v0 for v0 > 0
    assert relative_to_first([-2.0, -1.0, -3.0]) == pytest.approx([1.0, 1.5, 0.5])  # MJEnt can be < 0
    assert relative_to_first([np.nan, 4.0, 2.0])[1:] == pytest.approx([1.0, 0.5])
    assert np.isnan(relative_to_first([0.0, 1.0])).all() and np.isnan(relative_to_first([np.nan])).all()


@pytest.fixture
def captured(monkeypatch):
    """The figures as matplotlib objects instead of PNG files."""
    figs = {}
    from benchmark.reports.figures import curves, cycle_panels, score_maps

    for module in (curves, cycle_panels, score_maps):
        monkeypatch.setattr(module, "save", lambda fig, path: figs.setdefault(path.name, fig) and path)
    return figs


def test_learning_curve_legend_in_rank_order_with_aulc_and_tied_marker(tmp_path, captured):
    cycles = synthetic_cycles(strategies=["random", "balent", "bald"])
    cycles.loc[cycles["strategy"] == "random", "miou"] -= 15  # clearly worse than the other two
    balent = cycles.loc[cycles["strategy"] == "balent", "miou"].to_numpy()
    cycles.loc[cycles["strategy"] == "bald", "miou"] = balent + np.repeat([0.3, -0.5, 0.1], 6)  # seed noise
    (tmp_path / "cycles.csv").write_text(cycles.to_csv(index=False))
    make_figures(tmp_path)
    fig = captured["learning_curves_toy_fpn.png"]
    texts = [t.get_text() for t in fig.legends[0].get_texts()]
    board = figures.leaderboard(cycles).set_index("strategy")
    assert texts[2].startswith("3. random: ") and " ≈" not in texts[2]
    first, second = board.sort_values("rank").index[:2]  # pinned below: balent, then bald
    assert (first, second) == ("balent", "bald") and bool(board.loc["bald", "tied_with_best"])
    assert [texts[0].split(":")[0], texts[1].split(":")[0]] == ["1. balent", "2. bald ≈"]
    assert f"{board.loc['random', 'aulc_mean']:.1f} ± {board.loc['random', 'aulc_ci95']:.1f}" in texts[2]
    assert texts[3].startswith("supervised, all pixels")
    ax = fig.axes[0]
    assert ax.get_xscale() == "log" and "fraction" in ax.get_xlabel() and ax.get_ylabel() == "mIoU (%)"


def test_decomposition_has_three_relative_panels_and_miou(tmp_path, captured):
    synthetic_cycles(strategies=["random", "balent"]).to_csv(tmp_path / "cycles.csv", index=False)
    make_figures(tmp_path)
    fig = captured["uncertainty_decomposition_toy_fpn.png"]
    titles = [ax.get_title() for ax in fig.axes if ax.get_visible()]
    assert titles == ["epistemic (BALD)", "aleatoric (expected entropy)", "posterior (MJEnt = S + H)", "mIoU (%)"]
    first = [line.get_ydata()[0] for ax in fig.axes[:3] for line in ax.get_lines() if len(line.get_ydata()) == 6]
    assert first == pytest.approx([1.0] * len(first)) and len(first) == 6  # 2 strategies x 3 panels
    assert [t.get_text() for t in fig.legends[0].get_texts()] == ["1. balent", "2. random"]


def test_learning_curve_has_a_tick_per_cycle_despite_the_supervised_reference(tmp_path, captured):
    cycles = synthetic_cycles(strategies=["random", "balent"], cycles=5)  # + supervised at fraction 1
    (tmp_path / "cycles.csv").write_text(cycles.to_csv(index=False))
    make_figures(tmp_path)
    ax = captured["learning_curves_toy_fpn.png"].axes[0]
    fractions = sorted(set(cycles.loc[cycles["strategy"] != "supervised", "labeled_fraction"]))
    assert list(ax.xaxis.get_majorticklocs()) == pytest.approx(fractions)
    assert ax.get_xlim()[1] < 1.0  # the reference is a horizontal line, not a point at fraction 1


def test_query_diagnostics_figure_has_the_three_diagnostics_and_miou(tmp_path, captured):
    cycles = synthetic_cycles(strategies=["random", "balent"])
    rng = np.random.default_rng(0)
    for column in ("query_class_entropy", "query_rare_share", "query_spread"):
        cycles[column] = rng.random(len(cycles))
    cycles.to_csv(tmp_path / "cycles.csv", index=False)
    paths = make_figures(tmp_path)
    assert "query_diagnostics_toy_fpn.png" in [p.name for p in paths]
    fig = captured["query_diagnostics_toy_fpn.png"]
    titles = [ax.get_title() for ax in fig.axes if ax.get_visible()]
    assert titles[-1] == "mIoU (%)" and "spread" in titles[2] and "entropy" in titles[0]
    assert [t.get_text() for t in fig.legends[0].get_texts()] == ["1. balent", "2. random"]  # balent rises faster


def test_decomposition_shows_the_balent_regime_when_recorded(tmp_path, captured):
    cycles = synthetic_cycles(strategies=["random", "balent"])
    for column, value in [("balent_positive_share", 0.2), ("balent_negative_share", 0.7),
                          ("balent_degenerate_share", 0.1), ("top_class_std_median", 0.05)]:
        cycles[column] = value
    cycles.to_csv(tmp_path / "cycles.csv", index=False)
    make_figures(tmp_path)
    fig = captured["uncertainty_decomposition_toy_fpn.png"]
    titles = [ax.get_title() for ax in fig.axes if ax.get_visible()]
    assert len(titles) == 8 and titles[4].startswith("share with BalEnt > 0") and "MC std" in titles[7]
