"""Region queries (--unit superpixel): aggregation against a brute-force loop, the picked pixels,
the dominant-class answer and purity on hand-made label maps, the cost columns on a known
schedule, aulc_cost by hand, the superpixel maps and their cache, and the plan's checks."""
from __future__ import annotations

import argparse
import json
import math
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image

from benchmark.config.run_spec import RunSpec, run_identity
from benchmark.config.units import unit_fields
from benchmark.cycle.query_units import PixelQueries, RegionQueries, dominant, purity
from benchmark.cycle.region_scores import pick_regions, region_scores
from benchmark.data.label_store import GroundTruthOracle, ImageShape, LabelStore, PendingOracle
from benchmark.data.superpixels import SuperpixelMaps, compute_superpixels
from benchmark.errors import UsageError
from benchmark.records.schema import CYCLE_COLUMNS, with_schema
from benchmark.reports.cost import aulc_cost, curve_mean
from benchmark.reports.leaderboard import leaderboard
from strategies import build_selector


# -- aggregation ----------------------------------------------------------------------------------
def brute_force(scores, regions, selectable, aggregation, topk):
    """One region at a time, in plain Python."""
    n = int(regions.max()) + 1
    values, pickable = [], []
    for r in range(n):
        pixels = [(y, x) for y in range(scores.shape[0]) for x in range(scores.shape[1])
                  if regions[y, x] == r and selectable[y, x]]
        pickable.append(bool(pixels))
        finite = sorted((float(scores[y, x]) for y, x in pixels if math.isfinite(float(scores[y, x]))), reverse=True)
        if not finite:
            values.append(-math.inf)
        elif aggregation == "mean":
            values.append(sum(finite) / len(finite))
        elif aggregation == "max":
            values.append(finite[0])
        else:
            values.append(sum(finite[:topk]) / len(finite[:topk]))
    return np.array(values), np.array(pickable)


@pytest.mark.parametrize("aggregation", ["mean", "max", "topk_mean"])
@pytest.mark.parametrize("seed", range(6))
def test_region_scores_match_a_brute_force_loop(aggregation, seed):
    rng = np.random.default_rng(seed)
    height, width, n = 9, 11, 7
    regions = rng.integers(0, n, size=(height, width))
    regions[0, 0] = n - 1  # the largest id occurs
    scores = rng.normal(size=(height, width))
    scores[rng.random((height, width)) < 0.1] = np.nan
    scores[rng.random((height, width)) < 0.05] = -np.inf
    scores[rng.random((height, width)) < 0.05] = np.inf
    selectable = rng.random((height, width)) < 0.7
    topk = int(rng.integers(1, 6))
    values, pickable = region_scores(torch.tensor(scores, dtype=torch.float32), torch.tensor(regions),
                                     torch.tensor(selectable), aggregation, topk)
    expected, expected_pickable = brute_force(scores.astype(np.float32), regions, selectable, aggregation, topk)
    np.testing.assert_array_equal(pickable.numpy(), expected_pickable)
    np.testing.assert_allclose(values.numpy(), expected, rtol=1e-12, atol=0)


def test_regions_without_a_finite_score_rank_last_and_unselectable_ones_are_never_picked():
    regions = torch.tensor([[0, 0, 1, 1], [2, 2, 3, 3]])
    scores = torch.tensor([[5.0, float("nan")], [1.0, 2.0]]).repeat_interleave(2, dim=1)
    scores[0, 2:] = float("nan")  # region 1: no finite score
    selectable = torch.ones(2, 4, dtype=torch.bool)
    selectable[1, 2:] = False  # region 3: nothing left to label
    values, pickable = region_scores(scores, regions, selectable)
    assert values[1] == -math.inf and pickable.tolist() == [True, True, True, False]
    picks = pick_regions(build_selector("topn"), scores, regions, ~selectable, 3, torch.Generator().manual_seed(0),
                         "mean", 8)
    assert sorted(map(tuple, picks.tolist())) == [(0, 0), (0, 1), (0, 2), (0, 3), (1, 0), (1, 1)]


@pytest.mark.parametrize("seed", range(4))
def test_picked_pixels_are_the_selectable_pixels_of_the_best_regions(seed):
    rng = np.random.default_rng(seed)
    regions = torch.tensor(rng.integers(0, 12, size=(10, 10)))
    scores = torch.tensor(rng.normal(size=(10, 10)))
    excluded = torch.tensor(rng.random((10, 10)) < 0.3)
    picks = pick_regions(build_selector("topn"), scores, regions, excluded, 3, torch.Generator().manual_seed(seed),
                         "max", 8)
    values, pickable = region_scores(scores, regions, ~excluded, "max")
    best = torch.argsort(torch.where(pickable, values, torch.tensor(-math.inf, dtype=torch.float64)),
                         descending=True)[:3]
    expected = torch.nonzero(torch.isin(regions, best) & ~excluded)
    assert picks.tolist() == expected.tolist()


# -- answers and purity on hand-made label maps ---------------------------------------------------
REGIONS = np.array([[0, 0, 0, 1, 1],
                    [0, 0, 2, 1, 1],
                    [3, 3, 2, 2, 2]])
TRUTH = np.array([[4, 4, 7, 1, 1],
                  [4, 7, 255, 1, 1],
                  [255, 255, 255, 255, 6]], dtype=np.uint8)


class Journal:
    def __init__(self):
        self.written = []

    def read_region_queries(self):
        return None

    def write_region_queries(self, ledger, cycle, members):
        self.written.append((ledger.copy(), cycle, {k: v.copy() for k, v in members.items()}))


def region_unit(**costs):
    spec = SimpleNamespace(unit="superpixel", pixel_cost=costs.get("pixel", 1.0), unit_cost=costs.get("region", 1.0),
                           superpixels=dict(aggregation="mean", topk=8))
    return RegionQueries(spec, Journal(), lambda image_id: REGIONS)


def test_dominant_ties_go_to_the_smaller_class_and_void_is_last():
    assert dominant([3, 3, 1, 1, 2]) == 1
    assert dominant([255, 255, 0, 0]) == 0 and dominant([255, 255, 0]) == 255
    assert dominant([-1, -1]) == -1  # pending stays pending


def test_purity_counts_the_pixels_labelled_with_a_class():
    assert purity([4, 4, 4, 4], [4, 7, 4, 255]) == 0.5  # a void truth under a class label is not correct
    assert purity([255, 255, 3], [1, 2, 3]) == 1.0  # void answers carry no label: left out
    assert math.isnan(purity([255, -1], [1, 2]))


def test_a_region_is_answered_with_its_dominant_class_and_void_regions_are_void():
    unit = region_unit()
    truth = GroundTruthOracle(lambda image_id: TRUTH)
    picks = {0: np.argwhere(np.isin(REGIONS, [0, 2, 3]))}  # regions 0 (4,4,4,7,7), 2 (255,255,255,6), 3 (void)
    labels = unit.answer(truth, picks)[0]
    by_region = {int(REGIONS[y, x]): int(label) for (y, x), label in zip(picks[0], labels)}
    assert by_region == {0: 4, 2: 255, 3: 255}
    pending = unit.answer(PendingOracle(), picks)[0]
    assert (pending == -1).all()


def test_purity_and_cost_columns_on_a_known_schedule():
    """Cycle 0: 3 random clicks (one void); cycle 1: regions 0 and 3; cycle 2: region 1. Pixel cost
    1, region cost 2.5."""
    shapes = {0: ImageShape(3, 5)}
    truth = GroundTruthOracle(lambda image_id: TRUTH)
    unit = region_unit(pixel=1.0, region=2.5)
    clicks = {0: np.array([[0, 0], [2, 0], [2, 4]])}  # truths 4, 255, 6
    store = LabelStore(shapes).with_clicks(0, clicks, truth.answer(clicks))
    for cycle, regions in ((1, [0, 3]), (2, [1])):
        labelled = store.labelled_mask(0).numpy()
        picks = {0: np.argwhere(np.isin(REGIONS, regions) & ~labelled)}
        unit.record(Journal(), cycle, picks)
        store = store.with_clicks(cycle, picks, unit.answer(truth, picks))
    columns = [unit.columns(store.up_to_cycle(c), c, truth) for c in range(3)]
    assert [c["cost"] for c in columns] == [3.0, 5.0, 2.5]
    assert [c["cumulative_cost"] for c in columns] == [3.0, 8.0, 10.5]
    assert [c["queries"] for c in columns] == [3, 5, 6]
    assert [c["void_clicks"] for c in columns] == [1, 2, 2]  # the void click, then the void region 3
    # cycle 1: region 0 without its clicked pixel (0,0): 4 pixels labelled 4, of truths 4, 7, 4, 7
    assert math.isnan(columns[0]["region_purity"]) and columns[1]["region_purity"] == 0.5
    assert columns[2]["region_purity"] == 1.0
    assert unit.ledger[["cycle", "region", "pixels"]].values.tolist() == [[1, 0, 4], [1, 3, 1], [2, 1, 4]]
    assert {"unit": "superpixel"}.items() <= columns[0].items()


def test_pixel_cost_columns_on_a_known_schedule():
    shapes = {0: ImageShape(3, 5), 1: ImageShape(3, 5)}
    spec = SimpleNamespace(unit="pixel", pixel_cost=2.0, unit_cost=2.0)
    store = LabelStore(shapes).with_clicks(0, {0: [[0, 0]], 1: [[1, 1]]}, {0: [3], 1: [255]})
    store = store.with_clicks(1, {0: [[0, 1], [0, 2]], 1: [[2, 2]]}, {0: [1, 1], 1: [2]})
    unit = PixelQueries(spec)
    first = unit.columns(store.up_to_cycle(0), 0, None)
    assert math.isnan(first.pop("region_purity"))
    assert first == dict(unit="pixel", void_clicks=1, cost=4.0, cumulative_cost=4.0, queries=2)
    later = unit.columns(store, 1, None)
    assert (later["cost"], later["cumulative_cost"], later["queries"], later["void_clicks"]) == (6.0, 10.0, 5, 1)


# -- aulc_cost ------------------------------------------------------------------------------------
def test_curve_mean_integrates_the_piecewise_linear_curve():
    assert curve_mean([0, 10], [0, 10], 0, 10) == 5.0
    assert curve_mean([0, 10, 20], [0, 10, 10], 5, 15) == pytest.approx((7.5 * 5 + 10 * 5) / 10)
    assert curve_mean([4, 8], [1, 3], 6, 6) == 2.0
    assert math.isnan(curve_mean([4, 8], [1, 3], 2, 6))  # not covered


def test_aulc_cost_uses_the_span_every_run_covers_and_enters_the_leaderboard():
    rows = []
    for unit, costs, mious in (("pixel", [100, 200, 300], [10, 20, 30]), ("superpixel", [100, 150, 200], [10, 30, 40])):
        for seed, shift in ((0, 0.0), (1, 2.0)):
            for cycle, (c, m) in enumerate(zip(costs, mious)):
                rows.append(dict(dataset="d", model="m", strategy="s", selection="topn", unit=unit, seed=seed,
                                 cycle=cycle, labeled_fraction=0.01 * (cycle + 1), miou=m + shift, cumulative_cost=c))
    cycles = pd.DataFrame(rows)
    table = aulc_cost(cycles, ["strategy", "selection", "unit"]).set_index("unit")
    assert (table["cost_span_start"] == 100).all() and (table["cost_span_end"] == 200).all()
    assert table.loc["pixel", "aulc_cost_mean"] == pytest.approx(15 + 1)  # mean of 10..20 (+ the seeds' mean shift)
    assert table.loc["superpixel", "aulc_cost_mean"] == pytest.approx((20 * 50 + 35 * 50) / 100 + 1)
    board = leaderboard(cycles)
    assert list(board.columns[-5:]) == ["aulc_cost_mean", "aulc_cost_ci95", "cost_span_start", "cost_span_end", "unit"]
    assert board.set_index("unit").loc["superpixel", "aulc_cost_mean"] == pytest.approx(28.5)


def test_tables_written_before_the_unit_column_read_as_pixel():
    old = pd.DataFrame([dict(dataset="d", model="m", strategy="s", selection="topn", seed=0, cycle=0,
                             labeled_fraction=0.1, miou=5.0)])
    assert with_schema(old, CYCLE_COLUMNS)["unit"].tolist() == ["pixel"]
    board = leaderboard(old)
    assert board["unit"].tolist() == ["pixel"] and board["aulc_cost_mean"].isna().all()


# -- superpixel maps ------------------------------------------------------------------------------
SETTINGS = dict(algorithm="slic", region_pixels=16, compactness=10.0, sigma=1.0, felzenszwalb_scale=100.0,
                min_size=5, aggregation="mean", topk=8)


def test_superpixels_are_consecutive_deterministic_and_cached(tmp_path):
    rng = np.random.default_rng(0)
    rgb = rng.integers(0, 255, size=(20, 24, 3), dtype=np.uint8)
    Image.fromarray(rgb).save(tmp_path / "a.png")
    for algorithm in ("slic", "felzenszwalb"):
        regions = compute_superpixels(rgb, dict(SETTINGS, algorithm=algorithm))
        assert regions.shape == (20, 24) and regions.dtype == np.int32
        assert set(np.unique(regions)) == set(range(int(regions.max()) + 1))
        np.testing.assert_array_equal(regions, compute_superpixels(rgb, dict(SETTINGS, algorithm=algorithm)))
    maps = SuperpixelMaps(SETTINGS, {0: str(tmp_path / "a.png")}, {0: ImageShape(20, 24)}, tmp_path / "cache")
    first = maps(0)
    assert 10 <= first.max() + 1 <= 60  # about 20 * 24 / 16 regions
    cached = list((tmp_path / "cache").rglob("*.npy"))
    assert len(cached) == 1
    np.testing.assert_array_equal(np.load(cached[0]), first)
    np.save(cached[0], np.zeros((20, 24), np.int32))  # the cache is read, not recomputed
    again = SuperpixelMaps(SETTINGS, {0: str(tmp_path / "a.png")}, {0: ImageShape(20, 24)}, tmp_path / "cache")
    assert again(0).max() == 0
    other = SuperpixelMaps(dict(SETTINGS, region_pixels=32), {0: str(tmp_path / "a.png")}, {0: ImageShape(20, 24)},
                           tmp_path / "cache")
    assert other(0).max() > 0 and len(list((tmp_path / "cache").rglob("*.npy"))) == 2  # other settings, other entry
    wrong = SuperpixelMaps(SETTINGS, {0: str(tmp_path / "a.png")}, {0: ImageShape(10, 24)}, tmp_path / "c2")
    with pytest.raises(UsageError, match="superpixels need both at one size"):
        wrong(0)


# -- the plan -------------------------------------------------------------------------------------
def args(**kw):
    return argparse.Namespace(**{"unit": None, "region_aggregation": None, "budget": None, **kw})


def test_unit_fields_resolve_costs_budget_and_settings():
    fields = unit_fields(args(unit="pixel,superpixel"), {"costs": {"superpixel": 2.0}}, 5, ["topn"])
    assert fields["pixel"] == dict(unit="pixel", unit_cost=1.0, pixel_cost=1.0, budget_per_image=5.0, superpixels=None)
    assert fields["superpixel"]["unit_cost"] == 2.0 and fields["superpixel"]["superpixels"]["aggregation"] == "mean"
    spec = RunSpec(dataset="synthetic", data_root="/d", model="fpn", preset="/p.py", preset_digest="abc", strategy="bald",
                   selection="topn", seed=0, cycles=2, pixels_per_image=5, mc_samples=2, train_iters=1, batch_size=1,
                   device="cpu", retrain="scratch", oracle="ground-truth", out="/o", pretrained=None, amp=False,
                   map_images=0, map_strategies=(), mc_dropout_rate=0.5, mc_dropout_mask="channel",
                   void_clicks="spend", record_pixels=0, **fields["superpixel"])
    assert spec.queries_per_image == 2 and spec.run_id == "synthetic__fpn__bald__superpixel__seed0"
    identity = run_identity(spec)
    assert identity["unit"] == "superpixel" and identity["superpixels"]["region_pixels"] == 64
    json.dumps(identity)


@pytest.mark.parametrize("kw, al, selections, phrase", [
    (dict(unit="region"), {}, ["topn"], "--unit 'region'"),
    (dict(unit="superpixel"), {}, ["spread"], "--selection spread cannot pick superpixels"),
    (dict(unit="superpixel", budget=0.5), {}, ["topn"], "does not pay for one superpixel"),
    (dict(unit="superpixel"), {"superpixels": {"algorithm": "watershed"}}, ["topn"], "'watershed'"),
    (dict(unit="superpixel"), {"superpixels": {"n_segment": 3}}, ["topn"], "unknown key(s) n_segment"),
    (dict(unit="pixel"), {"costs": {"pixel": 0}}, ["topn"], "costs.pixel must be a positive number"),
])
def test_bad_unit_settings_are_usage_errors(kw, al, selections, phrase):
    with pytest.raises(UsageError, match=None) as err:
        unit_fields(args(**kw), al, 5, selections)
    assert phrase in str(err.value)


def test_the_unit_is_part_of_the_run_not_of_cycle_zero(tmp_path):
    from dataclasses import replace

    from benchmark.config.plan import check_existing
    from benchmark.config.run_spec import cycle0_key

    pixel = RunSpec(dataset="synthetic", data_root="/d", model="fpn", preset="/p.py", preset_digest="abc",
                    strategy="bald", selection="topn", seed=0, cycles=2, pixels_per_image=5, mc_samples=2,
                    train_iters=1, batch_size=1, device="cpu", retrain="scratch", oracle="ground-truth",
                    out=str(tmp_path), pretrained=None, amp=False, map_images=0, map_strategies=(),
                    mc_dropout_rate=0.5, mc_dropout_mask="channel", void_clicks="spend", record_pixels=0,
                    budget_per_image=5.0)
    region = replace(pixel, **unit_fields(args(unit="superpixel"), {}, 5, ["topn"])["superpixel"])
    assert cycle0_key(region) == cycle0_key(pixel)  # the same random pixel clicks, one cycle-0 model
    assert run_identity(region) != run_identity(pixel) and region.run_dir != pixel.run_dir
    # a run folder made before the unit fields existed resumes as the pixel run it was
    old = {k: v for k, v in run_identity(pixel).items()
           if k not in ("unit", "unit_cost", "pixel_cost", "budget_per_image", "superpixels")}
    pixel.run_dir.mkdir(parents=True)
    (pixel.run_dir / "config.json").write_text(json.dumps({"run": old}))
    check_existing([pixel], resume=True, overwrite=False)
    with pytest.raises(UsageError, match="budget_per_image"):
        check_existing([replace(pixel, budget_per_image=7.0)], resume=True, overwrite=False)


# -- region queries for annotators ----------------------------------------------------------------
@pytest.fixture
def region_run(tmp_path):
    """A run whose cycle-1 queries are two pending regions of image 0 (3 and 2 pixels)."""
    from benchmark.records.run_folder import RunFolder

    results = tmp_path / "results"
    run = RunFolder(results / "runs" / "toy__fpn__bald__superpixel__seed0")
    run.write_config(dict(classes=["road", "sky", "car"]))
    pd.DataFrame(dict(image_id=[0], img_path=["/d/a.png"], seg_path=["/d/a_seg.png"], height=[4], width=[5])
                 ).to_csv(run.path / "images.csv", index=False)
    pixels = [(0, 0, 0, 0, 1), (1, 0, 1, 1, -1), (1, 0, 1, 2, -1), (1, 0, 2, 1, -1), (1, 0, 3, 4, -1), (1, 0, 3, 3, -1)]
    pd.DataFrame(pixels, columns=["cycle", "image_id", "y", "x", "label"]).to_csv(run.path / "selections.csv", index=False)
    ledger = pd.DataFrame([(1, 0, 7, 1, 1, 3), (1, 0, 9, 3, 4, 2)], columns=["cycle", "image_id", "region", "y", "x", "pixels"])
    run.write_region_queries(ledger, 1, dict(image_id=np.zeros(5, np.int64), region=np.array([7, 7, 7, 9, 9]),
                                             y=np.array([1, 1, 2, 3, 3]), x=np.array([1, 2, 1, 4, 3])))
    pd.DataFrame([dict(dataset="toy", model="fpn", strategy="bald", seed=0, cycle=0, miou=1.0)]
                 ).to_csv(run.path / "cycles.csv", index=False)
    return results, run


def test_region_queries_export_with_masks_and_import_into_every_pixel(region_run):
    from benchmark.cycle.annotator_files import export_queries, import_labels

    results, run = region_run
    path = export_queries(results, run.run_id, 1)
    queries = pd.read_csv(path)
    assert queries[["region", "x", "y", "pixels", "mask_value"]].values.tolist() == [[7, 1, 1, 3, 1], [9, 4, 3, 2, 2]]
    with Image.open(queries["mask_path"][0]) as mask:
        mask = np.asarray(mask)
    assert (np.argwhere(mask == 1).tolist(), np.argwhere(mask == 2).tolist()) == ([[1, 1], [1, 2], [2, 1]],
                                                                                 [[3, 3], [3, 4]])
    queries.assign(label=["2", ""]).to_csv(path, index=False)  # region 9 left pending
    assert import_labels(results, run.run_id, path) == (1, 1)
    labels = pd.read_csv(run.path / "selections.csv").set_index(["y", "x"])["label"]
    assert labels.tolist() == [1, 2, 2, 2, -1, -1]
    before = (run.path / "selections.csv").read_bytes()
    queries.assign(label=["2", "1"], region=[7, 8]).to_csv(path, index=False)  # no region 8 was queried
    with pytest.raises(UsageError, match="no region query"):
        import_labels(results, run.run_id, path)
    queries.assign(label=["2", "2"], region=[7, 7]).to_csv(path, index=False)
    with pytest.raises(UsageError, match="answered more than once"):
        import_labels(results, run.run_id, path)
    assert (run.path / "selections.csv").read_bytes() == before  # nothing written by a refused import
    pd.DataFrame([dict(dataset="toy", model="fpn", strategy="bald", seed=0, cycle=c, miou=1.0) for c in (0, 1)]
                 ).to_csv(run.path / "cycles.csv", index=False)
    queries.assign(label=["1", "1"]).to_csv(path, index=False)
    with pytest.raises(UsageError, match="already trained on"):
        import_labels(results, run.run_id, path)


def test_tables_merged_from_a_version_without_units_keep_their_rows(tmp_path):
    from benchmark.records.run_folder import RunFolder
    from benchmark.records.schema import CycleRecord
    from benchmark.reports.tables import sync_tables

    values = dict.fromkeys(CYCLE_COLUMNS, math.nan)
    values.update(dataset="d", model="m", strategy="random", selection="topn", seed=0, cycle=0, labeled_pixels=10,
                  labeled_fraction=0.1, miou=5.0, void_clicks=0, unit="pixel")
    RunFolder(tmp_path / "runs" / "d__m__random__seed0").append_cycle(CycleRecord(**values), {"road": 1.0})
    keys = dict(dataset="d", model="m", strategy="random", selection="topn", seed=1, cycle=0)
    pd.DataFrame([dict(keys, labeled_pixels=10, labeled_fraction=0.1, miou=6.0)]).to_csv(tmp_path / "cycles.csv",
                                                                                         index=False)
    pd.DataFrame([dict(keys, **{"class": "road", "iou": 2.0})]).to_csv(tmp_path / "class_iou.csv", index=False)
    sync_tables(tmp_path)  # the older tables (seed 1, from elsewhere) have no unit column
    cycles, ious = pd.read_csv(tmp_path / "cycles.csv"), pd.read_csv(tmp_path / "class_iou.csv")
    assert sorted(cycles["seed"]) == [0, 1] and set(cycles["unit"]) == {"pixel"}
    assert sorted(ious["seed"]) == [0, 1] and set(ious["unit"]) == {"pixel"}


def test_a_strategy_that_chooses_its_clicks_runs_with_pixel_clicks_only():
    from benchmark.config.units import units_for
    from strategies import STRATEGIES, chooses_clicks

    choosing = [n for n in STRATEGIES.names() if chooses_clicks(STRATEGIES.get(n))]
    assert choosing, "no registered strategy chooses its own clicks"
    name = choosing[0]
    assert units_for(name, ["pixel", "superpixel"]) == ["pixel"]
    assert units_for("entropy", ["pixel", "superpixel"]) == ["pixel", "superpixel"]
    with pytest.raises(UsageError, match=f"strategy {name} chooses its own clicks"):
        units_for(name, ["superpixel"])
