"""One cycle's acquisition over the training pool: MC inference -> scores -> per-image picks, and
the uncertainty record of the pool (the decomposition columns of cycles.csv).

Everything stays on ``spec.device``, streaming one batch of images at a time: only the picked
coordinates and, once at the end, the record's sums come back to the host.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field

import torch

from benchmark.mc_dropout import mc_posteriors
from benchmark.seeds import generator
from benchmark.timing import stage, synchronize
from strategies import needs_samples, select_top_n
from strategies.uncertainty import decomposition


@dataclass
class Acquisition:
    picks: dict = field(default_factory=dict)          # image_id -> int array [k, 2] of (y, x)
    uncertainty: dict = field(default_factory=dict)    # pool means over unlabelled pixels
    inference_seconds: float = 0.0
    stage_seconds: dict = field(default_factory=dict)  # scoring, selection, decomposition

    @property
    def acquisition_seconds(self) -> float:
        """Scoring + selection + uncertainty record."""
        return sum(self.stage_seconds.values())


def acquire(model, data, store, strategy, spec, cycle: int) -> Acquisition:
    """MC inference over the pool, scores, per-image top-n picks, uncertainty decomposition."""
    device = spec.device
    masks = generator(device, spec.seed, cycle, "masks")
    select = generator(device, spec.seed, cycle, "select")
    keep = needs_samples(strategy)
    out, sums, count, image_id = Acquisition(), {}, 0, 0
    stages = dict(scoring=0.0, selection=0.0, decomposition=0.0)
    for batch in data.pool_loader(spec.batch_size):
        start = time.perf_counter()
        posteriors = mc_posteriors(model, batch, spec.mc_samples, masks, keep_samples=keep)
        synchronize(device)
        out.inference_seconds += time.perf_counter() - start
        for post in posteriors:
            labelled = store.labelled_mask(image_id, device)
            with stage(stages, "scoring", device):
                scores = strategy.score(post, generator=select)
            with stage(stages, "selection", device):
                out.picks[image_id] = select_top_n(scores, labelled, spec.pixels_per_image, select).cpu().numpy()
            with stage(stages, "decomposition", device):
                for name, value in decomposition(post).items():  # summed over unlabelled pixels
                    total = torch.where(labelled, 0.0, value.double()).sum()
                    sums[name] = total if name not in sums else sums[name] + total
                count = count + (~labelled).sum()
            image_id += 1
        # drop this batch's statistics before the next batch's are computed: otherwise two
        # batches are alive at once and the peak depends on how the pool divides into batches
        posteriors = post = scores = None
    count = max(int(count), 1)
    out.uncertainty = {k: float(v) / count for k, v in sums.items()}
    out.stage_seconds = stages
    return out
