"""The shared cycle-0 model of a seed, trained once and loaded by every strategy run of that seed.

Cycle 0 is the same for every strategy of a seed (same clicks, same initial weights, same
schedule), so its trained weights and metrics are stored under ``<out>/cache/cycle0/<key>.pt``,
``key`` a digest of every RunSpec field whose role is CYCLE0 (``benchmark.config.run_spec.cycle0_key``).
Weights are plain tensors, loaded with ``weights_only=True``.

Several processes may reach cycle 0 of one seed at once (the jobs of ``benchmark launch``, or runs
started by hand): whoever looks into the cache holds the entry's lock (``locked()``) until it has
loaded the entry or trained and saved it, so the first one trains and every other one waits and
then loads. Cycle 0 is never trained twice.

With several ranks for one run (``--gpus-per-run``) rank 0 alone holds the lock, looks into the
cache and writes it; it tells the other ranks whether the entry exists, and they train with it
(DDP needs every rank) or load the entry it found.
"""
from __future__ import annotations

import contextlib
import io
from pathlib import Path

from benchmark.records.fileio import write_bytes_atomic
from benchmark.records.locks import FileLock, lock_path
from benchmark.runtime import distributed


class CycleZeroCache:
    def __init__(self, out_dir: Path, key: str):
        self.path = Path(out_dir) / "cache" / "cycle0" / f"{key}.pt"
        self._lock = lock_path(out_dir, "cycle0", key)

    @property
    def log_dir(self) -> Path:
        """Where cycle 0 trained outside any run (the launch's cycle-0 job) keeps its mmengine logs."""
        return self.path.with_suffix("") / "train_logs" / "cycle_00"

    def exists(self) -> bool:
        return self.path.exists()

    def locked(self):
        """The entry's lock: ``with cache.locked(): load, or train and save`` (rank 0's only)."""
        return FileLock(self._lock) if distributed.is_main() else contextlib.nullcontext()

    def load(self) -> dict | None:
        """The entry, or None when it is not there (on every rank: as rank 0 found it)."""
        import torch

        if not distributed.broadcast(self.path.exists()):
            return None
        return torch.load(self.path, map_location="cpu", weights_only=True)

    def save(self, state: dict, facts: dict) -> None:
        """Store the weights ``state`` (tensors) and ``facts`` about the training (plain values)."""
        import torch

        if not distributed.is_main():
            return
        buffer = io.BytesIO()
        torch.save(dict(state=state, **facts), buffer)
        write_bytes_atomic(self.path, buffer.getvalue())
