"""Streaming posterior statistics against a direct float64 computation on [m, C, H, W]."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from strategies import PixelPosterior, PosteriorAccumulator
from tests.test_strategies.conftest import softmax_samples


def _direct(probs: np.ndarray) -> dict[str, np.ndarray]:
    """The four statistics from the full stack, float64, class axis -3, sample axis 0."""
    probs = probs.astype(np.float64)
    mean = probs.mean(0)
    with np.errstate(divide="ignore", invalid="ignore"):
        plogp = np.where(probs > 0, probs * np.log(probs), 0.0)
        mlogm = np.where(mean > 0, mean * np.log(mean), 0.0)
    return dict(mean=mean, variance=probs.var(0, ddof=1), predictive_entropy=-mlogm.sum(-3),
                expected_entropy=-plogp.sum(-3).mean(0))


@pytest.mark.parametrize("dtype,tol", [(torch.float64, 1e-12), (torch.float32, 2e-6)])
@pytest.mark.parametrize("shape", [(4, 5, 6), (3, 4, 5, 6)])
def test_streaming_matches_direct_float64(dtype: torch.dtype, tol: float,
                                          shape: tuple[int, ...]) -> None:
    probs = softmax_samples(12, shape, seed=1, dtype=dtype)
    acc = PosteriorAccumulator()
    for sample in probs:
        acc.add(sample)
    post = acc.finalize()
    for name, ref in _direct(probs.numpy()).items():
        ours = getattr(post, name)
        assert ours.dtype == dtype
        np.testing.assert_allclose(ours.double().numpy(), ref, rtol=tol, atol=tol, err_msg=name)
    assert post.m == 12 and post.score_shape == shape[:-3] + shape[-2:]


def test_variance_survives_cancellation() -> None:
    """Probabilities ~0.999999 with spread ~1e-7: sum(p^2) - sum(p)^2 / m would lose it all."""
    g = torch.Generator().manual_seed(0)
    top = 0.999999 + 1e-7 * torch.rand(50, 1, 3, 3, generator=g, dtype=torch.float64)
    probs = torch.cat([top, 1.0 - top], dim=1)  # [50, 2, 3, 3]
    ref = probs.numpy().var(0, ddof=1)  # numpy's two-pass variance
    post = PixelPosterior.from_samples(probs)
    np.testing.assert_allclose(post.variance.numpy(), ref, rtol=1e-6)


def test_float32_variance_is_relatively_accurate() -> None:
    probs = softmax_samples(40, (5, 8, 8), seed=2, spread=0.05, scale=4.0, dtype=torch.float32)
    post = PixelPosterior.from_samples(probs)
    ref = probs.double().numpy().var(0, ddof=1)
    np.testing.assert_allclose(post.variance.double().numpy(), ref, rtol=1e-4, atol=1e-12)


def test_single_sample_has_zero_variance() -> None:
    probs = softmax_samples(1, (3, 2, 2), seed=0)
    post = PixelPosterior.from_samples(probs)
    assert post.m == 1 and bool((post.variance == 0).all())
    torch.testing.assert_close(post.predictive_entropy, post.expected_entropy)


def test_finalize_leaves_accumulator_usable() -> None:
    probs = softmax_samples(6, (3, 2, 2), seed=0)
    acc = PosteriorAccumulator()
    for sample in probs[:3]:
        acc.add(sample)
    early = acc.finalize()
    early_mean = early.mean.clone()
    for sample in probs[3:]:
        acc.add(sample)
    torch.testing.assert_close(early.mean, early_mean)  # not aliased to the running state
    torch.testing.assert_close(acc.finalize().mean, probs.mean(0))


def test_keep_samples() -> None:
    probs = softmax_samples(4, (3, 2, 2), seed=0)
    assert PixelPosterior.from_samples(probs).samples is None
    kept = PixelPosterior.from_samples(probs, keep_samples=True).samples
    torch.testing.assert_close(kept, probs)


def test_half_precision_accumulates_in_float32() -> None:
    post = PixelPosterior.from_samples(softmax_samples(3, (3, 2, 2), 0, dtype=torch.float16))
    assert post.dtype == torch.float32


def test_dtype_override() -> None:
    probs = softmax_samples(3, (3, 2, 2), seed=0, dtype=torch.float32)
    assert PixelPosterior.from_samples(probs, dtype=torch.float64).dtype == torch.float64


def test_errors() -> None:
    acc = PosteriorAccumulator()
    with pytest.raises(ValueError, match="no sample"):
        acc.finalize()
    acc.add(torch.full((3, 2, 2), 1 / 3))
    with pytest.raises(ValueError, match="differs"):
        acc.add(torch.full((3, 2, 3), 1 / 3))
    with pytest.raises(TypeError, match="floating"):
        PosteriorAccumulator().add(torch.ones(3, 2, 2, dtype=torch.long))
    with pytest.raises(ValueError):
        PixelPosterior.from_samples(torch.ones(3, 2, 2))
