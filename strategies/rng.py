"""Randomness for strategies and selection, only ever drawn from an explicit torch.Generator.

Numbers are drawn on the generator's own device and then moved to the tensors' device, so a CPU
generator gives the same numbers whether the posterior lives on the CPU or on a GPU (a generator
on the tensors' device skips the host-to-device copy, but CUDA's generators run another algorithm:
their numbers for a seed are not the CPU's). ``generator=None`` means a fresh CPU generator with
torch's default seed: deterministic, and the global RNG is never used.
"""
from __future__ import annotations

import torch


def resolve_generator(generator: torch.Generator | None) -> torch.Generator:
    """``generator`` itself, or a fresh default-seeded CPU generator when it is None."""
    return torch.Generator() if generator is None else generator


def uniform(shape: torch.Size | tuple[int, ...], generator: torch.Generator | None, *,
            device: torch.device | str, dtype: torch.dtype = torch.float64) -> torch.Tensor:
    """I.i.d. uniform numbers in [0, 1) of ``shape`` on ``device``."""
    g = resolve_generator(generator)
    return torch.rand(tuple(shape), generator=g, device=g.device, dtype=dtype).to(device)


def gumbel(shape: torch.Size | tuple[int, ...], generator: torch.Generator | None, *,
           device: torch.device | str, dtype: torch.dtype = torch.float64) -> torch.Tensor:
    """I.i.d. standard Gumbel noise ``-log(-log U)`` of ``shape`` on ``device`` (always finite)."""
    u = uniform(shape, generator, device=device, dtype=dtype)
    u = u.clamp(min=torch.finfo(dtype).tiny)  # U = 0 would give -inf
    return -torch.log(-torch.log(u))


def permutation(n: int, generator: torch.Generator | None, *,
                device: torch.device | str) -> torch.Tensor:
    """A uniformly random permutation of ``range(n)`` (LongTensor [n]) on ``device``."""
    g = resolve_generator(generator)
    return torch.randperm(n, generator=g, device=g.device).to(device)
