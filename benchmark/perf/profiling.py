"""`--profile`: torch.profiler's top operators, the evidence behind the suite's "bound" columns."""
from __future__ import annotations

import torch
from torch.profiler import ProfilerActivity, profile

from benchmark.model.mc_dropout import mc_posteriors
from benchmark.perf.fixtures import RandomPool, load_model
from benchmark.perf.pool_throughput import _candidates, labelled_masks, random_posteriors
from strategies import select_top_n

ROWS = 8


def _activities(device) -> list:
    cuda = torch.device(device).type == "cuda"
    return [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if cuda else [])


def _print(prof, title: str, device, console) -> None:
    key = "cuda_time_total" if torch.device(device).type == "cuda" else "self_cpu_time_total"
    console.print(f"[bold]{title}[/bold]")
    console.print(prof.key_averages().table(sort_by=key, row_limit=ROWS), markup=False, highlight=False)


@torch.no_grad()
def print_profiles(args, console) -> None:
    device = args.device
    model = load_model(args.models[0], args.classes, device)
    batch = RandomPool(args.batch_size, args.height, args.width).batch(range(args.batch_size))
    mc_posteriors(model, batch, args.mc_samples, torch.Generator().manual_seed(0))  # CPU, as the harness's
    with profile(activities=_activities(device)) as prof:
        mc_posteriors(model, batch, args.mc_samples, torch.Generator().manual_seed(0))
    _print(prof, f"profile: last-layer MC, {args.models[0]}, m = {args.mc_samples}", device, console)
    posts = random_posteriors(2, args.score_size, args.classes, args.mc_samples, device, False)
    masks = labelled_masks(2, args.score_size, device)
    for name, score, select, needs in _candidates():
        if needs:
            continue
        g = torch.Generator().manual_seed(0)
        with profile(activities=_activities(device)) as prof:
            for post, mask in zip(posts, masks):
                scores = score(post, g)
                if select:
                    select_top_n(scores, mask, args.pixels_per_image, g).cpu()
        _print(prof, f"profile: {name}, score + select of {len(posts)} posteriors of "
                     f"{args.score_size}x{args.score_size}", device, console)
