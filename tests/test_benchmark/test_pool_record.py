"""The pool's uncertainty record: exact over every unlabelled pixel, or estimated from a per-image
sample; BalEnt's regime shares; sharing the posterior term a strategy already computed."""
import numpy as np
import pytest
import torch

from benchmark.cycle.pool_record import RECORD_COLUMNS, PoolRecord, weighted_median
from strategies import PixelPosterior, build_strategy
from strategies.testing import mc_samples
from strategies.uncertainty import POSITIVE, balent_regime, decomposition, top_class_std


def posterior(seed=0, shape=(5, 24, 32), spread=1.5):
    return PixelPosterior.from_samples(mc_samples(10, shape, seed=seed, spread=spread, dtype=torch.float32))


def test_exact_record_is_the_mean_over_unlabelled_pixels():
    post, unlabelled = posterior(), torch.ones(24, 32, dtype=torch.bool)
    unlabelled[:3, :5] = False
    record = PoolRecord(0)
    record.add(post, unlabelled)
    out = record.result()
    assert list(out) == list(RECORD_COLUMNS)
    for name, value in decomposition(post).items():
        assert out[name] == pytest.approx(float(value.double()[unlabelled].mean()), rel=1e-9)
    regime = balent_regime(post)[unlabelled]
    assert out["balent_positive_share"] == pytest.approx(float((regime == POSITIVE).double().mean()))
    shares = out["balent_positive_share"] + out["balent_negative_share"] + out["balent_degenerate_share"]
    assert shares == pytest.approx(1.0)
    assert out["top_class_std_median"] == pytest.approx(float(top_class_std(post)[unlabelled].double().median()),
                                                        rel=1e-6)


def test_sampled_record_estimates_the_exact_one_within_its_noise():
    posts = [posterior(seed) for seed in range(6)]
    everything = torch.ones(24, 32, dtype=torch.bool)
    exact, sampled = PoolRecord(0), PoolRecord(128)
    for i, post in enumerate(posts):
        exact.add(post, everything)
        sampled.add(post, everything, torch.Generator().manual_seed(i))
    a, b = exact.result(), sampled.result()
    values = torch.cat([decomposition(p)["epistemic"].reshape(-1) for p in posts]).double()
    noise = 4 * float(values.std()) / (6 * 128) ** 0.5
    assert abs(a["epistemic"] - b["epistemic"]) < noise
    assert b["epistemic"] != a["epistemic"]  # it did sample


def test_sampled_record_gathers_the_posterior_term_the_strategy_computed(monkeypatch):
    post = posterior()
    build_strategy("balent").score(post)  # computes and caches S for every pixel
    from strategies.balent import kernel

    def no_second_computation(*args, **kwargs):
        raise AssertionError("the posterior term was computed again")

    monkeypatch.setattr(kernel, "posterior_term_and_scores", no_second_computation)
    record = PoolRecord(64)
    record.add(post, torch.ones(24, 32, dtype=torch.bool), torch.Generator().manual_seed(0))
    assert np.isfinite(record.result()["posterior"])


def test_take_gathers_the_statistics_and_the_derived_parts():
    post = posterior()
    s = build_strategy("balent").score(post)
    index = torch.tensor([0, 5, 40, 767])
    part = post.take(index)
    assert part.mean.shape == (5, 1, 4) and part.predictive_entropy.shape == (1, 4)
    torch.testing.assert_close(part.mean[:, 0, 2], post.mean.reshape(5, -1)[:, 40])
    torch.testing.assert_close(build_strategy("balent").score(part).reshape(-1), s.reshape(-1)[index])


def test_weighted_median():
    assert weighted_median(np.array([3.0, 1.0, 2.0]), np.ones(3)) == 2.0
    assert weighted_median(np.array([1.0, 2.0]), np.array([1.0, 3.0])) == 2.0
    assert np.isnan(weighted_median(np.array([]), np.array([])))
