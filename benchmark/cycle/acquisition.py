"""One cycle's acquisition over the training pool: MC inference -> scores -> per-image clicks, and
the uncertainty record of the pool (the decomposition columns of cycles.csv).

Every random stream is keyed by image: image i's dropout masks by (seed, cycle, "masks", i), its
strategy noise and selection by (seed, cycle, "select", strategy, selection, i). So an image's
clicks depend neither on the batch it is in, nor on which process handles it, and two strategies
never share their random numbers. The generators are CPU generators whatever ``spec.device``
(``benchmark.config.seeds``): the numbers are drawn on the host and moved, so the clicks of a seed
are the same on a CPU and on a GPU given the same scores. Everything else stays on ``spec.device``,
streaming one batch of images at a time: only the picked coordinates and the record's sums come
back to the host.

With several ranks for one run (``--gpus-per-run``), rank r handles images r, r + G, r + 2G, ...;
the clicks and one record per image are gathered to every rank, and the images' records are
folded in pool order: the clicks and the record equal a single process's, whatever G.

What a strategy declares (``strategies.protocol``), and nothing else about it, changes the pass:
``needs_features`` keeps each image's classifier input for its call; ``begin_cycle`` builds the
cycle's pool context first (``pool_context.py``; with ``needs_labelled_features`` a feature pass
over the pool) and hands this cycle's images to the object it returns, in pool order on every rank
(its choice for an image may depend on the images before it); ``chooses_clicks`` takes each
image's clicks from its ``choose`` instead of a selector over its scores.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Callable

import torch

from benchmark.config.seeds import cpu_generator
from benchmark.cycle.pool_context import pool_context
from benchmark.cycle.pool_record import PoolRecord
from benchmark.model.mc_dropout import mc_posteriors
from benchmark.runtime import distributed
from benchmark.runtime.timing import stage, synchronize
from strategies import (
    chooses_clicks,
    for_cycle,
    needs_features,
    needs_labelled_features,
    needs_samples,
    per_image_call,
    pool_aware,
)


@dataclass
class Acquisition:
    picks: dict = field(default_factory=dict)          # image_id -> int array [k, 2] of (y, x)
    uncertainty: dict = field(default_factory=dict)    # the pool record (means over unlabelled pixels)
    inference_seconds: float = 0.0
    stage_seconds: dict = field(default_factory=dict)  # scoring, selection, record

    @property
    def acquisition_seconds(self) -> float:
        """Scoring + selection + uncertainty record."""
        return sum(self.stage_seconds.values())


def selection_generator(spec, cycle: int, image_id: int) -> torch.Generator:
    """The random stream of one image's scoring noise and selection (see the module docstring)."""
    return cpu_generator(spec.seed, cycle, "select", spec.strategy, spec.selection, image_id)


def mask_generator(spec, cycle: int, image_id: int) -> torch.Generator:
    """The random stream of one image's MC-dropout masks (shared by every strategy of a seed)."""
    return cpu_generator(spec.seed, cycle, "masks", image_id)


def record_generator(spec, cycle: int, image_id: int) -> torch.Generator:
    """The random stream of the pixels one image's uncertainty record samples."""
    return cpu_generator(spec.seed, cycle, "record", image_id)


def pool_batches(data, batch_size: int, ranks: bool):
    """(image ids, batch) over the pool in order; with ranks, over this rank's share only."""
    if ranks:
        loader = data.pool_loader(batch_size, distributed.my_share(len(data.shapes)))
        yield from zip(loader.batch_sampler, loader)
        return
    first = 0
    for batch in data.pool_loader(batch_size):
        yield range(first, first + len(batch["data_samples"])), batch
        first += len(batch["data_samples"])


def acquire(model, data, store, strategy, selector, spec, cycle: int,
            void_mask: Callable[[int], torch.Tensor] | None = None, region_selection=None) -> Acquisition:
    """MC inference over the pool, scores, per-image clicks, the pool's uncertainty record.

    ``void_mask(image_id)`` (bool [H, W]), when given, marks pixels the selection passes over at
    no cost (``--void-clicks skip``); labelled pixels are always passed over.
    ``region_selection(image_id, selector, scores, excluded, n, generator)``, when given, picks
    whole regions instead (``--unit superpixel``: benchmark.cycle.query_units); the picks are then
    the regions' pixels.
    """
    device = spec.device
    keep, features = needs_samples(strategy), needs_features(strategy)
    out, record = Acquisition(), PoolRecord(spec.record_pixels)
    stages = dict(scoring=0.0, selection=0.0, record=0.0)
    # each rank scores its share of the images (module docstring); a pool-aware strategy sees them all
    ranks = distributed.world_size() > 1 and not pool_aware(strategy)
    handler = strategy
    if pool_aware(strategy):
        start = time.perf_counter()
        pool = pool_context(model, pool_batches(data, spec.batch_size, False), store, device,
                            needs_labelled_features(strategy))
        synchronize(device)
        out.inference_seconds += time.perf_counter() - start
        with stage(stages, "scoring", device):
            handler = for_cycle(strategy, pool)
    per_image = {}
    for image_ids, batch in pool_batches(data, spec.batch_size, ranks):
        start = time.perf_counter()
        masks = [mask_generator(spec, cycle, i) for i in image_ids]
        posteriors = mc_posteriors(model, batch, spec.mc_samples, masks, keep_samples=keep, keep_features=features)
        posteriors, maps = posteriors if features else (posteriors, [None] * len(posteriors))
        synchronize(device)
        out.inference_seconds += time.perf_counter() - start
        for image_id, post, feature_map in zip(image_ids, posteriors, maps):
            labelled = store.labelled_mask(image_id, device)
            excluded = labelled if void_mask is None else labelled | void_mask(image_id).to(device)
            select = selection_generator(spec, cycle, image_id)
            extra = per_image_call(strategy, feature_map)
            n = spec.queries_per_image
            if chooses_clicks(strategy):  # the strategy's own choice: its time counts as scoring
                with stage(stages, "scoring", device):
                    picks = handler.choose(post, excluded, n, generator=select, **extra)
                    out.picks[image_id] = picks.cpu().numpy()
            else:
                with stage(stages, "scoring", device):
                    scores = handler.score(post, generator=select, **extra)
                with stage(stages, "selection", device):
                    picks = (selector.select(scores, excluded, n, select) if region_selection is None else
                             region_selection(image_id, selector, scores, excluded, n, select))
                    out.picks[image_id] = picks.cpu().numpy()
            with stage(stages, "record", device):
                target = PoolRecord(spec.record_pixels) if ranks else record
                target.add(post, ~labelled, record_generator(spec, cycle, image_id))
                if ranks:
                    per_image[image_id] = target.to("cpu")
        # drop this batch's statistics before the next batch's are computed: otherwise two
        # batches are alive at once and the peak depends on how the pool divides into batches
        posteriors = maps = post = feature_map = scores = None
    if ranks:  # every rank gets every image's clicks; the record folds the images in pool order
        out.picks = distributed.gather_dict(out.picks)
        for part in distributed.gather_dict(per_image).values():
            record.absorb(part)
    out.uncertainty = record.result()
    out.stage_seconds = stages
    return out
