"""What a selector is: any object with ``select(scores, labelled, n, generator=None)``.

A selector turns one image's score map into that image's clicks for one cycle:

- ``scores``: ``[H, W]`` floating tensor, higher = acquire first (a strategy's output); NaN and
  ±inf mean "cannot score" and rank after every finite value.
- ``labelled``: bool ``[H, W]`` mask of the pixels already labelled (or None: none are).
- ``n``: clicks wanted (``n >= 0``).
- ``generator``: the run's ``torch.Generator``; the only source of randomness. ``None`` must be
  deterministic (``strategies.rng`` draws from a fresh default-seeded generator then).

It returns a LongTensor ``[k, 2]`` of ``(y, x)`` on the scores' device, in rank order (the most
wanted click first), with ``k = min(n, number of unlabelled pixels)``, no labelled pixel and no
pixel twice. Structural, not inherited: plugin authors subclass nothing, and
``strategies.testing.check_selector`` checks all of the above.
"""
from __future__ import annotations

from typing import Protocol, runtime_checkable

import torch


@runtime_checkable
class Selector(Protocol):
    """The selector protocol (for type checkers and ``isinstance``)."""

    def select(self, scores: torch.Tensor, labelled: torch.Tensor | None, n: int,
               generator: torch.Generator | None = None) -> torch.Tensor:
        """``(y, x)`` of up to ``n`` unlabelled pixels of one image, LongTensor ``[k, 2]``."""
        ...
