"""The query unit (``--unit``), the superpixel settings and the cost model of a plan, resolved from
the flags and the preset and checked once: they become RunSpec fields (``unit_fields``).

Preset keys, all optional (defaults: ``benchmark.config.modes``)::

    active_learning = dict(
        superpixels=dict(algorithm='slic', region_pixels=64, compactness=10.0, sigma=1.0,
                         felzenszwalb_scale=100.0, min_size=20, aggregation='mean', topk=8),
        costs=dict(pixel=1.0, superpixel=1.0),   # cost units of one query of each unit
        budget_per_image=5.0)                    # cost units per image per cycle (default:
                                                 # pixels_per_image pixel clicks)
"""
from __future__ import annotations

import importlib.util
import numbers

from benchmark.config.modes import (
    AGGREGATIONS,
    DEFAULT_COSTS,
    DEFAULT_SUPERPIXELS,
    SUPERPIXEL_ALGORITHMS,
    UNIT_PIXEL,
    UNIT_SUPERPIXEL,
    UNITS,
)
from benchmark.errors import UsageError

POSITIVE_SETTINGS = ("region_pixels", "compactness", "felzenszwalb_scale", "topk")
NON_NEGATIVE_SETTINGS = ("sigma", "min_size")
REGION_SELECTORS = ("topn", "pixelpick")  # rank regions; spread measures pixel distances


def _number(value) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def resolve_units(text: str | None, al) -> list[str]:
    """'pixel', 'superpixel' or both (comma-separated; default: the preset's ``unit``, else pixel)."""
    text = text if text is not None else al.get("unit", UNIT_PIXEL)
    names = list(dict.fromkeys(n.strip() for n in str(text).split(",") if n.strip()))
    bad = [n for n in names if n not in UNITS]
    if not names or bad:
        raise UsageError(f"--unit {text!r}: use {' or '.join(UNITS)} (or both, comma-separated)")
    return names


def superpixel_settings(args, al) -> dict:
    """The superpixel unit's settings: the preset's over the defaults, ``--region-aggregation`` last."""
    if importlib.util.find_spec("skimage") is None:
        raise UsageError("--unit superpixel needs scikit-image (its SLIC and Felzenszwalb superpixels): "
                         "pip install scikit-image")
    given = dict(al.get("superpixels", {}))
    unknown = sorted(set(given) - set(DEFAULT_SUPERPIXELS))
    if unknown:
        raise UsageError(f"active_learning.superpixels has unknown key(s) {', '.join(unknown)}: use "
                         f"{', '.join(DEFAULT_SUPERPIXELS)}")
    settings = {**DEFAULT_SUPERPIXELS, **given}
    if getattr(args, "region_aggregation", None) is not None:
        settings["aggregation"] = args.region_aggregation
    if settings["algorithm"] not in SUPERPIXEL_ALGORITHMS:
        raise UsageError(f"superpixel algorithm {settings['algorithm']!r}: use {' or '.join(SUPERPIXEL_ALGORITHMS)}")
    if settings["aggregation"] not in AGGREGATIONS:
        raise UsageError(f"region aggregation {settings['aggregation']!r}: use {', '.join(AGGREGATIONS)}")
    for key in POSITIVE_SETTINGS + NON_NEGATIVE_SETTINGS:
        value = settings[key]
        if not _number(value) or value < 0 or (key in POSITIVE_SETTINGS and value == 0):
            sign = "positive" if key in POSITIVE_SETTINGS else "non-negative"
            raise UsageError(f"active_learning.superpixels.{key} must be a {sign} number; got {value!r}")
    if settings["topk"] != int(settings["topk"]):
        raise UsageError(f"active_learning.superpixels.topk must be an integer; got {settings['topk']!r}")
    settings["topk"] = int(settings["topk"])
    return {k: settings[k] for k in sorted(settings)}


def unit_costs(al) -> dict:
    """Cost units of one query of each unit (``active_learning.costs`` over the defaults)."""
    given = dict(al.get("costs", {}))
    unknown = sorted(set(given) - set(UNITS))
    if unknown:
        raise UsageError(f"active_learning.costs has unknown unit(s) {', '.join(unknown)}: use {', '.join(UNITS)}")
    costs = {**DEFAULT_COSTS, **given}
    for unit, cost in costs.items():
        if not _number(cost) or not cost > 0:
            raise UsageError(f"active_learning.costs.{unit} must be a positive number; got {cost!r}")
    return {unit: float(cost) for unit, cost in costs.items()}


def budget_per_image(args, al, pixels_per_image: int, costs: dict) -> float:
    """Cost units per image per cycle: ``--budget``, else the preset's, else pixels_per_image clicks."""
    value = getattr(args, "budget", None)
    source = "--budget"
    if value is None:
        value, source = al.get("budget_per_image", pixels_per_image * costs[UNIT_PIXEL]), "active_learning.budget_per_image"
    if not _number(value) or not value > 0:
        raise UsageError(f"{source} must be a positive number of cost units; got {value!r}")
    return float(value)


def units_for(name: str, units: list[str]) -> list[str]:
    """The units strategy ``name`` runs with: all of them, or for a strategy that chooses its own
    clicks (its pixels cannot be aggregated into regions) the pixel unit alone, which ``units``
    must then hold."""
    from strategies import STRATEGIES, chooses_clicks

    if UNIT_SUPERPIXEL not in units or not chooses_clicks(STRATEGIES.get(name)):
        return units
    if UNIT_PIXEL in units:
        return [UNIT_PIXEL]
    raise UsageError(f"--unit {','.join(units)}: strategy {name} chooses its own clicks, so its scores cannot rank "
                     f"superpixels; add {UNIT_PIXEL} to --unit (it then runs with pixel clicks only) or drop {name}")


def unit_fields(args, al, pixels_per_image: int, selections: list[str]) -> dict[str, dict]:
    """Per unit of the plan, the RunSpec fields that say what its queries are and cost."""
    units = resolve_units(getattr(args, "unit", None), al)
    costs = unit_costs(al)
    budget = budget_per_image(args, al, pixels_per_image, costs)
    out = {}
    for unit in units:
        if budget + 1e-9 < costs[unit]:
            raise UsageError(f"a budget of {budget:g} cost units per image per cycle does not pay for one "
                             f"{unit} query (cost {costs[unit]:g}): raise --budget or lower active_learning.costs")
        fields = dict(unit=unit, unit_cost=costs[unit], pixel_cost=costs[UNIT_PIXEL], budget_per_image=budget,
                      superpixels=None)
        if unit == UNIT_SUPERPIXEL:
            wrong = [s for s in selections if s not in REGION_SELECTORS]
            if wrong:
                raise UsageError(f"--selection {','.join(wrong)} cannot pick superpixels (it measures pixel "
                                 f"distances): use {' or '.join(REGION_SELECTORS)} with --unit superpixel")
            fields["superpixels"] = superpixel_settings(args, al)
        out[unit] = fields
    return out
