"""The shared cycle-0 model of a seed, trained once and loaded by every strategy run of that seed.

Cycle 0 is the same for every strategy of a seed (same clicks, same initial weights, same
schedule), so its trained weights and metrics are stored under ``<out>/cache/cycle0/<key>.pt``,
``key`` a digest of every RunSpec field whose role is CYCLE0 (``benchmark.run_spec.cycle0_key``).
Weights are plain tensors, loaded with ``weights_only=True``.
"""
from __future__ import annotations

import io
from pathlib import Path

from benchmark.fileio import write_bytes_atomic


class CycleZeroCache:
    def __init__(self, out_dir: Path, key: str):
        self.path = Path(out_dir) / "cache" / "cycle0" / f"{key}.pt"

    def load(self) -> dict | None:
        import torch

        if not self.path.exists():
            return None
        return torch.load(self.path, map_location="cpu", weights_only=True)

    def save(self, state: dict, facts: dict) -> None:
        """Store the weights ``state`` (tensors) and ``facts`` about the training (plain values)."""
        import torch

        buffer = io.BytesIO()
        torch.save(dict(state=state, **facts), buffer)
        write_bytes_atomic(self.path, buffer.getvalue())
