"""The label store, the oracle and the selection bookkeeping."""
import numpy as np
import pandas as pd
import pytest
import torch

from benchmark.data.label_store import (
    IGNORE_INDEX,
    PENDING,
    GroundTruthOracle,
    ImageShape,
    LabelStore,
    PendingOracle,
    seed_random_pixels,
)

SHAPES = {0: ImageShape(4, 5), 1: ImageShape(3, 3)}


def gt_of(image_id):
    shape = SHAPES[image_id]
    return (np.arange(shape.pixels).reshape(shape.height, shape.width) % 7).astype(np.uint8)


def training_label_map(store, image_id):
    """The label map training sees for ``image_id``: the store's clicks through ``click_items`` and
    the ``LoadSparseLabels`` transform, as the training loader runs them (None: image left out)."""
    from benchmark.data.run_data import LoadSparseLabels, click_items

    shape = SHAPES[image_id]
    pool = [dict(img_path=f"{i}.png", ori_shape=(SHAPES[i].height, SHAPES[i].width)) for i in sorted(SHAPES)]
    items = {item["img_path"]: item for item in click_items(pool, store)}
    item = items.get(f"{image_id}.png")
    if item is None:
        return None
    out = LoadSparseLabels().transform(dict(item))["gt_seg_map"]
    assert out.shape == (shape.height, shape.width)
    return out


def test_seed_random_pixels_distinct_in_range_and_reproducible():
    a = seed_random_pixels(SHAPES, 6, torch.Generator().manual_seed(3))
    b = seed_random_pixels(SHAPES, 6, torch.Generator().manual_seed(3))
    c = seed_random_pixels(SHAPES, 6, torch.Generator().manual_seed(4))
    for image_id, shape in SHAPES.items():
        yx = a[image_id]
        assert len({tuple(p) for p in yx}) == 6
        assert (yx[:, 0] < shape.height).all() and (yx[:, 1] < shape.width).all()
        np.testing.assert_array_equal(yx, b[image_id])
    assert any((a[i] != c[i]).any() for i in SHAPES)


def test_oracle_reveals_ground_truth_at_the_clicked_pixels():
    picks = {0: np.array([[0, 0], [3, 4]]), 1: np.array([[2, 1]])}
    labels = GroundTruthOracle(gt_of).answer(picks)
    assert labels[0].tolist() == [gt_of(0)[0, 0], gt_of(0)[3, 4]]
    assert labels[1].tolist() == [gt_of(1)[2, 1]]


def test_store_masks_maps_and_counts():
    store = LabelStore(SHAPES)
    store.add(0, {0: np.array([[1, 2]]), 1: np.array([[0, 0]])}, {0: np.array([3]), 1: np.array([IGNORE_INDEX])})
    store.add(1, {0: np.array([[2, 2]])}, {0: np.array([5])})
    assert store.labeled_pixels == 3
    assert store.total_pixels == 29
    mask = store.labelled_mask(0)
    assert mask.dtype == torch.bool and mask.sum() == 2 and mask[1, 2] and mask[2, 2]
    sparse = training_label_map(store, 0)
    assert sparse[1, 2] == 3 and sparse[2, 2] == 5 and (sparse == IGNORE_INDEX).sum() == 18
    # an ignore-label click costs budget but gives no training signal
    assert (training_label_map(store, 1) == IGNORE_INDEX).all()
    assert store.up_to_cycle(0).labeled_pixels == 2


def test_store_refuses_a_pixel_labelled_twice():
    store = LabelStore(SHAPES)
    store.add(0, {0: np.array([[1, 2]])}, {0: np.array([3])})
    with pytest.raises(ValueError, match="labelled twice"):
        store.add(1, {0: np.array([[1, 2]])}, {0: np.array([4])})


def test_store_round_trips_through_its_table():
    store = LabelStore(SHAPES)
    store.add(0, {0: np.array([[1, 2], [0, 1]])}, {0: np.array([3, 1])})
    again = LabelStore.from_frame(SHAPES, pd.read_csv(pd.io.common.StringIO(store.frame.to_csv(index=False))))
    pd.testing.assert_frame_equal(again.frame, store.frame)


def test_pending_clicks_are_not_training_labels():
    store = LabelStore(SHAPES)
    picks = {0: np.array([[1, 1]])}
    store.add(1, picks, PendingOracle().answer(picks))
    assert store.pending.shape[0] == 1 and store.pending.iloc[0]["label"] == PENDING
    assert training_label_map(store, 0) is None  # an unanswered click never reaches training
