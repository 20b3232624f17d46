"""Uncertainty maps of a few fixed validation images per cycle, for the figures.

For each of the first ``spec.map_images`` validation images: the image, its ground truth, the
prediction, and for every strategy named in ``spec.map_strategies`` its score map, the rank of
each pixel in that strategy's acquisition order and the pixels it would pick. The names are saved
with the arrays, so the figures read which strategies were mapped from the files themselves.

Scores are saved as float32 (float16 would overflow BalEnt's 1/BalEnt to inf); -inf marks pixels
a strategy ranks last (degenerate or saturated). ``ranks`` is always finite: 1 = acquired first,
0 = last, ties share their average rank.
"""
from __future__ import annotations

import numpy as np
import torch
from scipy.stats import rankdata

from benchmark.config.seeds import cpu_generator
from benchmark.model.mc_dropout import mc_posteriors
from strategies import build_strategy, select_top_n


def acquisition_ranks(scores: np.ndarray) -> np.ndarray:
    """Ranks in [0, 1] (1 = acquired first) of a score map in acquisition order: NaN and -inf last."""
    flat = np.asarray(scores, dtype=np.float64).reshape(-1)
    key = np.where(np.isnan(flat), -np.inf, flat)
    ranks = rankdata(key, method="average")
    return ((ranks - 1) / max(flat.size - 1, 1)).astype(np.float32).reshape(np.shape(scores))


def uncertainty_maps(model, data, spec, cycle: int) -> list[dict]:
    """One entry (a dict of arrays, as saved) per mapped validation image."""
    if spec.map_images <= 0:
        return []
    names = list(spec.map_strategies)
    strategies = [build_strategy(name) for name in names]
    masks = cpu_generator(spec.seed, cycle, "maps")
    maps, image_id = [], 0
    for batch in data.val_loader(spec.batch_size, limit=spec.map_images):
        for post, sample in zip(mc_posteriors(model, batch, spec.mc_samples, masks), batch["data_samples"]):
            empty = torch.zeros(post.score_shape, dtype=torch.bool, device=post.device)
            scores, ranks, picks = [], [], []
            for name, strategy in zip(names, strategies):
                select = cpu_generator(spec.seed, cycle, name)
                score = strategy.score(post, generator=select)
                picks.append(select_top_n(score, empty, spec.pixels_per_image, select).cpu().numpy())
                scores.append(score.float().cpu().numpy())
                ranks.append(acquisition_ranks(scores[-1]))
            height, width = post.score_shape
            maps.append(dict(
                image_id=image_id, image=data.load_rgb(sample.img_path), strategy=spec.strategy,
                gt=sample.gt_sem_seg.data[0].cpu().numpy().astype(np.uint8),
                pred=post.mean.argmax(dim=-3).cpu().numpy().astype(np.uint8),
                map_strategies=np.array(names, dtype=str),
                scores=np.stack(scores).astype(np.float32) if names else np.zeros((0, height, width), np.float32),
                ranks=np.stack(ranks) if names else np.zeros((0, height, width), np.float32),
                picks=np.stack(picks).astype(np.int32) if names else np.zeros((0, 0, 2), np.int32),
                classes=np.array(data.classes), palette=np.array(data.spec.palette, dtype=np.uint8)))
            image_id += 1
    return maps
