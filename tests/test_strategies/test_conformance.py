"""Every registered strategy passes check_strategy; property tests over random simplex inputs."""
from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from strategies import STRATEGIES, PixelPosterior, build_strategy, chooses_clicks, needs_features, select_top_n
from strategies.testing import (
    StrategyCheckError,
    check_degenerates_ranked_last,
    check_determinism,
    check_saturated_ranked_last,
    check_strategy,
)

NAMES = STRATEGIES.names()
# those that score a bare posterior (not the ones that need features or choose their clicks)
SCORING = [n for n in NAMES if not (chooses_clicks(STRATEGIES.get(n)) or needs_features(STRATEGIES.get(n)))]
STOCHASTIC = {"random", "pbald"}
NOT_BY_UNCERTAINTY = {"random", "coreset", "badge"}  # ignore the posterior, or choose for diversity
BUILTIN = ["bald", "balent", "balent_ref", "entropy", "margin", "pbald", "random"]


def test_builtins_are_registered() -> None:
    assert set(BUILTIN) <= set(NAMES)


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("seed", [0, 99])
def test_check_strategy(name: str, seed: int) -> None:
    check_strategy(build_strategy(name), seed=seed, degenerates_last=name not in NOT_BY_UNCERTAINTY)


def test_check_strategy_catches_a_broken_strategy() -> None:
    class GlobalRandom:
        def score(self, post, generator=None):
            return torch.rand(post.score_shape)  # the global RNG, on purpose

    with pytest.raises(StrategyCheckError, match="global RNG|same generator seed differ"):
        check_determinism(GlobalRandom())

    class WrongShape:
        def score(self, post, generator=None):
            return post.mean

    with pytest.raises(StrategyCheckError, match="shape"):
        check_strategy(WrongShape())


def test_check_strategy_catches_saturated_pixels_ranked_first() -> None:
    class InverseEntropy:  # one-hot pixels (H = 0) last, float32-saturated ones (H ~ 1e-8) first
        def score(self, post, generator=None):
            h = post.predictive_entropy.double()
            return torch.where(h > 0, 1 / h, float("-inf"))

    check_degenerates_ranked_last(InverseEntropy())  # the one-hot check alone misses it
    with pytest.raises(StrategyCheckError, match="saturated"):
        check_saturated_ranked_last(InverseEntropy())
    with pytest.raises(StrategyCheckError, match="saturated"):
        check_strategy(InverseEntropy())


@st.composite
def mc_probabilities(draw: st.DrawFn) -> torch.Tensor:
    """[m, C, H, W] float64 probabilities on the simplex, with exact zeros and one-hot rows."""
    m = draw(st.integers(1, 5))
    c = draw(st.integers(2, 4))
    h, w = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    weight = st.one_of(st.just(0.0), st.floats(1e-12, 1.0), st.just(1.0))
    raw = torch.tensor(draw(st.lists(weight, min_size=m * c * h * w, max_size=m * c * h * w)),
                       dtype=torch.float64).reshape(m, c, h, w)
    raw[:, 0] += (raw.sum(1) == 0).to(raw.dtype)  # an all-zero row becomes one-hot
    return raw / raw.sum(1, keepdim=True)


PROPERTY = settings(max_examples=30, deadline=None)


@PROPERTY
@given(probs=mc_probabilities(), seed=st.integers(0, 99))
def test_scores_have_shape_and_are_finite_or_degenerate(probs: torch.Tensor, seed: int) -> None:
    post = PixelPosterior.from_samples(probs)
    degenerate = post.predictive_entropy < 1e-6  # a one-hot mean: nothing to learn there
    for name in SCORING:
        scores = build_strategy(name).score(post, generator=torch.Generator().manual_seed(seed))
        assert scores.shape == probs.shape[-2:], name
        assert bool((torch.isfinite(scores) | degenerate).all()), name


@PROPERTY
@given(probs=mc_probabilities(), seed=st.integers(0, 99), data=st.data())
def test_scores_invariant_to_sample_order(probs: torch.Tensor, seed: int,
                                          data: st.DataObject) -> None:
    order = torch.tensor(data.draw(st.permutations(range(probs.shape[0]))))
    first = PixelPosterior.from_samples(probs)
    second = PixelPosterior.from_samples(probs[order])
    for name in SCORING:
        strategy = build_strategy(name)
        a = strategy.score(first, generator=torch.Generator().manual_seed(seed))
        b = strategy.score(second, generator=torch.Generator().manual_seed(seed))
        torch.testing.assert_close(a, b, rtol=1e-6, atol=1e-9, equal_nan=True, msg=name)


@PROPERTY
@given(probs=mc_probabilities(), seed=st.integers(0, 99))
def test_certain_pixel_never_selected_before_an_uncertain_one(probs: torch.Tensor,
                                                              seed: int) -> None:
    certain = torch.zeros_like(probs[..., :1])
    certain[:, 0] = 1.0  # one-hot in every sample
    post = PixelPosterior.from_samples(torch.cat([probs, certain], dim=-1))
    uncertain = post.predictive_entropy[:, :-1] > 1e-3  # [H, W-1]
    for name in sorted(set(SCORING) - STOCHASTIC):
        scores = build_strategy(name).score(post)
        for y, x in torch.nonzero(uncertain).tolist():
            if name == "bald" and scores[y, x] <= 1e-6:
                continue  # no epistemic uncertainty: BALD ties with the certain pixel's floor
            picks = select_top_n(scores[y:y + 1, [x, -1]], None, 1,
                                 torch.Generator().manual_seed(seed))
            assert picks.tolist() == [[0, 0]], (name, scores[y, x], scores[y, -1])


def test_strategies_package_never_draws_from_a_global_rng() -> None:
    import re
    from pathlib import Path

    import strategies

    pattern = re.compile(r"torch\.(rand|randn|randint|randperm|rand_like|randn_like|bernoulli|"
                         r"multinomial|normal|manual_seed|seed)\(|np\.random\.|\bimport random\b")
    offenders = []
    for path in Path(strategies.__file__).parent.rglob("*.py"):
        for number, line in enumerate(path.read_text().splitlines(), 1):
            code = line.split("#")[0]
            if pattern.search(code) and "generator=" not in code:
                offenders.append(f"{path.name}:{number}: {line.strip()}")
    assert not offenders, offenders
