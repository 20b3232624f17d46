"""The built-in selectors on score maps of known shape, and the selector conformance checks."""
from __future__ import annotations

import itertools
import math

import pytest
import torch

from strategies import SELECTORS, build_selector, select_top_n
from strategies.selectors.pixelpick import top_share_size
from strategies.selectors.spread import shrink_radius
from strategies.testing import SelectorCheckError, check_selector, score_map

NAMES = SELECTORS.names()
BUILTIN = ["pixelpick", "spread", "topn"]


def _g(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def _picks(coords: torch.Tensor) -> list[tuple[int, int]]:
    return [tuple(row) for row in coords.tolist()]


def _distances(coords: torch.Tensor) -> torch.Tensor:
    """Pairwise Euclidean distances of the picks, the diagonal left out. # [k*(k-1)]"""
    points = coords.double()
    dist = torch.cdist(points, points)
    return dist[~torch.eye(len(points), dtype=torch.bool)]


def sharp_peak(height: int = 32, width: int = 32, centre: tuple[int, int] = (12, 20),
               sigma: float = 3.0) -> torch.Tensor:
    """One Gaussian bump: scores fall with the distance to ``centre``. # [H, W]"""
    yy, xx = torch.meshgrid(torch.arange(height), torch.arange(width), indexing="ij")
    d2 = (yy - centre[0]) ** 2 + (xx - centre[1]) ** 2
    return torch.exp(-d2.double() / (2 * sigma ** 2))


# --- conformance ------------------------------------------------------------------------------

def test_builtins_are_registered() -> None:
    assert set(BUILTIN) <= set(NAMES)


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("seed", [0, 99])
def test_check_selector(name: str, seed: int) -> None:
    check_selector(build_selector(name), seed=seed)


@pytest.mark.parametrize("params", [dict(type="spread", r=0), dict(type="spread", r=30),
                                    dict(type="pixelpick", q=1.0), dict(type="pixelpick", q=1e-6)])
def test_check_selector_with_extreme_parameters(params: dict) -> None:
    check_selector(build_selector(params))


class _Broken:
    """Valid picks from select_top_n, then one defect."""

    def __init__(self, defect: str) -> None:
        self.defect = defect

    def select(self, scores, labelled, n, generator=None):
        picks = select_top_n(scores, labelled, n, generator)
        if self.defect == "duplicates" and len(picks) > 1:
            picks[1] = picks[0]
        if self.defect == "labelled" and labelled is not None and labelled.any():
            picks[:1] = torch.nonzero(labelled)[:1]
        if self.defect == "dtype":
            picks = picks.int()
        if self.defect == "global rng":
            order = torch.randperm(len(picks))  # the global RNG, on purpose
            picks = picks[order]
        if self.defect == "one short" and len(picks) > 0:
            picks = picks[:-1]
        return picks


@pytest.mark.parametrize("defect, check", [("duplicates", "duplicates"), ("labelled", "labelled"),
                                           ("dtype", "output"), ("global rng", "reproducible"),
                                           ("one short", "count")])
def test_check_selector_names_the_failed_check(defect: str, check: str) -> None:
    with pytest.raises(SelectorCheckError, match=f"^{check}:"):
        check_selector(_Broken(defect))


def test_check_selector_needs_a_select_method() -> None:
    with pytest.raises(SelectorCheckError, match="^protocol:"):
        check_selector(object())


# --- a single sharp peak ----------------------------------------------------------------------

@pytest.mark.parametrize("seed", [0, 7, 99])
def test_topn_clusters_on_a_sharp_peak(seed: int) -> None:
    picks = build_selector("topn").select(sharp_peak(), None, 5, _g(seed))
    assert _picks(picks)[0] == (12, 20)
    assert set(_picks(picks)) == {(12, 20), (11, 20), (13, 20), (12, 19), (12, 21)}
    assert _distances(picks).max() <= 2.0


@pytest.mark.parametrize("r", [3, 6.5, 10])
def test_spread_keeps_r_between_clicks_on_a_sharp_peak(r: float) -> None:
    picks = build_selector("spread", r=r).select(sharp_peak(), None, 5, _g(0))
    assert len(picks) == 5 and _picks(picks)[0] == (12, 20)
    assert _distances(picks).min() >= r
    assert _distances(picks).min() < r + 1.5  # greedy: each click as close to the peak as allowed


def test_spread_clicks_are_the_best_of_what_the_radius_leaves() -> None:
    scores = sharp_peak()
    picks = build_selector("spread", r=6).select(scores, None, 5, _g(0))
    for j in range(1, 5):  # no pixel that was eligible at step j scores above pick j
        yy, xx = torch.meshgrid(torch.arange(32), torch.arange(32), indexing="ij")
        eligible = torch.ones(32, 32, dtype=torch.bool)
        for y, x in picks[:j].tolist():
            eligible &= (yy - y) ** 2 + (xx - x) ** 2 >= 36
        assert scores[tuple(picks[j])] == scores[eligible].max()


@pytest.mark.parametrize("seed", range(5))
def test_pixelpick_stays_inside_the_top_q_on_a_sharp_peak(seed: int) -> None:
    scores = sharp_peak()
    labelled = torch.zeros(32, 32, dtype=torch.bool)
    labelled[12, 20] = True  # the peak itself is labelled: 1023 unlabelled, pool ceil(51.15) = 52
    picks = build_selector("pixelpick", q=0.05).select(scores, labelled, 5, _g(seed))
    threshold = torch.sort(scores[~labelled], descending=True).values[51]
    assert len(picks) == 5
    assert bool((scores[picks[:, 0], picks[:, 1]] >= threshold).all())


def test_pixelpick_spreads_over_its_pool_across_seeds() -> None:
    scores = sharp_peak()
    seen = set()
    for seed in range(50):
        seen |= set(_picks(build_selector("pixelpick").select(scores, None, 5, _g(seed))))
    # pool: the 52 best of 1024, the last 3 drawn from a ring of 8 tied pixels (57 in all)
    assert 40 <= len(seen) <= 57


def test_pixelpick_returns_its_clicks_in_rank_order() -> None:
    scores = sharp_peak()
    for seed in range(10):
        picks = build_selector("pixelpick", q=0.2).select(scores, None, 8, _g(seed))
        values = scores[picks[:, 0], picks[:, 1]]
        assert bool((values[:-1] >= values[1:]).all())


# --- ties ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("name", BUILTIN)
def test_ties_are_broken_by_the_generator_not_memory_order(name: str) -> None:
    selector = build_selector(name)
    firsts = {_picks(selector.select(torch.zeros(8, 8), None, 1, _g(s)))[0] for s in range(100)}
    assert len(firsts) > 30


@pytest.mark.parametrize("name", ["pixelpick", "spread"])
def test_a_tied_last_place_is_drawn_uniformly(name: str) -> None:
    """One best pixel, nine tied zeros far enough apart: the second click is uniform."""
    scores = torch.zeros(2, 5)
    scores[0, 0] = 1.0
    selector = build_selector(name, **({"r": 1} if name == "spread" else {"q": 1.0}))
    counts = torch.zeros(2, 5)
    for seed in range(900):
        picks = selector.select(scores, None, 2, _g(seed))
        assert name == "pixelpick" or _picks(picks)[0] == (0, 0)
        for y, x in _picks(picks):
            if (y, x) != (0, 0):
                counts[y, x] += 1
    zeros = counts.reshape(-1)[1:]
    assert zeros.min() > 0.6 * zeros.mean() and zeros.max() < 1.4 * zeros.mean()


def test_pixelpick_pool_ties_at_the_cut_are_drawn() -> None:
    scores = torch.zeros(10, 10)
    scores[0, 0] = 1.0  # pool of 5 = the peak + 4 of the 99 tied zeros
    seen = set()
    for seed in range(40):
        seen |= set(_picks(build_selector("pixelpick").select(scores, None, 5, _g(seed))))
    assert (0, 0) in seen and len(seen) > 50


# --- small images: the spread fallback --------------------------------------------------------

def test_spread_halves_the_radius_when_the_image_runs_out() -> None:
    row = torch.tensor([[7.0, 6.0, 5.0, 4.0, 3.0, 2.0, 1.0]])
    # r = 4: x=0, then x=4; none left -> r = 2: x=2 (2 from both)
    assert _picks(build_selector("spread", r=4).select(row, None, 3, _g(0))) \
        == [(0, 0), (0, 4), (0, 2)]
    # r = 3 on five pixels: x=0, x=3; r = 1.5 leaves nothing; then plain top-n: 1, 2, 4
    assert _picks(build_selector("spread", r=3).select(row[:, :5], None, 5, _g(0))) \
        == [(0, 0), (0, 3), (0, 1), (0, 2), (0, 4)]


@pytest.mark.parametrize("shape, n", [((3, 3), 5), ((1, 4), 4), ((2, 2), 9), ((1, 1), 2)])
@pytest.mark.parametrize("seed", [0, 42])
def test_spread_fills_an_image_too_small_for_its_radius(shape, n: int, seed: int) -> None:
    scores = score_map(shape, seed=seed)
    picks = build_selector("spread", r=50).select(scores, None, n, _g(seed))
    k = min(n, shape[0] * shape[1])
    assert len(picks) == k and len(set(_picks(picks))) == k
    assert _picks(picks)[0] == _picks(select_top_n(scores, None, 1, _g(seed)))[0]


def test_shrink_radius_steps_down_to_zero() -> None:
    steps = [8.0]
    while steps[-1] > 0:
        steps.append(shrink_radius(steps[-1]))
    assert steps == [8.0, 4.0, 2.0, 0.0]  # 2 / 2 = 1 excludes nothing but the pick itself
    assert shrink_radius(3.0) == 1.5 and shrink_radius(0.0) == 0.0


def test_spread_with_radius_zero_or_one_is_topn() -> None:
    for seed, r in itertools.product(range(5), [0, 0.5, 1]):
        scores = score_map((9, 11), seed=seed, levels=4, dtype=torch.float64)
        labelled = torch.rand(9, 11, generator=_g(seed + 1)) < 0.3
        assert torch.equal(build_selector("spread", r=r).select(scores, labelled, 7, _g(seed)),
                           select_top_n(scores, labelled, 7, _g(seed)))


def test_spread_on_a_large_image_keeps_its_radius() -> None:
    scores = score_map((256, 512), seed=3)
    picks = build_selector("spread", r=40).select(scores, None, 10, _g(3))
    assert len(picks) == 10 and _distances(picks).min() >= 40


# --- labelled pixels, reproducibility, topn ---------------------------------------------------

@pytest.mark.parametrize("name", BUILTIN)
@pytest.mark.parametrize("seed", [0, 5, 99])
def test_labelled_pixels_are_never_selected_again(name: str, seed: int) -> None:
    scores = sharp_peak()
    labelled = scores > 0.5  # the whole top of the peak is labelled
    labelled |= torch.rand(32, 32, generator=_g(seed)) < 0.5
    picks = build_selector(name).select(scores, labelled, 10, _g(seed))
    assert len(picks) == 10 and not labelled[picks[:, 0], picks[:, 1]].any()


@pytest.mark.parametrize("name", BUILTIN)
def test_seeded_generator_makes_selection_reproducible(name: str) -> None:
    scores = score_map((16, 16), seed=1, levels=3)
    runs = [build_selector(name).select(scores, None, 6, _g(seed)) for seed in (4, 4, 5)]
    assert torch.equal(runs[0], runs[1])
    assert not torch.equal(runs[0], runs[2])  # three score levels: many ties to break


@pytest.mark.parametrize("seed", range(10))
def test_topn_is_select_top_n_bit_for_bit(seed: int) -> None:
    g = _g(seed + 100)
    scores = torch.randint(0, 6, (9, 11), generator=g).double()  # many ties
    scores[0, :3] = float("nan")
    labelled = torch.rand(9, 11, generator=g) < 0.3
    for n in (0, 1, 5, 17, 200):
        assert torch.equal(build_selector("topn").select(scores, labelled, n, _g(seed)),
                           select_top_n(scores, labelled, n, _g(seed)))


# --- parameters ----------------------------------------------------------------------------------

@pytest.mark.parametrize("q", [0, -0.1, 1.5, float("nan"), "0.05", True])
def test_pixelpick_rejects_a_bad_share(q) -> None:
    with pytest.raises(ValueError, match=r"pixelpick: q .* \(0, 1\]"):
        build_selector("pixelpick", q=q)


@pytest.mark.parametrize("r", [-1, float("inf"), float("nan"), "8"])
def test_spread_rejects_a_bad_radius(r) -> None:
    with pytest.raises(ValueError, match="spread: r .* >= 0"):
        build_selector("spread", r=r)


def test_defaults() -> None:
    assert build_selector("pixelpick").q == 0.05
    assert build_selector("spread").r == 8.0


@pytest.mark.parametrize("q, unlabelled, n, size", [(0.05, 1000, 5, 50), (0.07, 100, 5, 7),
                                                    (0.05, 1023, 5, 52), (0.05, 20, 5, 5),
                                                    (0.05, 3, 5, 3), (1.0, 40, 5, 40)])
def test_pixelpick_pool_size(q: float, unlabelled: int, n: int, size: int) -> None:
    assert top_share_size(q, unlabelled, n) == size
    assert math.ceil(0.07 * 100) == 8  # why the product is rounded first
