"""The strategy registry: a standalone mmengine root registry with strict name lookup.

``STRATEGIES`` is its own root registry with scope ``"strategies"`` (never a child of
``mmengine.registry.STRATEGIES``, which holds distributed-training strategies). Compared with a
plain ``mmengine.Registry`` it

- looks names up among the registered ones only (``Registry.get`` would otherwise import any
  dotted name, e.g. ``get("numpy")`` returns the numpy module);
- fails on an unknown name with ``UnknownStrategyError``, listing the registered names and a
  "did you mean" suggestion;
- builds under its own scope, so no warning appears after mmseg has set the default scope;
- imports the built-in strategies (``locations``) and the installed plugins (entry-point group
  ``benchmark.strategies``) on first lookup.
"""
from __future__ import annotations

import difflib
from collections.abc import Mapping
from typing import Any

from mmengine.registry import Registry

ENTRY_POINT_GROUP = "benchmark.strategies"


class UnknownStrategyError(KeyError):
    """A strategy name that is not registered; the message lists the registered names."""

    def __init__(self, name: str, available: list[str]) -> None:
        self.name = name
        self.available = sorted(available)
        lowered = {n.lower(): n for n in self.available}
        close = difflib.get_close_matches(str(name).lower(), list(lowered), n=3, cutoff=0.6)
        self.suggestions = [lowered[c] for c in close]
        hint = f" Did you mean {' or '.join(map(repr, self.suggestions))}?" if close else ""
        listing = ", ".join(self.available) or "(none)"
        super().__init__(f"unknown strategy {name!r}.{hint} Registered strategies: {listing}.")

    def __str__(self) -> str:  # KeyError would print the repr of the message
        return str(self.args[0])


class StrategyRegistry(Registry):
    """An mmengine ``Registry`` that validates names and builds under its own scope."""

    def __init__(self, name: str, *, scope: str, locations: list[str] | None = None,
                 entry_point_group: str | None = None) -> None:
        super().__init__(name, scope=scope, locations=list(locations or []))
        self.entry_point_group = entry_point_group
        self.loaded_entry_points: set[tuple[str, str]] = set()

    def import_from_location(self) -> None:
        """Import the built-in modules, then load the installed plugins (once)."""
        if self._imported:
            return
        self.import_builtins()
        if self.entry_point_group:
            from strategies.plugins import load_entry_points
            load_entry_points(self.entry_point_group, registry=self)

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
            raise TypeError(f"a strategy name must be a str, got {type(key).__name__}")
        self.import_from_location()
        if key in self._module_dict:
            return self._module_dict[key]
        scope, real_key = self.split_scope_key(key)
        return self._module_dict.get(real_key) if scope == self._scope else None

    def require(self, key: str) -> Any:
        """Like ``get`` but raises ``UnknownStrategyError`` for an unknown name."""
        obj = self.get(key)
        if obj is None:
            raise UnknownStrategyError(key, self.names())
        return obj

    def build(self, cfg: Mapping | str, *args: Any, **kwargs: Any) -> Any:
        """Build from ``dict(type=name, **params)`` (or a bare name), under this scope."""
        cfg = dict(type=cfg) if isinstance(cfg, str) else dict(cfg)
        default_args = kwargs.get("default_args") or {}
        obj_type = cfg.get("type", default_args.get("type"))
        if isinstance(obj_type, str):
            self.require(obj_type)
        cfg.setdefault("_scope_", self._scope)
        return super().build(cfg, *args, **kwargs)


STRATEGIES = StrategyRegistry("strategy", scope="strategies", locations=["strategies.builtin"],
                              entry_point_group=ENTRY_POINT_GROUP)


def build_strategy(name_or_cfg: str | Mapping, **params: Any) -> Any:
    """Build a registered strategy from a name (plus keyword parameters) or a config dict.

    ``build_strategy("pbald", beta=2.0)`` == ``build_strategy(dict(type="pbald", beta=2.0))``.
    Raises ``UnknownStrategyError`` (a KeyError) listing the registered names.
    """
    cfg = dict(type=name_or_cfg) if isinstance(name_or_cfg, str) else dict(name_or_cfg)
    if "type" not in cfg:
        raise ValueError(f"a strategy config needs a 'type' key, got {cfg}")
    cfg.update(params)
    return STRATEGIES.build(cfg)
