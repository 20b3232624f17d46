"""coreset, badge and class_balanced through the CLI on the embedded dataset: listed, run for two
tiny cycles beside the others, planned once for strategies that choose their own clicks, and kept
out of what has no meaning for them (another selector, a score map) with one clear line."""
import pandas as pd
import pytest

from tests.conftest import assert_usage_error

pytestmark = pytest.mark.integration

POOL = ("coreset", "badge", "class_balanced")
TINY = ["--cycles", "2", "--train-iters", "4", "--mc-samples", "3", "--pixels-per-image", "4",
        "--seeds", "0", "--map-images", "1", "--batch-size", "8", "--no-supervised"]
N_TRAIN = 40  # images in the embedded dataset's training pool


def test_list_shows_the_feature_and_pool_strategies(run_cli):
    out = run_cli("list").stdout
    for name in POOL:
        assert name in out


def test_run_plans_a_choosing_strategy_once_and_gives_each_n_clicks_per_image(run_cli, tmp_path):
    out = tmp_path / "out"
    run_cli("run", "--strategy", ",".join(POOL), "--selection", "topn,spread", "--out", out, *TINY)
    cycles = pd.read_csv(out / "cycles.csv")
    runs = set(zip(cycles["strategy"], cycles["selection"]))
    assert runs == {("coreset", "topn"), ("badge", "topn"), ("class_balanced", "topn"), ("class_balanced", "spread")}
    assert (cycles.groupby(["strategy", "selection"])["labeled_pixels"].apply(list) == [[4 * N_TRAIN, 8 * N_TRAIN]] * 4).all()
    assert cycles[["miou", "query_spread", "query_rare_share"]].notna().all().all()
    for name in ("coreset", "badge"):
        picks = pd.read_csv(out / "runs" / f"synthetic__deeplabv3plus__{name}__seed0" / "selections.csv")
        added = picks[picks["cycle"] == 1]
        assert (added.groupby("image_id").size() == 4).all() and added["image_id"].nunique() == N_TRAIN
        assert not picks.duplicated(["image_id", "y", "x"]).any()
    board = pd.read_csv(out / "leaderboard.csv")
    assert set(board["strategy"]) == set(POOL)


@pytest.mark.parametrize("args, phrases", [
    (["--strategy", "coreset", "--selection", "spread"], ["coreset chooses its own clicks", "add topn"]),
    (["--strategy", "random", "--map-strategies", "badge"], ["--map-strategies", "badge", "drop it"]),
])
def test_what_does_not_apply_to_them_is_one_line(run_cli, tmp_path, args, phrases):
    proc = run_cli("run", "--out", tmp_path / "out", *TINY, *args, check=False)
    assert_usage_error(proc, *phrases)
    assert not (tmp_path / "out").exists()
