"""Features and the pool context through the real mmseg models: each pixel's feature vector is the
classifier input mmseg's resize gives it, the pool context holds the labelled pixels' vectors, and
one acquisition of coreset, badge and class_balanced picks n valid clicks per image. Strategies
that declare none of it take the path they took before (no feature kept, no pool pass)."""
import numpy as np
import pytest
import torch

import benchmark.cycle.acquisition as acquisition
import benchmark.model.mc_dropout as mc
from benchmark.cycle.pool_context import pool_context
from benchmark.data.label_store import LabelStore, seed_random_pixels
from benchmark.model.logit_resize import output_groups, padded_size, to_original, upsample_bilinear
from benchmark.perf.fixtures import RandomPool, acquisition_spec, load_model
from strategies import PixelFeatures, build_selector, build_strategy

pytestmark = pytest.mark.integration

CLASSES = 5


@pytest.fixture(scope="module", params=("deeplabv3plus_tiny", "fpn_tiny"))
def model(request):
    return load_model(request.param, CLASSES, "cpu", seed=3).eval()


def padded_batch(**meta):
    """Two 70x100 images (padded to a multiple of 32 in the batch), with extra metainfo."""
    batch = RandomPool(2, 70, 100, seed=7).batch(range(2))
    for sample in batch["data_samples"]:
        sample.set_metainfo(meta)
    return batch


@pytest.mark.parametrize("meta", [{}, dict(ori_shape=(50, 75), flip=True, flip_direction="horizontal"),
                                  dict(flip=True, flip_direction="vertical")])
@torch.no_grad()
def test_each_pixels_features_are_the_classifier_input_mmsegs_resize_gives_it(model, meta):
    batch = padded_batch(**meta)
    data = model.data_preprocessor(batch, False)
    inputs, metas = data["inputs"], [s.metainfo for s in data["data_samples"]]
    feat = mc.features_before_classifier(model, inputs)
    head = model.decode_head
    (indices, key), = output_groups(metas)
    resized = to_original(upsample_bilinear(feat, padded_size(metas, inputs), head.align_corners), key,
                          head.align_corners)  # [B, d, H, W]: the feature map as mmseg resizes logits
    posteriors, features = mc.mc_posteriors(model, batch, 2, torch.Generator().manual_seed(0), keep_features=True)
    for b, image in enumerate(features):
        assert isinstance(image, PixelFeatures) and image.size == tuple(posteriors[b].score_shape)
        height, width = image.size
        torch.testing.assert_close(image.full(), resized[b], rtol=1e-4, atol=1e-5)
        flat = torch.tensor([0, width + 3, height * width - 1])
        torch.testing.assert_close(image.at(flat), resized[b].reshape(feat.shape[1], -1)[:, flat].T,
                                   rtol=1e-4, atol=1e-5)
    # the classifier on a pixel's features gives that pixel's logits (classifier and resize are linear)
    logits = to_original(upsample_bilinear(head.conv_seg(feat), padded_size(metas, inputs), head.align_corners),
                         key, head.align_corners)
    vectors = features[0].at(torch.arange(features[0].size[0] * features[0].size[1]))  # [H W, d]
    weight = head.conv_seg.weight.reshape(CLASSES, -1)
    ours = (vectors @ weight.T + head.conv_seg.bias).T.reshape(logits.shape[1:])
    torch.testing.assert_close(ours, logits[0], rtol=1e-4, atol=1e-4)


def test_keeping_features_leaves_the_posteriors_as_they_were(model):
    batch = padded_batch()
    plain = mc.mc_posteriors(model, batch, 3, torch.Generator().manual_seed(1))
    kept, features = mc.mc_posteriors(model, batch, 3, torch.Generator().manual_seed(1), keep_features=True)
    for a, b in zip(plain, kept):
        assert torch.equal(a.mean, b.mean) and torch.equal(a.variance, b.variance)
    for a, b in zip(features, mc.batch_features(model, batch)):
        assert torch.equal(a.map, b.map) and torch.equal(a.rows, b.rows) and torch.equal(a.cols, b.cols)


def labelled_pool(n_images=3, clicks=4, seed=0):
    pool = RandomPool(n_images, 40, 48, seed=4)
    picks = seed_random_pixels(pool.shapes, clicks, torch.Generator().manual_seed(seed))
    labels = {i: np.array([0, 1, 1, 255][:clicks]) for i in picks}
    return pool, LabelStore(pool.shapes).with_clicks(0, picks, labels)


def test_the_pool_context_holds_every_labelled_pixels_features_and_the_class_counts(model):
    pool, store = labelled_pool()
    batches = acquisition.pool_batches(pool, 2, False)
    context = pool_context(model, batches, store, "cpu", with_features=True)
    assert context.class_counts.tolist() == [3, 6, 0, 0, 0] and context.images == 3  # void not counted
    expected = []
    for image_id in range(3):
        features = mc.batch_features(model, pool.batch([image_id]))[0]
        points = store.points(image_id)
        expected.append(features.at(torch.as_tensor(points["y"].to_numpy() * 48 + points["x"].to_numpy())))
    torch.testing.assert_close(context.labelled_features, torch.cat(expected))
    without = pool_context(model, acquisition.pool_batches(pool, 2, False), store, "cpu", with_features=False)
    assert without.labelled_features is None


@pytest.mark.parametrize("name", ["coreset", "badge", "class_balanced"])
def test_one_acquisition_picks_n_unlabelled_pixels_per_image_whatever_the_batching(model, name):
    pool, store = labelled_pool()
    picks = {}
    for batch_size in (1, 3):
        spec = acquisition_spec("cpu", mc_samples=3, batch_size=batch_size, pixels_per_image=5, seed=2)
        result = acquisition.acquire(model, pool, store, build_strategy(name), build_selector("topn"), spec, cycle=1)
        picks[batch_size] = result.picks
        assert result.uncertainty and result.inference_seconds > 0
    for image_id, chosen in picks[1].items():
        assert chosen.shape == (5, 2) and len({tuple(p) for p in chosen}) == 5
        assert not store.labelled_mask(image_id)[chosen[:, 0], chosen[:, 1]].any()
        assert (chosen == picks[3][image_id]).all()


def test_a_strategy_that_declares_nothing_keeps_no_features_and_builds_no_pool_context(model, monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("a plain strategy paid for features or a pool context")

    monkeypatch.setattr(mc, "image_features", refuse)
    monkeypatch.setattr(acquisition, "pool_context", refuse)
    pool, store = labelled_pool()
    spec = acquisition_spec("cpu", mc_samples=2, batch_size=3, pixels_per_image=5, seed=2)
    result = acquisition.acquire(model, pool, store, build_strategy("entropy"), build_selector("topn"), spec, cycle=1)
    assert all(len(p) == 5 for p in result.picks.values())
    with pytest.raises(AssertionError, match="paid for"):
        acquisition.acquire(model, pool, store, build_strategy("class_balanced"), build_selector("topn"), spec, 1)
