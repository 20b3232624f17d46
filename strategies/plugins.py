"""Third-party strategies: entry-point loading and the listing ``benchmark list`` prints.

An installed package declares, in its pyproject::

    [project.entry-points."benchmark.strategies"]
    my_strategy = "my_package.strategy"              # a module that registers on import
    other = "my_package.strategy:OtherStrategy"      # or an object, registered under "other"

Loading a module entry point imports it (its ``@STRATEGIES.register_module()`` decorators run);
an object entry point that is not registered yet is registered under the entry point's name.
"""
from __future__ import annotations

import inspect
import warnings
from importlib import metadata
from types import ModuleType
from typing import Any

from strategies.registry import ENTRY_POINT_GROUP, STRATEGIES, StrategyRegistry


class StrategyPluginWarning(UserWarning):
    """A strategy plugin could not be loaded or registered; it was skipped."""


def load_entry_points(group: str = ENTRY_POINT_GROUP,
                      registry: StrategyRegistry | None = None) -> list[str]:
    """Load every installed entry point of ``group`` once; return the names loaded by this call.

    Idempotent: an entry point already tried is skipped. A broken plugin gives a
    ``StrategyPluginWarning`` naming the entry point, never an exception.
    """
    registry = STRATEGIES if registry is None else registry
    registry.import_builtins()  # built-ins first: a plugin must not take a built-in's name
    loaded = []
    for ep in sorted(metadata.entry_points(group=group), key=lambda e: (e.name, e.value)):
        key = (ep.name, ep.value)
        if key in registry.loaded_entry_points:
            continue
        registry.loaded_entry_points.add(key)
        try:
            _register(ep.name, ep.load(), registry)
        except Exception as exc:  # a plugin's bug must not stop the benchmark
            warnings.warn(f"skipped strategy plugin: entry point {ep.name!r} = {ep.value!r} "
                          f"(group {group!r}) failed to load: {type(exc).__name__}: {exc}",
                          StrategyPluginWarning, stacklevel=2)
            continue
        loaded.append(ep.name)
    return loaded


def _register(name: str, obj: Any, registry: StrategyRegistry) -> None:
    """Register an entry point's object under ``name`` unless it is a module or already there."""
    if isinstance(obj, ModuleType):
        return  # importing it ran its registration decorators
    if any(obj is registered for registered in registry.module_dict.values()):
        return
    if not callable(obj):
        raise TypeError(f"expected a module, a strategy class or a factory, got {obj!r}")
    registry.register_module(name=name, module=obj)


def _first_doc_line(obj: Any) -> str:
    doc = inspect.cleandoc(getattr(obj, "__doc__", None) or "")
    return doc.splitlines()[0].strip() if doc else "(no description)"


def describe_strategies(registry: StrategyRegistry | None = None) -> list[tuple[str, str, str]]:
    """``(name, one-line description, package)`` for every registered strategy, sorted by name.

    The description is the first line of the class docstring; the package is the top-level
    module the class comes from (``"strategies"`` for the built-ins).
    """
    registry = STRATEGIES if registry is None else registry
    rows = []
    for name in registry.names():
        obj = registry.module_dict[name]
        package = (getattr(obj, "__module__", None) or "?").split(".")[0]
        rows.append((name, _first_doc_line(obj), package))
    return rows
