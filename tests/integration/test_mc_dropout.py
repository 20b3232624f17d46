"""Last-layer MC dropout (features cached, m classifier passes) against m full mmseg forward passes
under the same dropout masks, on the real tiny mmseg models."""
from contextlib import contextmanager

import pytest
import torch
import torch.nn.functional as F

import benchmark.model.mc_dropout as mc
from benchmark.config.modes import MC_DROPOUT_MASKS
from benchmark.config.seeds import derive_seed
from benchmark.cycle.acquisition import acquire
from benchmark.data.label_store import LabelStore
from benchmark.model.logit_resize import upsample_bilinear
from benchmark.model.softmax_stats import SoftmaxStatistics
from benchmark.perf.fixtures import RandomPool, acquisition_spec, load_model
from strategies import PosteriorAccumulator, build_selector, build_strategy
from strategies.uncertainty import decomposition

pytestmark = pytest.mark.integration

MODELS = ("deeplabv3plus_tiny", "fpn_tiny")
FIELDS = ("mean", "variance", "predictive_entropy", "expected_entropy")
CLASSES = 5


@pytest.fixture(scope="module", params=MODELS)
def model(request):
    """An untrained tiny model whose classifier is rescaled so that its logits spread by ~3:
    as initialised, every prediction is nearly uniform and every variance nearly 0."""
    model = load_model(request.param, CLASSES, "cpu", seed=3).eval()
    with torch.no_grad():
        inputs = model.data_preprocessor(make_batch(), False)["inputs"]
        spread = float(mc.features_before_classifier(model, inputs).std())
        weight = model.decode_head.conv_seg.weight
        weight.copy_(torch.randn(weight.shape, generator=torch.Generator().manual_seed(0)))
        weight.mul_(3.0 / (spread * weight.shape[1] ** 0.5))
    return model


def make_batch(height=70, width=100, n=2, **meta):
    """Images whose size is no multiple of 32 (so the batch is padded), with extra metainfo."""
    batch = RandomPool(n, height, width, seed=7).batch(range(n))
    for sample in batch["data_samples"]:
        sample.set_metainfo(meta)
    return batch


@pytest.fixture(params=MC_DROPOUT_MASKS)
def fixed_masks(request, monkeypatch, model):
    """Every dropout mask comes from one fixed cycle of four (p = 0.5, channel- or element-wise),
    whichever path asks for it; the head trains and samples with that mask kind."""
    kind = request.param
    drawn = []

    def next_mask(feat, p, generators, mask="channel"):
        assert mask == kind
        g = torch.Generator().manual_seed(11 + len(drawn) % 4)
        shape = feat.shape[:2] + ((1, 1) if kind == "channel" else tuple(feat.shape[2:]))
        drawn.append((torch.rand(shape, generator=g) >= 0.5).to(feat.dtype) * 2.0)
        return drawn[-1]

    monkeypatch.setattr(mc, "dropout_masks", next_mask)
    with head_dropout_set(model, 0.5, kind):
        yield drawn


@contextmanager
def head_dropout_set(model, rate, kind):
    """The head's dropout layer swapped for the run's (pytest's monkeypatch would delete a
    submodule on undo: nn.Module keeps them outside the instance __dict__)."""
    original = model.decode_head.dropout
    model.decode_head.dropout = mc.dropout_layer(rate, kind)
    try:
        yield
    finally:
        model.decode_head.dropout = original


def run(model, batch, full_network, m=4, **kwargs):
    return mc.mc_posteriors(model, batch, m, torch.Generator().manual_seed(0),
                            full_network=full_network, **kwargs)


def assert_same_statistics(fast, slow, atol=2e-6):
    assert len(fast) == len(slow)
    for a, b in zip(fast, slow):
        assert a.m == b.m
        for field in FIELDS:
            x, y = getattr(a, field), getattr(b, field)
            assert x.shape == y.shape, field
            torch.testing.assert_close(x, y, atol=atol, rtol=1e-4, msg=field)


def test_fast_path_matches_full_network_under_fixed_masks(model, fixed_masks):
    batch = make_batch()
    fast = run(model, batch, full_network=False)
    assert len(fixed_masks) == 4
    slow = run(model, batch, full_network=True)
    assert len(fixed_masks) == 8
    assert_same_statistics(fast, slow)
    assert fast[0].mean.shape == (CLASSES, 70, 100)  # padding cropped: the original size
    assert float(fast[0].variance.max()) > 1e-6  # the masks really differ between samples


def test_original_size_differs_from_input_and_flip(model, fixed_masks):
    """A test-time Resize (ori_shape != img_shape) and a horizontal flip, as mmseg undoes them."""
    batch = make_batch(ori_shape=(50, 75), flip=True, flip_direction="horizontal")
    assert_same_statistics(run(model, batch, False), run(model, batch, True))
    assert run(model, batch, False)[0].mean.shape == (CLASSES, 50, 75)


def test_same_seed_draws_the_same_masks_in_both_paths(model, monkeypatch):
    drawn = {False: [], True: []}
    original = mc.dropout_masks
    for full in (False, True):
        def record(feat, p, generator, kind="channel", full=full):
            mask = original(feat, p, generator, kind)
            drawn[full].append(mask.clone())
            return mask

        monkeypatch.setattr(mc, "dropout_masks", record)
        run(model, make_batch(), full_network=full, m=3)
    assert len(drawn[False]) == len(drawn[True]) == 3
    for a, b in zip(drawn[False], drawn[True]):
        assert torch.equal(a, b)


@pytest.mark.parametrize("kind", MC_DROPOUT_MASKS)
def test_seeded_masks_give_the_same_statistics(model, kind):
    with head_dropout_set(model, 0.3, kind):
        assert_same_statistics(run(model, make_batch(), False, m=3), run(model, make_batch(), True, m=3))


def test_element_masks_differ_between_pixels_of_a_channel_and_channel_masks_do_not():
    feat = torch.ones(2, 6, 5, 7)
    element = mc.dropout_masks(feat, 0.5, torch.Generator().manual_seed(0), "element")
    channel = mc.dropout_masks(feat, 0.5, torch.Generator().manual_seed(0), "channel")
    assert element.shape == feat.shape and channel.shape == (2, 6, 1, 1)
    assert all(element[b, c].unique().numel() == 2 for b in range(2) for c in range(6))  # kept and dropped
    assert set(element.unique().tolist()) == set(channel.unique().tolist()) == {0.0, 2.0}  # scaled by 1/(1-p)


def test_each_image_draws_its_masks_from_its_own_generator():
    feat = torch.ones(2, 4, 3, 3)
    pair = mc.dropout_masks(feat, 0.5, [torch.Generator().manual_seed(1), torch.Generator().manual_seed(2)],
                            "element")
    alone = mc.dropout_masks(feat[1:], 0.5, [torch.Generator().manual_seed(2)], "element")
    assert torch.equal(pair[1:], alone)  # image 1's masks do not depend on image 0 being in the batch


@pytest.mark.parametrize("rate, kind, layer", [(0.5, "element", torch.nn.Dropout), (0.3, "channel", torch.nn.Dropout2d)])
def test_the_training_head_uses_the_runs_rate_and_mask(rate, kind, layer):
    from dataclasses import replace

    from benchmark.config.presets import PRESET_DIR, load_preset
    from benchmark.model.training import fresh_model

    class Data:
        classes = tuple("abcde")

    spec = replace(acquisition_spec("cpu", mc_samples=2, batch_size=1), mc_dropout_rate=rate, mc_dropout_mask=kind)
    preset = load_preset(PRESET_DIR / "synthetic_fpn.py")
    head = fresh_model(spec, preset, Data()).decode_head
    assert type(head.dropout) is layer and head.dropout.p == rate
    assert mc.head_dropout(head) == (rate, kind)


def test_without_dropout_the_mean_is_mmsegs_own_prediction(model, monkeypatch):
    monkeypatch.setattr(mc, "dropout_masks", lambda feat, p, g, kind="channel": torch.ones(feat.shape[:2] + (1, 1)))
    batch = make_batch()
    posts = run(model, batch, full_network=False, m=3)
    model.eval()
    with torch.no_grad():
        data = model.data_preprocessor(batch, False)
        results = model.predict(data["inputs"], data["data_samples"])
    for post, result in zip(posts, results):
        expected = torch.softmax(result.seg_logits.data, dim=0)
        torch.testing.assert_close(post.mean, expected, atol=2e-6, rtol=1e-5)
        assert float(post.variance.abs().max()) < 1e-10
        torch.testing.assert_close(post.expected_entropy, post.predictive_entropy, atol=2e-6, rtol=1e-5)


def test_keep_samples_returns_every_sample(model):
    posts = run(model, make_batch(), full_network=False, m=3, keep_samples=True)
    assert posts[0].samples.shape == (3, CLASSES, 70, 100)
    torch.testing.assert_close(posts[0].samples.mean(0), posts[0].mean, atol=1e-6, rtol=1e-5)
    assert run(model, make_batch(), full_network=False, m=3)[0].samples is None


def test_acquire_picks_unlabelled_pixels_and_averages_over_them(model):
    pool = RandomPool(3, 40, 48, seed=2)
    store = LabelStore(pool.shapes)
    labelled = {i: torch.tensor([[0, 0], [5, 7]]).numpy() for i in range(3)}
    store.add(0, labelled, {i: torch.tensor([1, 2]).numpy() for i in range(3)})
    spec = acquisition_spec("cpu", mc_samples=3, batch_size=2, pixels_per_image=4, seed=5)
    result = acquire(model, pool, store, build_strategy("entropy"), build_selector("topn"), spec, cycle=1)
    assert sorted(result.picks) == [0, 1, 2]
    for picks in result.picks.values():
        assert picks.shape == (4, 2)
        assert not {(0, 0), (5, 7)} & {tuple(p) for p in picks.tolist()}
    assert set(result.stage_seconds) == {"scoring", "selection", "record"}
    # the recorded decomposition is the mean over unlabelled pixels of the same posteriors
    total, count, first = 0.0, 0, 0
    for batch in pool.pool_loader(2):
        ids = range(first, first + len(batch["data_samples"]))
        first += len(ids)
        masks = [torch.Generator().manual_seed(derive_seed(5, 1, "masks", i)) for i in ids]  # one per image
        for post in mc.mc_posteriors(model, batch, 3, masks):
            value = decomposition(post)["epistemic"].double()
            total += float(value.sum() - value[0, 0] - value[5, 7])
            count += value.numel() - 2
    assert result.uncertainty["epistemic"] == pytest.approx(total / count, rel=1e-9)


@pytest.mark.parametrize("factor", [(1, 1), (2, 2), (4, 4), (8, 4), (4, 16)])
def test_separable_upsample_equals_interpolate(factor):
    x = torch.randn(2, 7, 24, 20, generator=torch.Generator().manual_seed(0)) * 5
    size = (24 * factor[0], 20 * factor[1])
    expected = F.interpolate(x, size=size, mode="bilinear", align_corners=False)
    torch.testing.assert_close(upsample_bilinear(x, size, False), expected, atol=1e-5, rtol=1e-6)


@pytest.mark.parametrize("size, align", [((50, 45), False), ((72, 60), False), ((48, 40), True)])
def test_upsample_falls_back_to_interpolate(size, align):
    x = torch.randn(1, 3, 24, 20)
    expected = F.interpolate(x, size=size, mode="bilinear", align_corners=align)
    assert torch.equal(upsample_bilinear(x, size, align), expected)


@pytest.mark.parametrize("scale", [1.0, 30.0, 200.0])
def test_softmax_statistics_equal_posterior_accumulator(scale):
    g = torch.Generator().manual_seed(4)
    logits = torch.randn(6, 2, 5, 9, 8, generator=g) * scale  # [m, B, C, H, W]
    stats, reference = SoftmaxStatistics(), [PosteriorAccumulator() for _ in range(2)]
    for z in logits:
        for acc, one in zip(reference, z):
            acc.add(torch.softmax(one, dim=0))
        stats.add_logits(z.clone())
    assert_same_statistics(stats.finalize(), [acc.finalize() for acc in reference], atol=1e-5)


def test_softmax_statistics_finalize_twice_is_safe():
    g = torch.Generator().manual_seed(5)
    stats = SoftmaxStatistics()
    for z in torch.randn(4, 1, 3, 4, 4, generator=g):
        stats.add_logits(z.clone())
    first = [p.variance.clone() for p in stats.finalize()]
    second = stats.finalize()
    assert all(torch.equal(a, b.variance) for a, b in zip(first, second))
    with pytest.raises(RuntimeError, match="finalized"):
        stats.add_logits(torch.zeros(1, 3, 4, 4))


def test_void_pixels_are_passed_over_when_the_run_skips_them(model):
    pool = RandomPool(2, 40, 48, seed=2)
    store = LabelStore(pool.shapes)
    spec = acquisition_spec("cpu", mc_samples=3, batch_size=2, pixels_per_image=6, seed=5)
    random, topn = build_strategy("random"), build_selector("topn")
    spent = acquire(model, pool, store, random, topn, spec, cycle=1)
    assert any((picks[:, 1] < 24).any() for picks in spent.picks.values())  # random clicks the left half too
    left_void = lambda image_id: (torch.arange(48)[None, :] < 24).expand(40, 48)  # noqa: E731
    skipped = acquire(model, pool, store, random, topn, spec, cycle=1, void_mask=left_void)
    assert all(len(picks) == 6 and (picks[:, 1] >= 24).all() for picks in skipped.picks.values())


def test_selections_do_not_depend_on_how_the_pool_is_batched(model):
    pool = RandomPool(3, 40, 48, seed=4)
    store = LabelStore(pool.shapes)
    picks = {}
    for batch_size in (1, 3):
        spec = acquisition_spec("cpu", mc_samples=3, batch_size=batch_size, pixels_per_image=5, seed=2)
        picks[batch_size] = acquire(model, pool, store, build_strategy("pbald"), build_selector("topn"),
                                    spec, cycle=1).picks
    assert all((picks[1][i] == picks[3][i]).all() for i in range(3))


def test_each_strategy_draws_its_own_random_numbers():
    from dataclasses import replace

    from benchmark.cycle.acquisition import selection_generator

    spec = acquisition_spec("cpu", mc_samples=2, batch_size=1)

    def draws(strategy, image_id=0, selection="topn"):
        g = selection_generator(replace(spec, strategy=strategy, selection=selection), 1, image_id)
        return torch.rand(8, generator=g)

    assert torch.equal(draws("random"), draws("random"))  # reproducible
    assert not torch.equal(draws("random"), draws("pbald"))  # random and pbald no longer share uniforms
    assert not torch.equal(draws("random"), draws("random", image_id=1))
    assert not torch.equal(draws("random"), draws("random", selection="spread"))
