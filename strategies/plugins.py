"""Third-party plugins: how a registry takes the installed entry points of its group, and the
listing of a registry that ``benchmark list`` prints.

Both registries (``strategies.registry``) take plugins the same way. An installed package
declares, in its pyproject::

    [project.entry-points."benchmark.strategies"]
    my_strategy = "my_package.strategy"              # a module that registers on import
    other = "my_package.strategy:OtherStrategy"      # or an object, registered under "other"

    [project.entry-points."benchmark.selectors"]
    my_rule = "my_package.selection:MyRule"

Loading a module entry point imports it (its ``@STRATEGIES.register_module()`` or
``@SELECTORS.register_module()`` decorators run); an object entry point that is not registered
yet is registered under the entry point's name. This module knows a registry only by the few
members it uses (``PluginHost``); ``strategies.registry`` calls it, never the other way round.
"""
from __future__ import annotations

import inspect
import warnings
from collections.abc import Mapping
from importlib import metadata
from types import ModuleType
from typing import Any, Protocol


class PluginHost(Protocol):
    """What loading and listing plugins needs of a registry (``PluginRegistry`` has it)."""

    kind: str  # "strategy", "selector": names the plugins in warnings
    loaded_entry_points: set[tuple[str, str]]  # (name, value) of the entry points tried

    @property
    def module_dict(self) -> Mapping[str, Any]: ...

    def import_builtins(self) -> None: ...

    def names(self) -> list[str]: ...

    def register_module(self, name: str | None = None, force: bool = False,
                        module: Any = None) -> Any: ...


class PluginWarning(UserWarning):
    """A plugin could not be loaded or registered; it was skipped."""


class StrategyPluginWarning(PluginWarning):
    """A strategy plugin could not be loaded or registered; it was skipped."""


class SelectorPluginWarning(PluginWarning):
    """A selector plugin could not be loaded or registered; it was skipped."""


_WARNING_BY_KIND = {"strategy": StrategyPluginWarning, "selector": SelectorPluginWarning}


def load_plugins(registry: PluginHost, group: str) -> list[str]:
    """Load every installed entry point of ``group`` into ``registry`` once; return the names
    loaded by this call.

    The registry's built-ins are imported first (a plugin must not take a built-in's name).
    Idempotent: an entry point already tried is skipped. A broken plugin gives a
    ``PluginWarning`` subclass naming the entry point (``StrategyPluginWarning``,
    ``SelectorPluginWarning``), never an exception.
    """
    registry.import_builtins()
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
                          f"{type(exc).__name__}: {exc}", category, stacklevel=3)
            continue
        loaded.append(ep.name)
    return loaded


def _register(name: str, obj: Any, registry: PluginHost) -> None:
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


def describe(registry: PluginHost) -> list[tuple[str, str, str]]:
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
