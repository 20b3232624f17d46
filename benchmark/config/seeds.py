"""Every random stream of a run is seeded from the run seed and a purpose, here and only here."""
from __future__ import annotations

import hashlib

import torch


def derive_seed(*parts) -> int:
    """A stable 31-bit seed from the run seed and a purpose (same on every machine and run)."""
    digest = hashlib.sha256(repr(parts).encode()).digest()
    return int.from_bytes(digest[:4], "little") & 0x7FFFFFFF


def generator(device, *parts) -> torch.Generator:
    """A torch generator on ``device`` seeded with ``derive_seed(*parts)``."""
    return torch.Generator(device=device).manual_seed(derive_seed(*parts))
