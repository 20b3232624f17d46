"""Third-party plugins: entry-point loading and the listings ``benchmark list`` prints.

Both registries take plugins the same way. An installed package declares, in its pyproject::

    [project.entry-points."benchmark.strategies"]
    my_strategy = "my_package.strategy"              # a module that registers on import
    other = "my_package.strategy:OtherStrategy"      # or an object, registered under "other"

    [project.entry-points."benchmark.selectors"]
    my_rule = "my_package.selection:MyRule"

Loading a module entry point imports it (its ``@STRATEGIES.register_module()`` or
``@SELECTORS.register_module()`` decorators run); an object entry point that is not registered
yet is registered under the entry point's name.
"""
from __future__ import annotations

import inspect
import warnings
from importlib import metadata
from types import ModuleType
from typing import Any

from strategies.registry import ENTRY_POINT_GROUP, SELECTOR_ENTRY_POINT_GROUP, SELECTORS, STRATEGIES, PluginRegistry


class PluginWarning(UserWarning):
    """A plugin could not be loaded or registered; it was skipped."""


class StrategyPluginWarning(PluginWarning):
    """A strategy plugin could not be loaded or registered; it was skipped."""


class SelectorPluginWarning(PluginWarning):
    """A selector plugin could not be loaded or registered; it was skipped."""


_WARNING_BY_KIND = {"strategy": StrategyPluginWarning, "selector": SelectorPluginWarning}


def _registry_for(group: str) -> PluginRegistry:
    by_group = {ENTRY_POINT_GROUP: STRATEGIES, SELECTOR_ENTRY_POINT_GROUP: SELECTORS}
    if group not in by_group:
        raise ValueError(f"no registry serves entry-point group {group!r}; pass registry=, or "
                         f"use one of {', '.join(sorted(by_group))}")
    return by_group[group]


def load_entry_points(group: str = ENTRY_POINT_GROUP,
                      registry: PluginRegistry | None = None) -> list[str]:
    """Load every installed entry point of ``group`` once; return the names loaded by this call.

    ``registry`` defaults to the one that serves ``group`` (``STRATEGIES`` for
    ``benchmark.strategies``, ``SELECTORS`` for ``benchmark.selectors``). Idempotent: an entry
    point already tried is skipped. A broken plugin gives a ``PluginWarning`` subclass naming the
    entry point (``StrategyPluginWarning``, ``SelectorPluginWarning``), never an exception.
    """
    registry = _registry_for(group) if registry is None else registry
    registry.import_builtins()  # built-ins first: a plugin must not take a built-in's name
    category = _WARNING_BY_KIND.get(registry.kind, PluginWarning)
    loaded = []
    for ep in sorted(metadata.entry_points(group=group), key=lambda e: (e.name, e.value)):
        key = (ep.name, ep.value)
        if key in registry.loaded_entry_points:
            continue
        registry.loaded_entry_points.add(key)
        try:
            _register(ep.name, ep.load(), registry)
        except Exception as exc:  # a plugin's bug must not stop the benchmark
            warnings.warn(f"skipped {registry.kind} plugin: entry point {ep.name!r} = "
                          f"{ep.value!r} (group {group!r}) failed to load: "
                          f"{type(exc).__name__}: {exc}", category, stacklevel=2)
            continue
        loaded.append(ep.name)
    return loaded


def load_all_entry_points() -> dict[str, list[str]]:
    """Load the plugins of every registry; ``{group: names loaded by this call}``."""
    return {group: load_entry_points(group)
            for group in (ENTRY_POINT_GROUP, SELECTOR_ENTRY_POINT_GROUP)}


def _register(name: str, obj: Any, registry: PluginRegistry) -> None:
    """Register an entry point's object under ``name`` unless it is a module or already there."""
    if isinstance(obj, ModuleType):
        return  # importing it ran its registration decorators
    if any(obj is registered for registered in registry.module_dict.values()):
        return
    if not callable(obj):
        raise TypeError(f"expected a module, a {registry.kind} class or a factory, got {obj!r}")
    registry.register_module(name=name, module=obj)


def _first_doc_line(obj: Any) -> str:
    doc = inspect.cleandoc(getattr(obj, "__doc__", None) or "")
    return doc.splitlines()[0].strip() if doc else "(no description)"


def describe(registry: PluginRegistry) -> list[tuple[str, str, str]]:
    """``(name, one-line description, package)`` for every entry of ``registry``, by name.

    The description is the first line of the class docstring; the package is the top-level
    module the class comes from (``"strategies"`` for the built-ins).
    """
    rows = []
    for name in registry.names():
        obj = registry.module_dict[name]
        package = (getattr(obj, "__module__", None) or "?").split(".")[0]
        rows.append((name, _first_doc_line(obj), package))
    return rows


def describe_strategies(registry: PluginRegistry | None = None) -> list[tuple[str, str, str]]:
    """``describe`` for the strategies (``STRATEGIES`` unless another registry is given)."""
    return describe(STRATEGIES if registry is None else registry)


def describe_selectors(registry: PluginRegistry | None = None) -> list[tuple[str, str, str]]:
    """``describe`` for the selectors (``SELECTORS`` unless another registry is given)."""
    return describe(SELECTORS if registry is None else registry)
