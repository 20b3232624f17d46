"""The pool context of one cycle, for a strategy that has ``begin_cycle`` (``strategies.protocol``):
the labelled set of the whole pool as this cycle's model sees it.

Always: the labelled pixels per class (from the label store; void and unanswered clicks not
counted). For a strategy that declares ``needs_labelled_features``, also each labelled pixel's
feature vector, read in one feature pass over the pool (a backbone + decoder pass per image, no
MC sample, one batch at a time) and kept as one ``[L, d]`` tensor on the run's device: L is the
number of labelled pixels of the pool (the initial clicks plus n per image per cycle so far), so
it grows with the labelled set, not with the pool's pixels. Nothing else is kept across images.
"""
from __future__ import annotations

from typing import Iterable

import torch

from benchmark.data.label_store import LabelStore
from benchmark.model.mc_dropout import batch_features
from benchmark.model.pixel_features import num_classes
from strategies import PoolContext


def labelled_features(model, batches: Iterable, store: LabelStore, device) -> torch.Tensor:
    """``[L, d]``: the feature vector of every labelled pixel, images in pool order, each image's
    pixels in the store's order. ``batches`` yields (image ids, batch) over the whole pool."""
    frame = store.frame
    clicks = {int(i): grp for i, grp in frame.groupby("image_id")}
    parts = []
    for image_ids, batch in batches:
        for image_id, features in zip(image_ids, batch_features(model, batch)):
            points = clicks.get(int(image_id))
            if points is None or len(points) == 0:
                continue
            flat = torch.as_tensor(points["y"].to_numpy() * features.size[1] + points["x"].to_numpy())
            parts.append(features.at(flat.to(features.device)))
    if not parts:
        return torch.empty(0, 0, device=device)
    return torch.cat(parts).to(device)


def pool_context(model, batches: Iterable, store: LabelStore, device, with_features: bool) -> PoolContext:
    """The ``PoolContext`` of the labelled set ``store`` (features read only ``with_features``)."""
    labels = torch.tensor(store.frame["label"].to_numpy())
    features = labelled_features(model, batches, store, device) if with_features else None
    return PoolContext.from_labels(labels, num_classes(model), len(store.shapes), features)
