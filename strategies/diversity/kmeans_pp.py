"""k-means++ seeding (Arthur and Vassilvitskii, SODA 2007) as BADGE uses it (Ash et al., ICLR 2020,
"Deep Batch Active Learning by Diverse, Uncertain Gradient Lower Bounds", its ``init_centers``):
the first centre is the point of largest norm, each next one is drawn with probability
proportional to its squared distance to the nearest centre so far (D^2 sampling).

A draw is one uniform number u from the generator: the point taken is the first whose cumulative
D^2 exceeds u times the total (points at distance 0, centres included, are never taken). When
every point is at distance 0 (all coincide with the centres), the first point not taken is.
"""
from __future__ import annotations

from collections.abc import Callable

import torch

from strategies.rng import uniform


def kmeanspp_seeding(k: int, squared_norms: torch.Tensor,
                     distances_to: Callable[[int], torch.Tensor],
                     generator: torch.Generator | None,
                     d2: torch.Tensor | None = None) -> torch.Tensor:
    """Indices ``[k]`` of the centres k-means++ seeding picks among K points, in pick order.

    ``squared_norms [K]``: |x_i|^2 (the first pick's criterion when there is no centre yet);
    ``distances_to(j) -> [K]``: every point's squared distance to point j; ``d2 [K]``: each point's
    squared distance to centres chosen before these K points (None: there are none: the first
    pick is then the largest norm, the first of equal ones). ``0 <= k <= K``.
    """
    count = squared_norms.shape[0]
    if not 0 <= k <= count:
        raise ValueError(f"k must be in [0, {count}], got {k}")
    device = squared_norms.device
    taken = torch.zeros(count, dtype=torch.bool, device=device)
    picks: list[int] = []
    if d2 is not None:
        d2 = d2.to(device, torch.float64).clone()
    for _ in range(k):
        if d2 is None:
            norms = squared_norms.double()
            j = int(torch.argmax(torch.where(torch.isnan(norms), float("-inf"), norms)))
        else:
            j = _d2_draw(d2, taken, generator)
        picks.append(j)
        taken[j] = True
        new = distances_to(j).to(device, torch.float64)
        d2 = new if d2 is None else torch.minimum(d2, new)
    return torch.tensor(picks, dtype=torch.long, device=device)


def _d2_draw(d2: torch.Tensor, taken: torch.Tensor, generator: torch.Generator | None) -> int:
    """One D^2 draw (see the module docstring); ``taken`` points weigh 0."""
    weight = torch.where(taken | ~torch.isfinite(d2), torch.zeros_like(d2), d2.clamp(min=0.0))
    cumulative = torch.cumsum(weight, 0)
    total = cumulative[-1]
    u = uniform((1,), generator, device=d2.device)  # one draw per pick, whatever the weights
    if not bool(total > 0):
        return int(torch.nonzero(~taken)[0])
    j = int(torch.searchsorted(cumulative, u * total, right=True).clamp(max=d2.numel() - 1))
    while bool(taken[j]) or not bool(weight[j] > 0):  # rounding at the very top: step back
        j -= 1
    return j
