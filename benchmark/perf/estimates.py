"""Costs the perf suite derives by subtraction, and how they are printed.

A per-iteration time ``(T(n2) - T(n1)) / (n2 - n1)``, a per-sample head ``(MC - features) / m`` or
"the rest" of an iteration (its time minus its stages measured apart) is the difference of two
timings. On a fast device the difference can fall below the timings' noise and come out zero or
negative: that is no cost, and nothing derived from it (a share, a ratio, a cycle's time) means
anything. Such an estimate is ``None`` here and prints as "too fast to estimate".
"""
from __future__ import annotations

import math
from typing import Iterable

TOO_FAST = "too fast to estimate"
NOT_AVAILABLE = "n/a"


def per_unit(longer: float, shorter: float, units: float) -> float | None:
    """``(longer - shorter) / units``: the cost of one unit from two timings ``units`` apart; None
    when that is not a positive finite number (the unit costs less than the timings' noise)."""
    if units <= 0:
        raise ValueError(f"the two timings must be a positive number of units apart, got {units}")
    value = (longer - shorter) / units
    return value if math.isfinite(value) and value > 0 else None


def remainder(total: float | None, parts: Iterable[float]) -> float | None:
    """``total - sum(parts)``: what the parts measured apart leave of the total; None when the
    total is unknown or the parts add up to at least the total."""
    if total is None:
        return None
    return per_unit(total, sum(parts), 1)


def scaled(value: float | None, factor: float) -> float | None:
    """``value * factor``, None staying None (e.g. a per-iteration time times the iterations)."""
    return None if value is None else value * factor


def ratio(numerator: float | None, denominator: float | None) -> float | None:
    """``numerator / denominator`` when both are known and the result is positive and finite."""
    if numerator is None or denominator is None or denominator == 0:
        return None
    value = numerator / denominator
    return value if math.isfinite(value) and value > 0 else None


def shown(value: float | None, fmt: str, factor: float = 1.0, missing: str = TOO_FAST) -> str:
    """``format(value * factor, fmt)``, or ``missing`` (by default "too fast to estimate")."""
    return missing if value is None else format(value * factor, fmt)
