"""Section 2: pool scoring throughput (score + per-image top-n selection, as ``loop.acquire`` runs
them) for every registered strategy, in pixels per second and against the bytes of posterior each
strategy must read, as a fraction of the measured copy bandwidth.

The fixed cost per image (Python and dispatch overhead) is measured on tiny 16x16 posteriors; its
share of the per-image time tells overhead-bound strategies from the others.
"""
from __future__ import annotations

import dataclasses
import time

import torch
import torch.nn.functional as F
from rich.table import Table

from benchmark.model.softmax_stats import SoftmaxStatistics
from benchmark.perf.fixtures import synchronize
from strategies import (
    STRATEGIES,
    build_strategy,
    describe_strategies,
    load_entry_points,
    native_kernel,
    needs_samples,
    scores_alone,
    select_top_n,
)
from strategies.uncertainty import balent_scores, decomposition, posterior_term_parts

POSTERIOR_FIELDS = ("mean", "variance", "predictive_entropy", "expected_entropy", "samples")
GOAL_SHARE_OF_BALD = 0.25  # issue "Acquisition on a real pool": BalEnt at >= 25% of BALD's throughput
SHORT = dict(mean="mean", variance="var", predictive_entropy="H", expected_entropy="E", samples="samples")


class _ReadRecorder:
    """Forwards attribute reads to a posterior and remembers which of its tensors were read."""

    def __init__(self, post):
        self._post, self.read = post, set()

    def derived(self, key, compute):
        return compute()  # no cache: what compute reads through this recorder is recorded

    def __getattr__(self, name):
        if name in POSTERIOR_FIELDS:
            self.read.add(name)
        return getattr(self._post, name)


def fields_read(score, post) -> tuple[str, ...]:
    """The posterior tensors ``score(post)`` reads (all of them if it will not take a stand-in)."""
    recorder = _ReadRecorder(post)
    try:
        score(recorder)
    except Exception:  # a plugin that type-checks its argument: charge it every field
        return tuple(f for f in POSTERIOR_FIELDS if getattr(post, f) is not None)
    return tuple(sorted(recorder.read))


def bytes_per_pixel(post, fields) -> float:
    pixels = post.predictive_entropy.numel()
    return sum(getattr(post, f).numel() * getattr(post, f).element_size() for f in fields) / pixels


def random_posteriors(count: int, size: int, classes: int, m: int, device, keep_samples: bool,
                      seed: int = 0) -> list:
    """Posteriors of smooth random logits with per-sample noise, folded like the real path."""
    g = torch.Generator().manual_seed(seed)
    low = max(size // 8, 1)
    posts = []
    for _ in range(count):
        base = torch.randn(1, classes, low, low, generator=g) * 4
        base = F.interpolate(base, size=(size, size), mode="bilinear", align_corners=False)
        stats = SoftmaxStatistics(keep_samples=keep_samples)
        for _ in range(m):
            noise = torch.randn(1, classes, size, size, generator=g)
            stats.add_logits((base + noise).to(device))
        posts.append(stats.finalize()[0])
    return posts


def labelled_masks(count: int, size: int, device, per_image: int = 10) -> list[torch.Tensor]:
    g = torch.Generator().manual_seed(1)
    masks = []
    for _ in range(count):
        mask = torch.zeros(size * size, dtype=torch.bool)
        mask[torch.randperm(size * size, generator=g)[:per_image]] = True
        masks.append(mask.view(size, size).to(device))
    return masks


def time_pool(score, posts, masks, n_images: int, n: int, device, select: bool = True) -> tuple:
    """Seconds spent scoring and selecting over a pool of ``n_images`` (posteriors reused in turn,
    each time as a fresh PixelPosterior, so nothing derived from an earlier use is kept)."""
    g = torch.Generator().manual_seed(0)  # a CPU generator, as the harness's (benchmark.config.seeds)
    scoring = selection = 0.0
    for i in range(n_images):
        post, mask = dataclasses.replace(posts[i % len(posts)]), masks[i % len(masks)]
        t0 = time.perf_counter()
        scores = score(post, g)
        synchronize(device)
        t1 = time.perf_counter()
        if select:
            select_top_n(scores, mask, n, g).cpu()
        selection += time.perf_counter() - t1
        scoring += t1 - t0
    return scoring, selection


def _candidates() -> list[tuple]:
    """(name, score(post, generator), selected?, needs samples?) for each registered strategy
    that scores a bare posterior (section 7 times the ones that choose from features)."""
    load_entry_points()
    rows = []
    for name, _, _ in describe_strategies():
        if not scores_alone(STRATEGIES.get(name)):
            continue
        strategy = build_strategy(name)
        rows.append((name, lambda p, g, s=strategy: s.score(p, generator=g), True,
                     needs_samples(strategy)))
    rows.append(("(decomposition)", lambda p, g: decomposition(p), False, False))
    return rows


def _bound(overhead_share: float, bandwidth_share: float) -> str:
    if overhead_share >= 0.5:
        return "Python/dispatch overhead"
    if bandwidth_share >= 0.4:
        return "memory bandwidth"
    return "compute"


def _measure_all(candidates, posts, sample_posts, tiny, masks, tiny_masks, args) -> dict:
    """Best of ``args.repeats`` pool timings per strategy, the strategies interleaved within each
    repeat (so that a change in the machine's load hits every strategy alike)."""
    device, n_images, n = args.device, args.score_images, args.pixels_per_image
    best: dict = {}
    for _ in range(max(args.repeats, 1)):
        for name, score, select, needs in candidates:
            pool_posts = sample_posts if needs else posts
            timing = time_pool(score, pool_posts, masks, n_images, n, device, select)
            small = time_pool(score, tiny, tiny_masks, 4 * len(tiny), n, device, select)
            if name not in best or sum(timing) < sum(best[name][0]):
                best[name] = (timing, best.get(name, (None, small))[1])
            if sum(small) < sum(best[name][1]):
                best[name] = (best[name][0], small)
    return best


def time_posterior_term(posts, repeats: int, device, floored: bool = False) -> float:
    """Best-of-``repeats`` seconds per posterior of BalEnt's posterior term alone."""
    best = float("inf")
    for _ in range(max(repeats, 1)):
        t0 = time.perf_counter()
        for post in posts:
            posterior_term_parts(post.mean, post.variance, floored=floored)
        synchronize(device)
        best = min(best, (time.perf_counter() - t0) / len(posts))
    return best


def kernel_agreement(posts, floored: bool) -> dict:
    """How the fused kernel's BalEnt scores agree with the torch kernel's on ``posts``: the
    overlap of their top 1% per image, whether the same pixels are -inf, the largest relative
    difference elsewhere."""
    overlap, same_inf, worst = 1.0, True, 0.0
    for post in posts:
        fused = balent_scores(dataclasses.replace(post), floored=floored).reshape(-1)
        with native_kernel.torch_kernel_only():
            eager = balent_scores(dataclasses.replace(post), floored=floored).reshape(-1)
        k = max(1, fused.numel() // 100)
        top = [set(torch.topk(s, k).indices.tolist()) for s in (fused, eager)]
        overlap = min(overlap, len(top[0] & top[1]) / k)
        same_inf &= torch.equal(torch.isinf(fused), torch.isinf(eager))
        finite = torch.isfinite(eager)
        difference = (fused[finite] - eager[finite]).abs() / eager[finite].abs().clamp(min=1e-300)
        worst = max(worst, difference.max().item() if difference.numel() else 0.0)
    return dict(top_overlap=overlap, same_inf=bool(same_inf), max_relative_difference=worst)


def describe_agreement(agreement: dict) -> str:
    return (f"top-1% overlap {100 * agreement['top_overlap']:.0f}%, same -inf pixels: "
            f"{'yes' if agreement['same_inf'] else 'NO'}, largest relative difference "
            f"{agreement['max_relative_difference']:.2g}")


def kernel_comparison(posts, repeats: int, device) -> dict:
    """The fused C kernel against the torch code it replaces, on the same posteriors, per
    strategy: seconds per image of each and the agreement of the scores (empty where the fused
    kernel does not run)."""
    if torch.device(device).type != "cpu" or not native_kernel.usable_for(posts[0].mean):
        return {}
    out = {}
    for floored, name in ((False, "balent"), (True, "balent_ref")):
        fused = time_posterior_term(posts, repeats, device, floored)
        with native_kernel.torch_kernel_only():
            eager = time_posterior_term(posts, repeats, device, floored)
        out[name] = dict(fused_seconds=fused, torch_seconds=eager, speedup=eager / fused,
                         agreement=kernel_agreement(posts, floored))
    return out


def kernel_lines(comparison: dict) -> list[str]:
    lines = [f"  BalEnt's posterior term on this device: {native_kernel.describe()}"]
    for name, k in comparison.items():
        lines.append(f"  {name}'s posterior term: fused C kernel {k['fused_seconds'] * 1e3:.2f} ms/img, torch "
                     f"kernel {k['torch_seconds'] * 1e3:.2f} ms/img: {k['speedup']:.1f}x; scores: "
                     f"{describe_agreement(k['agreement'])}")
    return lines


def section_throughput(args, console, bandwidth: float) -> dict:
    size, device, n_images = args.score_size, args.device, args.score_images
    posts = random_posteriors(args.score_distinct, size, args.classes, args.mc_samples, device, False)
    sample_posts = None
    tiny = random_posteriors(2, 16, args.classes, 2, device, False)
    masks, tiny_masks = labelled_masks(len(posts), size, device), labelled_masks(2, 16, device)
    console.print(f"2. Pool scoring throughput (score + top-{args.pixels_per_image} selection per image): "
                  f"{n_images} posteriors of {size}x{size}, {args.classes} classes, m = {args.mc_samples}; "
                  f"copy bandwidth {bandwidth / 1e9:.1f} GB/s; best of {max(args.repeats, 1)} pool "
                  f"passes, strategies interleaved")
    table = Table(title="2. Pool scoring throughput")
    for column in ("strategy", "reads", "B/px", "score ms/img", "select ms/img", "Mpx/s",
                   "GB/s read", "% of copy bw", "fixed cost share", "bound"):
        table.add_column(column, justify="left" if column in ("strategy", "reads", "bound") else "right")
    pixels = size * size
    candidates = _candidates()
    if any(needs for *_, needs in candidates):
        sample_posts = random_posteriors(2, size, args.classes, args.mc_samples, device, True)
    per_px = {}
    for name, score, _select, needs in candidates:
        post = (sample_posts if needs else posts)[0]
        fields = fields_read(lambda p, score=score: score(p, torch.Generator()), post)
        per_px[name] = (fields, bytes_per_pixel(post, fields) + 1)  # + the labelled mask (bool)
        score(post, torch.Generator())  # warm-up
    best = _measure_all(candidates, posts, sample_posts, tiny, masks, tiny_masks, args)
    rates, figures = {}, {}
    for name, _score, select, _needs in candidates:
        (scoring, selection), small = best[name]
        fields, bytes_px = per_px[name]
        fixed = sum(small) / (4 * len(tiny))
        per_image = (scoring + selection) / n_images
        rate = bytes_px * pixels / per_image
        rates[name] = pixels / per_image
        figures[name] = dict(reads=list(fields), bytes_per_pixel=bytes_px, score_seconds=scoring / n_images,
                             select_seconds=selection / n_images if select else None,
                             pixels_per_second=pixels / per_image, bytes_per_second=rate,
                             share_of_bandwidth=rate / bandwidth, fixed_cost_share=min(fixed / per_image, 1),
                             bound=_bound(fixed / per_image, rate / bandwidth))
        table.add_row(name, ", ".join(SHORT[f] for f in fields) or "-",
                      f"{bytes_px:.0f}", f"{scoring / n_images * 1e3:.2f}",
                      f"{selection / n_images * 1e3:.2f}" if select else "-",
                      f"{pixels / per_image / 1e6:.1f}", f"{rate / 1e9:.2f}",
                      f"{100 * rate / bandwidth:.1f}%",
                      f"{100 * min(fixed / per_image, 1):.0f}%",
                      _bound(fixed / per_image, rate / bandwidth))
    console.print(table)
    console.print("  reads: posterior tensors read (var = variance, H = predictive entropy, E = expected "
                  "entropy); B/px: their bytes per pixel + 1 for the labelled mask; fixed cost share: "
                  "per-image time on 16x16 posteriors / per-image time here; (decomposition): the "
                  "epistemic/aleatoric/MJEnt record loop.acquire computes for every image and strategy.")
    others = [name for name, _, _ in describe_strategies() if not scores_alone(STRATEGIES.get(name))]
    if others:
        console.print(f"  not here: {', '.join(others)} (they choose from the classifier features; section 7)")
    for name in ("balent", "balent_ref"):
        if name in rates and "bald" in rates:
            console.print(f"  {name}: {rates[name] / 1e6:.2f} Mpx/s, bald: {rates['bald'] / 1e6:.2f} "
                          f"Mpx/s: {name} at {100 * rates[name] / rates['bald']:.1f}% of bald's "
                          f"throughput (goal: {GOAL_SHARE_OF_BALD:.0%})")
    kernels = kernel_comparison(posts, args.repeats, device)
    for line in kernel_lines(kernels):
        console.print(line)
    share_of_bald = {name: rates[name] / rates["bald"] for name in ("balent", "balent_ref")
                     if name in rates and "bald" in rates}
    return dict(strategies=figures, share_of_bald=share_of_bald, kernels=kernels)
