"""The plugin registries: standalone mmengine root registries with strict name lookup.

Two registries share one class, ``PluginRegistry``:

- ``STRATEGIES`` (scope ``"strategies"``, entry-point group ``benchmark.strategies``): what scores
  the pixels. Never a child of ``mmengine.registry.STRATEGIES``, which holds distributed-training
  strategies.
- ``SELECTORS`` (scope ``"selectors"``, entry-point group ``benchmark.selectors``): how one image's
  score map becomes n clicks.

Compared with a plain ``mmengine.Registry`` a ``PluginRegistry``

- looks names up among the registered ones only (``Registry.get`` would otherwise import any
  dotted name, e.g. ``get("numpy")`` returns the numpy module);
- fails on an unknown name with an ``UnknownPluginError`` subclass that names the kind, lists the
  registered names and suggests close ones ("did you mean");
- builds under its own scope, so no warning appears after mmseg has set the default scope (and
  never tries to import ``<scope>.registry``, which mmengine would warn about for "selectors");
- imports its built-in modules (``locations``) and the installed plugins (its entry-point group,
  through ``strategies.plugins``) on first lookup.

Below the registries: the functions over them that pick one by its entry-point group or kind
(``load_entry_points``, ``load_all_entry_points``, ``describe_strategies``,
``describe_selectors``, ``build_strategy``, ``build_selector``).
"""
from __future__ import annotations

import difflib
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

from mmengine.registry import DefaultScope, Registry

from strategies.plugins import describe, load_plugins

ENTRY_POINT_GROUP = "benchmark.strategies"
SELECTOR_ENTRY_POINT_GROUP = "benchmark.selectors"


class UnknownPluginError(KeyError):
    """A name that is not registered; the message names the kind and lists the registered names."""

    kind = "plugin"
    kind_plural = "plugins"

    def __init__(self, name: str, available: list[str]) -> None:
        self.name = name
        self.available = sorted(available)
        lowered = {n.lower(): n for n in self.available}
        close = difflib.get_close_matches(str(name).lower(), list(lowered), n=3, cutoff=0.6)
        self.suggestions = [lowered[c] for c in close]
        hint = f" Did you mean {' or '.join(map(repr, self.suggestions))}?" if close else ""
        listing = ", ".join(self.available) or "(none)"
        super().__init__(f"unknown {self.kind} {name!r}.{hint} "
                         f"Registered {self.kind_plural}: {listing}.")

    def __str__(self) -> str:  # KeyError would print the repr of the message
        return str(self.args[0])


class UnknownStrategyError(UnknownPluginError):
    """A strategy name that is not registered."""

    kind, kind_plural = "strategy", "strategies"


class UnknownSelectorError(UnknownPluginError):
    """A selector name that is not registered."""

    kind, kind_plural = "selector", "selectors"


class PluginRegistry(Registry):
    """An mmengine ``Registry`` that validates names and builds under its own scope.

    ``unknown_error`` is the ``UnknownPluginError`` subclass raised for an unknown name; its
    ``kind`` ("strategy", "selector") also names the registry's plugins in messages and warnings.
    """

    def __init__(self, name: str, *, scope: str, locations: list[str] | None = None,
                 entry_point_group: str | None = None,
                 unknown_error: type[UnknownPluginError] = UnknownPluginError) -> None:
        super().__init__(name, scope=scope, locations=list(locations or []))
        self.entry_point_group = entry_point_group
        self.unknown_error = unknown_error
        self.loaded_entry_points: set[tuple[str, str]] = set()

    @property
    def kind(self) -> str:
        """What the registry holds, in the singular ("strategy", "selector")."""
        return self.unknown_error.kind

    def import_from_location(self) -> None:
        """Import the built-in modules, then load the installed plugins (once)."""
        if self._imported:
            return
        self.import_builtins()
        if self.entry_point_group:
            load_plugins(self, self.entry_point_group)

    def import_builtins(self) -> None:
        """Import the ``locations`` modules only (mmengine's own lazy import)."""
        super().import_from_location()  # no-op once self._imported is set

    def names(self) -> list[str]:
        """The registered names, sorted (built-ins and plugins imported first)."""
        self.import_from_location()
        return sorted(self._module_dict)

    def get(self, key: str) -> Any:
        """The object registered as ``key`` (or ``"<scope>.key"``), else None. Never imports."""
        if not isinstance(key, str):
            raise TypeError(f"a {self.kind} name must be a str, got {type(key).__name__}")
        self.import_from_location()
        if key in self._module_dict:
            return self._module_dict[key]
        scope, real_key = self.split_scope_key(key)
        return self._module_dict.get(real_key) if scope == self._scope else None

    def require(self, key: str) -> Any:
        """Like ``get`` but raises ``self.unknown_error`` for an unknown name."""
        obj = self.get(key)
        if obj is None:
            raise self.unknown_error(key, self.names())
        return obj

    @contextmanager
    def switch_scope_and_registry(self, scope: str | None) -> Iterator[PluginRegistry]:
        """Build under ``scope`` with this registry itself (a standalone root has no other).

        mmengine's version first imports ``<scope>.registry`` and warns when that is no package
        (``selectors.registry`` is not: ``selectors`` is a standard-library module).
        """
        with DefaultScope.overwrite_default_scope(scope):
            yield self

    def build(self, cfg: Mapping | str, *args: Any, **kwargs: Any) -> Any:
        """Build from ``dict(type=name, **params)`` (or a bare name), under this scope."""
        cfg = dict(type=cfg) if isinstance(cfg, str) else dict(cfg)
        default_args = kwargs.get("default_args") or {}
        obj_type = cfg.get("type", default_args.get("type"))
        if isinstance(obj_type, str):
            self.require(obj_type)
        cfg.setdefault("_scope_", self._scope)
        return super().build(cfg, *args, **kwargs)

    def build_named(self, name_or_cfg: str | Mapping, **params: Any) -> Any:
        """Build from a name plus keyword parameters, or from a config dict (plus overrides)."""
        cfg = dict(type=name_or_cfg) if isinstance(name_or_cfg, str) else dict(name_or_cfg)
        if "type" not in cfg:
            raise ValueError(f"a {self.kind} config needs a 'type' key, got {cfg}")
        cfg.update(params)
        return self.build(cfg)


class StrategyRegistry(PluginRegistry):
    """A registry of acquisition strategies (unknown names raise ``UnknownStrategyError``)."""

    def __init__(self, name: str, *, scope: str, locations: list[str] | None = None,
                 entry_point_group: str | None = None) -> None:
        super().__init__(name, scope=scope, locations=locations,
                         entry_point_group=entry_point_group, unknown_error=UnknownStrategyError)


class SelectorRegistry(PluginRegistry):
    """A registry of selection rules (unknown names raise ``UnknownSelectorError``)."""

    def __init__(self, name: str, *, scope: str, locations: list[str] | None = None,
                 entry_point_group: str | None = None) -> None:
        super().__init__(name, scope=scope, locations=locations,
                         entry_point_group=entry_point_group, unknown_error=UnknownSelectorError)


STRATEGIES = StrategyRegistry("strategy", scope="strategies", locations=["strategies.builtin"],
                              entry_point_group=ENTRY_POINT_GROUP)
SELECTORS = SelectorRegistry("selector", scope="selectors", locations=["strategies.selectors"],
                             entry_point_group=SELECTOR_ENTRY_POINT_GROUP)


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
    return load_plugins(_registry_for(group) if registry is None else registry, group)


def load_all_entry_points() -> dict[str, list[str]]:
    """Load the plugins of every registry; ``{group: names loaded by this call}``."""
    return {group: load_entry_points(group)
            for group in (ENTRY_POINT_GROUP, SELECTOR_ENTRY_POINT_GROUP)}


def describe_strategies(registry: PluginRegistry | None = None) -> list[tuple[str, str, str]]:
    """``describe`` for the strategies (``STRATEGIES`` unless another registry is given)."""
    return describe(STRATEGIES if registry is None else registry)


def describe_selectors(registry: PluginRegistry | None = None) -> list[tuple[str, str, str]]:
    """``describe`` for the selectors (``SELECTORS`` unless another registry is given)."""
    return describe(SELECTORS if registry is None else registry)


def build_strategy(name_or_cfg: str | Mapping, **params: Any) -> Any:
    """Build a registered strategy from a name (plus keyword parameters) or a config dict.

    ``build_strategy("pbald", beta=2.0)`` == ``build_strategy(dict(type="pbald", beta=2.0))``.
    Raises ``UnknownStrategyError`` (a KeyError) listing the registered names.
    """
    return STRATEGIES.build_named(name_or_cfg, **params)


def build_selector(name_or_cfg: str | Mapping, **params: Any) -> Any:
    """Build a registered selector from a name (plus keyword parameters) or a config dict.

    ``build_selector("spread", r=12)`` == ``build_selector(dict(type="spread", r=12))``.
    Raises ``UnknownSelectorError`` (a KeyError) listing the registered names.
    """
    return SELECTORS.build_named(name_or_cfg, **params)
