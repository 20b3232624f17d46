"""BalEnt on the check's device: its pool throughput against BALD's at Cityscapes' size, and its
accuracy against a 40-digit evaluation (``perf --gpu-check``).

Throughput: posteriors of ``height x width`` pixels and C classes (means and variances of m
softmax samples, float32, as the harness makes them) on the device; per image the median time of
BALD's and BalEnt's ``score`` alone and of ``score`` + the ``topn`` selection (what the CPU's pool
throughput, ``perf --sections 2``, counts), each strategy on its own copy of the posterior (no
cached BalEnt term). BalEnt's kernel is settled first (``strategies.scoring_backend``: on a GPU it
compiles and checks the compiled kernel), so no compile falls into the timing.

Accuracy: confident, very uncertain, constant, near-degenerate and ordinary pixels (the groups
of the CPU kernel's accuracy test, tests/test_strategies/test_builtin_strategies.py), scored by
``balent`` on the device from float64 statistics, against BalEnt's acquisition value evaluated
with mpmath at 40 digits from the method (``perf/balent_reference.py``, independent of
``strategies/``; the CPU kernels' tests use the same reference and the same bound).
"""
from __future__ import annotations

import statistics
import time
from dataclasses import replace

import torch

from benchmark.perf.balent_reference import ACCURACY_BOUND, accuracy_samples, balent_acquisition_mpmath


def accuracy(device) -> dict:
    """``balent``'s scores on ``device`` against the 40-digit values: the worst relative error over
    the finite ones, whether the -inf pixels are the same, and the bound."""
    from strategies import PixelPosterior, build_strategy

    post = PixelPosterior.from_samples(accuracy_samples().to(device))
    ours = build_strategy("balent").score(post).cpu().double()
    mean, var = post.mean.cpu(), post.variance.cpu()
    ref = torch.tensor([[balent_acquisition_mpmath(mean[:, y, x].tolist(), var[:, y, x].tolist())
                         for x in range(mean.shape[2])] for y in range(mean.shape[1])], dtype=torch.float64)
    same_infinite = bool(torch.equal(torch.isfinite(ours), torch.isfinite(ref)))
    finite = torch.isfinite(ref) & torch.isfinite(ours)
    worst = float(((ours - ref).abs() / ref.abs())[finite].max()) if bool(finite.any()) else 0.0
    return dict(pixels=int(ref.numel()), worst_relative_error=worst, same_infinite=same_infinite,
                bound=ACCURACY_BOUND, within=bool(same_infinite and worst <= ACCURACY_BOUND))


def synthetic_posterior(classes: int, height: int, width: int, mc_samples: int, device, seed: int = 0):
    """A PixelPosterior of ``mc_samples`` softmax samples (float32 statistics, as the harness's)."""
    from benchmark.config.seeds import cpu_generator
    from strategies import PosteriorAccumulator

    # two draws on the CPU (the harness's rule: the same numbers on every device), moved to the
    # device; sample k's noise is the one noise field rolled by k columns, so that 1024x2048 does
    # not cost m CPU draws
    g = cpu_generator(seed)
    base = (3.0 * torch.randn(classes, height, width, generator=g)).to(device)
    noise = torch.randn(classes, height, width, generator=g).to(device)
    acc = PosteriorAccumulator()
    for k in range(mc_samples):
        acc.add(torch.softmax(base + torch.roll(noise, shifts=k * 7, dims=-1), dim=0))
    return acc.finalize()


def _timed(fn, device, repeats: int) -> float:
    from benchmark.runtime.timing import synchronize

    times = []
    for _ in range(repeats):
        synchronize(device)
        start = time.perf_counter()
        fn()
        synchronize(device)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def throughput(device, classes: int, height: int, width: int, mc_samples: int, repeats: int,
               pixels_per_image: int = 5) -> dict:
    """Seconds per image of BALD and BalEnt (score alone; score + topn selection) and the ratios
    of BalEnt's throughput to BALD's."""
    from strategies import build_selector, build_strategy, scoring_backend

    backend = scoring_backend(device)  # compiles and checks the GPU's kernel before any timing
    post = synthetic_posterior(classes, height, width, mc_samples, device)
    labelled = torch.zeros(height, width, dtype=torch.bool, device=device)
    selector = build_selector("topn")
    out: dict = dict(kernel=backend["balent_kernel"], kernel_why_torch=backend["balent_kernel_why_torch"],
                     size=[classes, height, width])
    for name in ("bald", "balent"):
        strategy = build_strategy(name)

        def score(strategy=strategy):
            return strategy.score(replace(post), generator=torch.Generator().manual_seed(0))

        def score_and_select(score=score):
            return selector.select(score(), labelled, n=pixels_per_image,
                                   generator=torch.Generator().manual_seed(0))

        score()  # warm-up (a first call's allocations, a GPU's lazy initialisation)
        out[name] = dict(score_seconds=_timed(score, device, repeats),
                         score_and_select_seconds=_timed(score_and_select, device, repeats))
    out["ratio_score"] = out["bald"]["score_seconds"] / out["balent"]["score_seconds"]
    out["ratio_score_and_select"] = (out["bald"]["score_and_select_seconds"]
                                     / out["balent"]["score_and_select_seconds"])
    return out
