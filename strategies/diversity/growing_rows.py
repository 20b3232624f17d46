"""Rows appended a block at a time (one image's picks after another) and read as one tensor: a
buffer that doubles when full, so a cycle over many images costs amortised O(1) per row and the
distances to every centre so far are one block, not one per image."""
from __future__ import annotations

import torch


class GrowingRows:
    """An ``[n, d]`` tensor grown by ``append``; ``tensor()`` is a view of the rows so far."""

    def __init__(self) -> None:
        self._buffer: torch.Tensor | None = None
        self._count = 0

    def __len__(self) -> int:
        return self._count

    def append(self, rows: torch.Tensor) -> None:
        """Add ``rows [k, d]`` (the dtype, device and d of the first block)."""
        if self._buffer is None:
            self._buffer = torch.empty((max(rows.shape[0], 16),) + tuple(rows.shape[1:]), dtype=rows.dtype,
                                       device=rows.device)
        needed = self._count + rows.shape[0]
        if needed > self._buffer.shape[0]:
            grown = torch.empty((max(needed, 2 * self._buffer.shape[0]),) + tuple(self._buffer.shape[1:]),
                                dtype=self._buffer.dtype, device=self._buffer.device)
            grown[:self._count] = self._buffer[:self._count]
            self._buffer = grown
        self._buffer[self._count:needed] = rows
        self._count = needed

    def tensor(self) -> torch.Tensor | None:
        """The rows so far, ``[n, d]`` (None before the first append)."""
        return None if self._buffer is None else self._buffer[:self._count]
