"""The strategies that use features and the pool context (coreset, badge, class_balanced), what they
receive (PixelFeatures, PoolContext), and check_strategy on strategies that declare those."""
from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from strategies import PixelFeatures, PixelPosterior, PoolContext, build_strategy, for_cycle, per_image_call
from strategies.class_weights import class_balanced_weights
from strategies.diversity.candidates import candidate_pixels
from strategies.diversity.k_center import greedy_k_center
from strategies.pixel_features import interpolation_matrix
from strategies.testing import (
    StrategyCheckError,
    check_choice_contract,
    check_choice_degenerates_last,
    check_choice_determinism,
    check_choice_fresh_cycle,
    check_strategy,
    mc_samples,
)
from strategies.testing_context import synthetic_features

# --- what a strategy receives ---------------------------------------------------------------


@pytest.mark.parametrize("align_corners", [False, True])
@pytest.mark.parametrize("size", [(6, 7), (13, 5), (4, 4)])
def test_pixel_features_are_the_bilinearly_resized_map(size, align_corners) -> None:
    feature_map = torch.randn(3, 4, 3, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    features = PixelFeatures.resized(feature_map, size, align_corners)
    resized = F.interpolate(feature_map[None], size=size, mode="bilinear", align_corners=align_corners)[0]
    torch.testing.assert_close(features.full(), resized, rtol=1e-12, atol=1e-12)
    flat = torch.tensor([0, 5, size[0] * size[1] - 1, size[1] + 1])
    expected = resized.reshape(3, -1)[:, flat].T
    torch.testing.assert_close(features.at(flat), expected, rtol=1e-12, atol=1e-12)


def test_interpolation_matrix_rows_are_weights_summing_to_one() -> None:
    matrix = interpolation_matrix(5, 12)
    assert matrix.shape == (12, 5) and bool((matrix >= 0).all())
    torch.testing.assert_close(matrix.sum(1), torch.ones(12, dtype=torch.float64))
    assert torch.equal(interpolation_matrix(4, 4), torch.eye(4, dtype=torch.float64))


def test_pool_context_counts_only_answered_class_labels() -> None:
    pool = PoolContext.from_labels(torch.tensor([0, 2, 2, 255, -1, 7]), 4, images=3)
    assert pool.class_counts.tolist() == [1, 0, 2, 0] and pool.num_classes == 4
    assert pool.labelled_features is None


def test_a_plain_strategy_gets_no_extra_argument() -> None:
    entropy = build_strategy("entropy")
    assert per_image_call(entropy, synthetic_features((3, 3))) == {}
    assert for_cycle(entropy, None) is entropy


# --- class_balanced ---------------------------------------------------------------------------


def test_class_balanced_weights_are_the_inverse_effective_number() -> None:
    counts, beta = torch.tensor([0, 1, 10, 400, 5000]), 0.999
    effective = [(1 - beta ** (n + 1)) / (1 - beta) for n in counts.tolist()]  # Cui et al., E(n + 1)
    raw = [1 / e for e in effective]
    expected = torch.tensor([w * len(raw) / sum(raw) for w in raw], dtype=torch.float64)
    weights = class_balanced_weights(counts, beta)
    torch.testing.assert_close(weights, expected, rtol=1e-12, atol=0)
    assert math.isclose(float(weights.mean()), 1.0)
    assert weights.tolist() == sorted(weights.tolist(), reverse=True)  # rarer class, larger weight
    assert torch.equal(class_balanced_weights(torch.tensor([3, 3, 3])), torch.ones(3, dtype=torch.float64))
    with pytest.raises(ValueError, match="beta"):
        class_balanced_weights(counts, 1.0)


def test_class_balanced_score_is_entropy_times_the_expected_class_weight() -> None:
    post = PixelPosterior.from_samples(mc_samples())
    strategy = build_strategy("class_balanced")
    torch.testing.assert_close(strategy.score(post), post.predictive_entropy.double())  # no labels: H
    pool = PoolContext.from_labels(torch.tensor([0, 0, 0, 1, 2, 2, 3, 3, 3, 3]), 5, images=1)
    scores = strategy.begin_cycle(pool).score(post)
    w = class_balanced_weights(pool.class_counts)
    mean = post.mean.double()
    for y, x in [(0, 0), (3, 4), (5, 6)]:
        expected = float(post.predictive_entropy[y, x]) * sum(float(w[c] * mean[c, y, x]) for c in range(5))
        assert math.isclose(float(scores[y, x]), expected, rel_tol=1e-12)


def test_class_balanced_prefers_the_unlabelled_class_at_equal_entropy() -> None:
    # two pixels with the same entropy, one leaning to class 0 (labelled a lot), one to class 2 (never)
    probs = torch.tensor([[0.6, 0.1], [0.3, 0.3], [0.1, 0.6]], dtype=torch.float64).reshape(1, 3, 1, 2)
    post = PixelPosterior.from_samples(probs)
    pool = PoolContext.from_labels(torch.tensor([0] * 50 + [1] * 5), 3, images=1)
    scores = build_strategy("class_balanced").begin_cycle(pool).score(post)
    assert float(scores[0, 1]) > float(scores[0, 0])


# --- coreset and badge ------------------------------------------------------------------------


def image(seed: int = 0, size=(6, 7)):
    post = PixelPosterior.from_samples(mc_samples(shape=(5, *size), seed=seed))
    return post, synthetic_features(size, seed=seed)


def test_coreset_takes_greedy_k_center_against_the_labelled_set_then_its_own_picks() -> None:
    labelled = torch.randn(6, 4, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    cycle = build_strategy("coreset", candidates=20).begin_cycle(PoolContext(torch.zeros(5, dtype=torch.long), 2, labelled))
    excluded = torch.zeros(6, 7, dtype=torch.bool)
    centres = labelled.tolist()
    for seed in (0, 1):  # image 2 is chosen against the labelled set and image 1's picks
        post, features = image(seed)
        picks = cycle.choose(post, excluded, 5, torch.Generator().manual_seed(seed), features=features)
        pool = candidate_pixels(excluded, 20, torch.Generator().manual_seed(seed))
        x = features.at(pool)
        d2 = torch.tensor([min(float(((p - torch.tensor(c)) ** 2).sum()) for c in centres) for p in x])
        expected = pool[greedy_k_center(x, 5, d2)]
        assert (picks[:, 0] * 7 + picks[:, 1]).tolist() == expected.tolist()
        centres += features.at(expected).tolist()


def test_badge_and_coreset_depend_on_the_images_before_in_the_cycle() -> None:
    excluded = torch.zeros(6, 7, dtype=torch.bool)
    pool = PoolContext(torch.zeros(5, dtype=torch.long), 2, torch.randn(4, 4, dtype=torch.float64))
    first, second = image(0), image(1)

    def choose(cycle, post_and_features):
        post, features = post_and_features
        return cycle.choose(post, excluded, 5, torch.Generator().manual_seed(3), features=features)

    for name in ("coreset", "badge"):
        strategy = build_strategy(name)
        alone = choose(strategy.begin_cycle(pool), second)
        cycle = strategy.begin_cycle(pool)
        choose(cycle, first)
        assert not torch.equal(alone, choose(cycle, second)), name


@pytest.mark.parametrize("name", ["coreset", "badge"])
def test_a_bad_candidate_count_is_refused(name: str) -> None:
    with pytest.raises(ValueError, match="candidates"):
        build_strategy(name, candidates=0)


# --- check_strategy on strategies that declare more than score ------------------------------


@pytest.mark.parametrize("name", ["coreset", "badge"])
def test_diversity_strategies_pass_check_strategy_but_do_not_rank_by_uncertainty(name: str) -> None:
    check_strategy(build_strategy(name), degenerates_last=False)
    with pytest.raises(StrategyCheckError, match="degenerates last"):
        check_choice_degenerates_last(build_strategy(name))


class Chooser:
    """A choosing strategy with a deliberate fault (``fault``), else correct: top entropy."""

    chooses_clicks = True
    needs_features = True

    def __init__(self, fault: str = "") -> None:
        self.fault, self.memory = fault, []

    def begin_cycle(self, pool):
        return self if self.fault == "leaks" else Chooser(self.fault)

    def choose(self, post, excluded, n, generator=None, features=None):
        assert isinstance(features, PixelFeatures) and features.size == tuple(post.score_shape)
        h = post.predictive_entropy.clone().reshape(-1)
        h[excluded.reshape(-1)] = float("-inf") if self.fault != "excluded" else h.max() + 1
        if self.fault == "global":
            h += torch.rand(h.shape)
        if self.fault == "leaks":
            h[self.memory] = float("-inf")
        k = min(n, int((~excluded).sum()))
        flat = torch.topk(h, k).indices
        self.memory += flat.tolist()
        return torch.stack((flat // post.score_shape[1], flat % post.score_shape[1]), 1)


def test_check_strategy_passes_a_correct_chooser_and_catches_broken_ones() -> None:
    check_strategy(Chooser())
    with pytest.raises(StrategyCheckError, match="labelled"):
        check_choice_contract(Chooser("excluded"))
    with pytest.raises(StrategyCheckError, match="global RNG|same generator seed"):
        check_choice_determinism(Chooser("global"))
    with pytest.raises(StrategyCheckError, match="fresh cycle"):
        check_choice_fresh_cycle(Chooser("leaks"))


def test_check_strategy_gives_a_pool_aware_scorer_its_context_and_features() -> None:
    seen = []

    class NeedsBoth:
        needs_features = True

        def begin_cycle(self, pool):
            seen.append(pool)
            return self

        def score(self, post, generator=None, features=None):
            assert features is not None and features.size == tuple(post.score_shape)
            return post.predictive_entropy.clone()

    check_strategy(NeedsBoth())
    assert seen and all(isinstance(pool, PoolContext) for pool in seen)
