"""``balent_regime`` codes on constructed posteriors, and ``top_class_std``."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from strategies import PixelPosterior, build_strategy
from strategies.uncertainty import (
    DEGENERATE,
    NEGATIVE,
    POSITIVE,
    REGIME_NAMES,
    SATURATED,
    balanced_entropy,
    balent_regime,
    top_class_std,
)
from tests.test_strategies.conftest import softmax_samples

C, M = 6, 20


def _pixel_samples() -> dict[str, torch.Tensor]:
    """[M, C] float32 samples of one pixel per regime, by name."""
    g = torch.Generator().manual_seed(0)

    def softmax(logits: torch.Tensor) -> torch.Tensor:
        return torch.softmax(logits, dim=1).to(torch.float32)

    confident = 0.05 * torch.randn(M, C, generator=g, dtype=torch.float64)
    confident[:, 0] += 10.0  # q ~ 2e-4: a valid, concentrated fit, S + H < 0
    saturated = 0.1 * torch.randn(M, C, generator=g, dtype=torch.float64)
    saturated[:, 2] += 30.0  # the top class's float32 mean is exactly 1
    votes = torch.arange(M) % 2  # one-hot samples that disagree: every fit at the Beta's limit
    return {
        "positive": softmax(1.5 * torch.randn(M, C, generator=g, dtype=torch.float64)),
        "negative": softmax(confident),
        "saturated": softmax(saturated),
        "degenerate": torch.nn.functional.one_hot(votes, C).to(torch.float32),
    }


def _posterior() -> tuple[PixelPosterior, list[str]]:
    pixels = _pixel_samples()
    probs = torch.stack(list(pixels.values()), dim=-1)[:, :, None, :]  # [M, C, 1, 4]
    return PixelPosterior.from_samples(probs), list(pixels)


def test_each_code_on_its_constructed_pixel() -> None:
    post, names = _posterior()
    regime = balent_regime(post)
    assert regime.dtype == torch.int8 and regime.shape == (1, len(names))
    assert [REGIME_NAMES[code] for code in regime[0].tolist()] == names
    assert (POSITIVE, NEGATIVE, SATURATED, DEGENERATE) == tuple(range(4))


def test_codes_agree_with_balent_and_degenerate_takes_precedence_over_the_sign() -> None:
    post, names = _posterior()
    regime, balent = balent_regime(post)[0], balanced_entropy(post)[0]
    assert balent[names.index("positive")] > 0 and balent[names.index("negative")] < 0
    assert balent[names.index("saturated")] == float("-inf")
    assert balent[names.index("degenerate")] > 0  # positive BalEnt, but no fit behind it
    assert regime[names.index("degenerate")] == DEGENERATE


def test_floored_variant_has_its_own_regime() -> None:
    post, names = _posterior()
    # the 1e-32 floor drops the confident pixel's concentrated class: S ~ 0, BalEnt > 0
    assert balent_regime(post, floored=True)[0, names.index("negative")] == POSITIVE
    assert balent_regime(post, floored=True)[0, names.index("saturated")] == SATURATED


def test_regime_shares_on_a_batch_follow_the_balent_scores() -> None:
    post = PixelPosterior.from_samples(softmax_samples(20, (2, 5, 8, 9), seed=4, spread=0.3,
                                                       scale=4.0, dtype=torch.float32))
    regime = balent_regime(post)
    scores = build_strategy("balent").score(post)
    fitted = regime != DEGENERATE
    assert bool(((regime == POSITIVE) == (scores > 0))[fitted].all())
    assert bool(((regime == NEGATIVE) == (scores < 0) & torch.isfinite(scores))[fitted].all())
    assert int((regime == NEGATIVE).sum()) > 0 and int((regime == POSITIVE).sum()) > 0


def test_regime_reuses_the_posterior_term_of_the_strategy(monkeypatch) -> None:
    from strategies.balent import kernel

    post, _ = _posterior()
    build_strategy("balent").score(post)
    monkeypatch.setattr(kernel, "posterior_term_and_scores",
                        lambda *a, **k: pytest.fail("the posterior term was computed again"))
    balent_regime(post)
    with pytest.raises(pytest.fail.Exception):
        balent_regime(post, floored=True)  # not computed yet for the floored variant


def test_top_class_std_matches_the_samples() -> None:
    probs = softmax_samples(12, (5, 3, 4), seed=6, spread=0.8, dtype=torch.float64)
    post = PixelPosterior.from_samples(probs)
    p = probs.numpy()
    top = p.mean(0).argmax(0)  # [3, 4]
    expected = np.take_along_axis(p.std(0, ddof=1), top[None], 0)[0]
    np.testing.assert_allclose(top_class_std(post).numpy(), expected, rtol=1e-12)
    assert top_class_std(post).shape == post.score_shape


def test_top_class_std_of_a_one_hot_posterior_is_zero() -> None:
    post = PixelPosterior.from_samples(torch.eye(3)[None, :, :, None].expand(4, 3, 3, 2).clone())
    assert bool((top_class_std(post) == 0).all())
