"""Section 7: the diversity strategies' cost.

7. BADGE's gradient embeddings, factorised against explicit: k-means++ seeding of k picks among n
   embeddings of C classes and d features, (a) on the factors (n (C + d) floats: what ``badge``
   runs) and (b) on the (n, C d) matrix written out (what a direct implementation holds; a norm
   and one mat-vec per pick, no second n x C d temporary), each in a fresh process: peak memory
   growth, seconds, whether both picked the same points, and the ratios. One measurement, printed as JSON:

       python -m benchmark.perf.diversity --form factorised --n 20000 --classes 19 --dim 256 --k 32

7b. Per image: the time of coreset's and badge's choice (features gathered, distances, picks) and
   of class_balanced's scores, on synthetic posteriors and features.
"""
from __future__ import annotations

import argparse
import gc
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import torch
from rich.table import Table

FORMS = ("factorised", "explicit")


def inputs(n: int, classes: int, dim: int, device: str, seed: int = 0):
    """Mean probabilities [n, C] and feature vectors [n, d] (float32), from a seed."""
    g = torch.Generator().manual_seed(seed)
    mean = torch.softmax(3.0 * torch.randn(n, classes, generator=g), 1)
    features = torch.relu(torch.randn(n, dim, generator=g))
    return mean.to(device), features.to(device)


def seeding(form: str, mean: torch.Tensor, features: torch.Tensor, k: int) -> list[int]:
    """k-means++ seeding on the factors, or on the explicit (n, C d) matrix (norms + one mat-vec
    per pick, no second n x C d temporary)."""
    from strategies.diversity.gradient_embedding import GradientEmbeddings
    from strategies.diversity.kmeans_pp import kmeanspp_seeding

    embeddings = GradientEmbeddings.from_predictions(mean, features)
    g = torch.Generator().manual_seed(0)
    if form == "factorised":
        picks = kmeanspp_seeding(k, embeddings.squared_norms(), embeddings.squared_distances_to, g)
    else:
        explicit = embeddings.explicit()  # [n, C d]
        norms = torch.einsum("ij,ij->i", explicit, explicit)  # no second n x C d temporary

        def distances_to(j: int) -> torch.Tensor:
            return (norms + norms[j] - 2.0 * (explicit @ explicit[j])).clamp(min=0.0)

        picks = kmeanspp_seeding(k, norms, distances_to, g)
    return picks.tolist()


def measure(args) -> dict:
    from benchmark.perf.memory import _status_kib, reset_peak_rss

    if args.threads:
        torch.set_num_threads(args.threads)
    seeding(args.form, *inputs(64, args.classes, args.dim, args.device, seed=1), 2)  # imports, one-time allocations
    mean, features = inputs(args.n, args.classes, args.dim, args.device)
    cuda = torch.device(args.device).type == "cuda"
    gc.collect()
    if cuda:
        torch.cuda.synchronize(args.device)
        torch.cuda.reset_peak_memory_stats(args.device)
        base = torch.cuda.memory_allocated(args.device)
    else:
        reset_peak_rss()
        base = _status_kib("VmRSS") * 1024
    start = time.perf_counter()
    picks = seeding(args.form, mean, features, args.k)
    if cuda:
        torch.cuda.synchronize(args.device)
    seconds = time.perf_counter() - start
    peak = torch.cuda.max_memory_allocated(args.device) if cuda else _status_kib("VmHWM") * 1024
    floats = args.n * (args.classes + args.dim) if args.form == "factorised" else args.n * args.classes * args.dim
    return dict(form=args.form, n=args.n, classes=args.classes, dim=args.dim, k=args.k, picks=picks,
                growth_bytes=peak - base, embedding_bytes=floats * mean.element_size(), seconds=seconds,
                measure="cuda max_memory_allocated" if cuda else "VmHWM - VmRSS")


def run_in_subprocess(**options) -> dict:
    argv = [sys.executable, "-m", "benchmark.perf.diversity"]
    for key, value in options.items():
        argv += [f"--{key.replace('_', '-')}", str(value)]
    root = Path(__file__).resolve().parents[2]
    proc = subprocess.run(argv, cwd=root, env=dict(os.environ), capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(f"diversity measurement failed ({' '.join(argv[2:])}):\n{proc.stderr[-2000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def per_image_times(args, device: str, repeats: int) -> list[tuple[str, float]]:
    """(strategy, ms per image) of each feature or pool strategy on one synthetic image."""
    from strategies import PixelFeatures, PixelPosterior, PoolContext, build_strategy, per_image_call
    from strategies.testing import mc_samples

    size, classes, dim = args.diversity_image, args.classes, args.diversity_dim
    post = PixelPosterior.from_samples(mc_samples(4, (classes, size, size), dtype=torch.float32).to(device))
    g = torch.Generator().manual_seed(0)
    feature_map = torch.randn(dim, max(size // 8, 1), max(size // 8, 1), generator=g).to(device)
    features = PixelFeatures.resized(feature_map, (size, size))
    labelled = torch.randn(args.diversity_labelled, dim, generator=g).to(device)
    pool = PoolContext(torch.randint(0, 50, (classes,), generator=g), 1, labelled)
    excluded = torch.zeros(size, size, dtype=torch.bool, device=device)
    rows = []
    for name in ("coreset", "badge", "class_balanced"):
        strategy = build_strategy(name)
        best = float("inf")
        for _ in range(max(repeats, 1)):
            handler = strategy.begin_cycle(pool)
            start = time.perf_counter()
            extra = per_image_call(strategy, features)
            if hasattr(handler, "choose"):
                handler.choose(post, excluded, args.pixels_per_image, torch.Generator().manual_seed(1), **extra)
            else:
                handler.score(post, torch.Generator().manual_seed(1), **extra)
            if torch.device(device).type == "cuda":
                torch.cuda.synchronize(device)
            best = min(best, time.perf_counter() - start)
        rows.append((name, 1e3 * best))
    return rows


def section_diversity(args, console) -> dict:
    n, classes, dim = args.badge_size
    k = args.badge_k
    common = dict(n=n, classes=classes, dim=dim, k=k, device=args.device, threads=torch.get_num_threads())
    results = {form: run_in_subprocess(form=form, **common) for form in FORMS}
    factor, explicit = results["factorised"], results["explicit"]
    console.print(f"7. BADGE's gradient embeddings, factorised against explicit: k-means++ seeding of {k} picks "
                  f"among n = {n} embeddings, C = {classes}, d = {dim}, float32, a fresh process each "
                  f"({factor['measure']})")
    table = Table(title="7. BADGE: factorised vs explicit embeddings")
    for column in ("form", "embeddings held", "MiB held", "peak growth MiB", "seconds"):
        table.add_column(column, justify="left" if column in ("form", "embeddings held") else "right")
    for form, result in results.items():
        held = f"{n} x ({classes} + {dim})" if form == "factorised" else f"{n} x {classes} x {dim}"
        table.add_row(form, held, f"{result['embedding_bytes'] / 2**20:.1f}",
                      f"{result['growth_bytes'] / 2**20:.1f}", f"{result['seconds']:.3f}")
    table.add_row("explicit / factorised", "ratio", f"{explicit['embedding_bytes'] / factor['embedding_bytes']:.1f}",
                  f"{explicit['growth_bytes'] / max(factor['growth_bytes'], 1):.1f}",
                  f"{explicit['seconds'] / max(factor['seconds'], 1e-9):.2f}")
    same = factor["picks"] == explicit["picks"]
    table.caption = (f"same {k} picks in both forms: {'yes' if same else 'NO'}; memory held grows as n (C + d) "
                     f"against n C d")
    console.print(table)
    rows = per_image_times(args, args.device, args.repeats)
    size = args.diversity_image
    console.print(f"7b. One image's choice ({size}x{size}, C = {classes}, d = {args.diversity_dim}, "
                  f"{args.diversity_labelled} labelled feature vectors, n = {args.pixels_per_image}; best of "
                  f"{max(args.repeats, 1)}): " + ", ".join(f"{name} {ms:.1f} ms" for name, ms in rows))
    return dict(forms={form: {k: v for k, v in result.items() if k != "picks"} for form, result in results.items()},
                same_picks=same, per_image_ms=dict(rows))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmark.perf.diversity", description=__doc__)
    parser.add_argument("--form", choices=FORMS, required=True)
    parser.add_argument("--n", type=int, default=20000)
    parser.add_argument("--classes", type=int, default=19)
    parser.add_argument("--dim", type=int, default=256)
    parser.add_argument("--k", type=int, default=32)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=0)
    args = parser.parse_args(argv)
    print(json.dumps(measure(args)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
