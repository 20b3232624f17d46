"""The paper protocol whose GPU-hours ``perf --gpu-check`` estimates: the Cityscapes preset, its
protocol (strategies, seeds, cycles, iterations, split sizes) and the estimate's formula."""
from __future__ import annotations

from dataclasses import dataclass

PAPER_PRESET = "cityscapes_deeplabv3plus.py"
PAPER_DATASET = "cityscapes"
PAPER_MODEL = "deeplabv3plus_mobilenetv2"


@dataclass(frozen=True)
class Protocol:
    """The paper protocol the estimate is for: read from the preset, the registry and the dataset."""

    strategies: tuple[str, ...]
    seeds: int
    cycles: int
    iters: int
    pool: int
    val: int
    mc_samples: int


def paper_preset():
    from benchmark.config.presets import PRESET_DIR, load_preset

    return load_preset(PRESET_DIR / PAPER_PRESET)


def paper_protocol(preset=None) -> Protocol:
    """Every registered strategy x the Cityscapes preset's seeds, cycles, iterations and m, on the
    Cityscapes training pool and validation split."""
    from benchmark.data import get_dataset
    from strategies import STRATEGIES

    preset = preset or paper_preset()
    al, split = preset.active_learning, get_dataset(PAPER_DATASET).split_images
    return Protocol(strategies=tuple(STRATEGIES.names()), seeds=len(al.seeds), cycles=int(al.cycles),
                    iters=int(preset.schedule.iters), pool=int(split["train"]), val=int(split["val"]),
                    mc_samples=int(al.mc_samples))


def protocol_estimate(protocol: Protocol, train_its: float, forward_s: float, mc_s: float,
                      scoring_s: dict[str, float]) -> dict:
    """GPU-hours of ``protocol`` at the measured rates: training iterations/s, one forward pass per
    validation image (s), MC inference per pool image (s), each strategy's scoring per image (s).

    Per seed: cycle 0 is trained once and shared by every strategy, each strategy trains cycles
    1..C-1, and the supervised reference trains once: 2 + S(C-1) trainings, each followed by an
    evaluation of the validation split; every strategy's run makes an MC pass over the pool and
    scores it at each of its C cycles (the last cycle's picks are not labelled, but its pool
    record is kept, so it acquires too).
    """
    s, k, c = len(protocol.strategies), protocol.seeds, protocol.cycles
    trainings = k * (2 + s * (c - 1))
    scoring_per_image = sum(scoring_s[name] for name in protocol.strategies if name in scoring_s)
    untimed = [name for name in protocol.strategies if name not in scoring_s]  # choose their clicks: section 7b
    hours = dict(training=trainings * protocol.iters / train_its / 3600,
                 evaluation=trainings * protocol.val * forward_s / 3600,
                 mc_inference=k * s * c * protocol.pool * mc_s / 3600,
                 scoring=k * c * protocol.pool * scoring_per_image / 3600)
    formula = (f"K x [(2 + S(C-1)) x (I / r + V x e) + S x C x N x q + C x N x sum(sigma)] / 3600 with "
               f"K = {k} seeds, S = {s} strategies, C = {c} cycles, I = {protocol.iters} iterations, "
               f"N = {protocol.pool} pool images, V = {protocol.val} validation images, m = "
               f"{protocol.mc_samples}; r = {train_its:.3g} it/s, e = {forward_s:.3g} s, q = {mc_s:.3g} s, "
               f"sum(sigma) = {scoring_per_image:.3g} s per image"
               + (f" (not timed here, left out: {', '.join(untimed)}, which choose their clicks from features; "
                  f"`perf --sections 7` times them)" if untimed else ""))
    return dict(hours=hours, total_hours=sum(hours.values()), trainings=trainings, formula=formula)
