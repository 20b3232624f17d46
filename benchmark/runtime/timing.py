"""Stage timings that charge queued GPU work to the stage that queued it."""
from __future__ import annotations

import time
from contextlib import contextmanager

import torch


def synchronize(device) -> None:
    """Wait for the work queued on ``device`` (a no-op on the CPU)."""
    if torch.device(device).type == "cuda":
        torch.cuda.synchronize(device)


@contextmanager
def stage(seconds: dict, name: str, device):
    """Add the wall time of the block (queued GPU work included) to ``seconds[name]``."""
    start = time.perf_counter()
    try:
        yield
    finally:
        synchronize(device)
        seconds[name] = seconds.get(name, 0.0) + time.perf_counter() - start
