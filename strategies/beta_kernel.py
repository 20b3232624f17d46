"""The float64 kernel behind the Beta differential entropy: ``G(x)`` and ``digamma(x)``.

``G(x) = lgamma(x) - (x-1) digamma(x) + x``, so that the entropy of Beta(a, b) is
``G(a) + G(b) - G(a+b) - digamma(a+b)`` with the terms that grow like x cancelled exactly.
Below ``STIRLING_SWITCH`` both come from lgamma/digamma directly; above it from the Stirling
series, in which those terms cancel analytically (the direct form loses ~7 digits at x ~ 1e8).

Written for speed on large flat float64 tensors: every function writes into buffers of a
``Workspace`` reused across blocks (on the CPU a fresh multi-megabyte temporary costs more than
the arithmetic done on it), and each element is evaluated by its own branch only where the
costly lgamma/digamma can be skipped. All inputs here are 1-D, contiguous and float64.
"""
from __future__ import annotations

import math

import torch

HALF_LOG_2PI_E = 0.5 * (math.log(2.0 * math.pi) + 1.0)
STIRLING_SWITCH = 64.0  # lgamma/digamma directly below, Stirling series above
# Above this share of small elements, the direct branch runs on every element (clamped) and the
# Stirling series only on the compacted large ones; below it the other way round.
DIRECT_ON_ALL_SHARE = 0.7


class Workspace:
    """Named flat buffers of ``numel`` elements, allocated once and reused (``ws(name, n)``)."""

    def __init__(self, numel: int, device: torch.device | str) -> None:
        self.numel, self.device = numel, device
        self._buffers: dict[str, torch.Tensor] = {}

    def __call__(self, name: str, n: int, dtype: torch.dtype = torch.float64) -> torch.Tensor:
        buf = self._buffers.get(name)
        if buf is None or buf.dtype != dtype:
            buf = self._buffers[name] = torch.empty(self.numel, dtype=dtype, device=self.device)
        return buf[:n]


def stirling_into(x: torch.Tensor, g: torch.Tensor, psi: torch.Tensor, ws: Workspace) -> None:
    """``g, psi = G(x), digamma(x)`` from the Stirling series (x >= ``STIRLING_SWITCH``).

    Truncation error at x = 64 below 1e-20, far under float64 resolution.
    """
    n = x.numel()
    y = torch.reciprocal(x, out=ws("y", n))
    y2 = torch.mul(y, y, out=ws("y2", n))
    # r = y (1/12 - y2 (1/360 - y2 (1/1260 - y2 (1/1680 - y2/1188)))), Horner, in place
    r = torch.div(y2, 1188.0, out=ws("r", n)).neg_().add_(1 / 1680)
    for c in (1 / 1260, 1 / 360, 1 / 12):
        r.mul_(y2).neg_().add_(c)
    r.mul_(y)
    # t = y2 (1/12 - y2 (1/120 - y2 (1/252 - y2 (1/240 - y2/132))))
    t = torch.div(y2, 132.0, out=ws("t", n)).neg_().add_(1 / 240)
    for c in (1 / 252, 1 / 120, 1 / 12):
        t.mul_(y2).neg_().add_(c)
    t.mul_(y2)
    torch.log(x, out=psi)  # log x, completed below
    # G = 0.5 log x + log(2 pi e)/2 - y/2 + r + (x-1) t;  digamma = log x - y/2 - t
    torch.mul(psi, 0.5, out=g).add_(HALF_LOG_2PI_E).sub_(y, alpha=0.5).add_(r)
    g.add_(torch.sub(x, 1.0, out=y2).mul_(t))
    psi.sub_(y, alpha=0.5).sub_(t)


def direct_into(x: torch.Tensor, g: torch.Tensor, psi: torch.Tensor, ws: Workspace) -> None:
    """``g, psi = G(x), digamma(x)`` from lgamma and digamma (moderate x)."""
    torch.digamma(x, out=psi)
    scaled = torch.sub(x, 1.0, out=ws("y", x.numel())).mul_(psi)
    torch.lgamma(x, out=g).sub_(scaled).add_(x)


def entropy_parts_into(x: torch.Tensor, g: torch.Tensor, psi: torch.Tensor,
                       ws: Workspace) -> None:
    """``g, psi = G(x), digamma(x)`` for x > 0, each element by its own branch."""
    n = x.numel()
    big = torch.ge(x, STIRLING_SWITCH, out=ws("big", n, torch.bool))
    n_big = int(big.count_nonzero())
    if n_big == n:
        return stirling_into(x, g, psi, ws)
    if n_big == 0:
        return direct_into(x, g, psi, ws)
    direct_on_all = n - n_big >= DIRECT_ON_ALL_SHARE * n
    clamped = ws("clamped", n)
    if direct_on_all:  # every element directly, then the large ones again by Stirling
        direct_into(torch.clamp(x, max=STIRLING_SWITCH, out=clamped), g, psi, ws)
        index = big.nonzero().squeeze(1)
    else:  # every element by Stirling, then the small ones again directly
        stirling_into(torch.clamp(x, min=STIRLING_SWITCH, out=clamped), g, psi, ws)
        index = big.logical_not_().nonzero().squeeze(1)
    k = index.numel()
    part_x = torch.index_select(x, 0, index, out=ws("part_x", k))
    part_g, part_psi = ws("part_g", k), ws("part_psi", k)
    (stirling_into if direct_on_all else direct_into)(part_x, part_g, part_psi, ws)
    g.index_copy_(0, index, part_g)
    psi.index_copy_(0, index, part_psi)


def beta_entropy_into(a: torch.Tensor, b: torch.Tensor, h: torch.Tensor, ws: Workspace) -> None:
    """``h = G(a) + G(b) - G(a+b) - digamma(a+b)``: the entropy of Beta(a, b), a, b > 0."""
    n = a.numel()
    g, psi = ws("g", n), ws("psi", n)
    entropy_parts_into(a, h, psi, ws)
    entropy_parts_into(b, g, psi, ws)
    h.add_(g)
    entropy_parts_into(torch.add(a, b, out=ws("s", n)), g, psi, ws)
    h.sub_(g).sub_(psi)


def digammas_into(a: torch.Tensor, b: torch.Tensor, ws: Workspace) -> tuple[torch.Tensor, ...]:
    """``digamma(a), digamma(b), digamma(a+b)`` (the same branches as ``beta_entropy_into``)."""
    n = a.numel()
    out = []
    for name, x in (("psi_a", a), ("psi_b", b), ("psi_s", torch.add(a, b, out=ws("s", n)))):
        out.append(ws(name, n))
        entropy_parts_into(x, ws("g", n), out[-1], ws)
    return tuple(out)
