"""Every random stream of a run is seeded from the run seed and a purpose, here and only here.

Every generator is a CPU generator, whatever the run's device: the numbers are drawn on the CPU
and moved to the device (``strategies/rng.py``, ``benchmark/model/mc_dropout.py``), so the same
seed gives the same cycle-0 clicks, strategy noise, dropout masks, tie-breaks and record samples
on a CPU and on a GPU. (A CUDA generator runs another algorithm, Philox: its numbers for the same
seed differ from the CPU's, and a run on a GPU would be another experiment from cycle 1 on.)
"""
from __future__ import annotations

import hashlib

import torch


def derive_seed(*parts) -> int:
    """A stable 31-bit seed from the run seed and a purpose (same on every machine and run)."""
    digest = hashlib.sha256(repr(parts).encode()).digest()
    return int.from_bytes(digest[:4], "little") & 0x7FFFFFFF


def cpu_generator(*parts) -> torch.Generator:
    """A CPU torch generator seeded with ``derive_seed(*parts)``: the same numbers on every device."""
    return torch.Generator().manual_seed(derive_seed(*parts))
