"""Both plugin registries, strategies and selectors, under the same tests: strict lookup, clear
errors, their own scope, decorator and entry-point registration, listing, installed plugins.

Each test runs once per ``Kind`` (what differs between the two registries is data: names,
classes, a toy plugin). Registration tests use throwaway registries; the tests that install a
package run pip and then a fresh interpreter, so the process-wide registries are never changed.
"""
from __future__ import annotations

import logging
import os
import subprocess
import sys
import textwrap
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
import torch

from strategies import (
    ENTRY_POINT_GROUP,
    SELECTOR_ENTRY_POINT_GROUP,
    SELECTORS,
    STRATEGIES,
    PixelPosterior,
    PluginRegistry,
    SelectorPluginWarning,
    SelectorRegistry,
    StrategyPluginWarning,
    StrategyRegistry,
    UnknownPluginError,
    UnknownSelectorError,
    UnknownStrategyError,
    build_selector,
    build_strategy,
    describe_selectors,
    describe_strategies,
    load_entry_points,
    select_top_n,
)
from strategies.testing import check_selector, check_strategy, mc_samples

REPO = Path(__file__).resolve().parents[2]


class LeastConfidence:
    """One minus the largest mean class probability."""

    def score(self, post, generator=None):
        return 1.0 - post.mean.max(dim=-3).values


class EveryOtherRow:
    """Top-n on even rows only: a toy third-party selector."""

    def select(self, scores, labelled, n, generator=None):
        odd = torch.zeros_like(scores, dtype=torch.bool)
        odd[1::2] = True
        taken = odd if labelled is None else odd | labelled
        picks = select_top_n(scores, taken, n, generator)
        if len(picks) < n:  # not enough even-row pixels: fill from the odd rows
            rest = select_top_n(scores, ~odd if labelled is None else ~odd | labelled,
                                n - len(picks), generator)
            picks = torch.cat([picks, rest])
        return picks


def _least_confidence_works(plugin) -> None:
    post = PixelPosterior.from_samples(mc_samples())
    torch.testing.assert_close(plugin.score(post), 1.0 - post.mean.max(dim=0).values)


def _every_other_row_works(plugin) -> None:
    picks = plugin.select(torch.rand(6, 4, generator=torch.Generator().manual_seed(0)), None, 5)
    assert bool((picks[:, 0] % 2 == 0).all())


@dataclass(frozen=True)
class Kind:
    """What one registry's tests need to know about it."""

    kind: str  # "strategy", "selector"
    registry: PluginRegistry
    registry_class: type[PluginRegistry]
    unknown_error: type[UnknownPluginError]
    other_unknown_error: type[UnknownPluginError]
    plugin_warning: type[Warning]
    group: str
    scope: str
    build: Callable
    describe: Callable
    check: Callable
    builtins: frozenset[str]
    typo: tuple[str, str]  # a misspelt name and the suggestion it must get
    parameter: tuple[str, str, float]  # a built-in, a parameter and a value it takes
    toy: type
    toy_works: Callable
    installed: tuple[str, str, str]  # a plugin's entry-point line, its module's code, the check script


KINDS = {
    "strategy": Kind(
        kind="strategy", registry=STRATEGIES, registry_class=StrategyRegistry,
        unknown_error=UnknownStrategyError, other_unknown_error=UnknownSelectorError,
        plugin_warning=StrategyPluginWarning, group=ENTRY_POINT_GROUP, scope="strategies",
        build=build_strategy, describe=describe_strategies, check=check_strategy,
        builtins=frozenset({"bald", "balent", "balent_ref", "entropy", "margin", "pbald", "random"}),
        typo=("balentt", "balent"), parameter=("pbald", "beta", 2.5),
        toy=LeastConfidence, toy_works=_least_confidence_works,
        installed=(
            'least_confidence = "tiny_plugin.code"\nvariance_sum = "tiny_plugin.code:VarianceSum"',
            '''\
            from strategies import STRATEGIES


            @STRATEGIES.register_module(name="least_confidence")
            class LeastConfidence:
                """Least confidence: one minus the largest mean class probability."""

                def score(self, post, generator=None):
                    return 1.0 - post.mean.max(dim=-3).values


            class VarianceSum:
                """Sum over classes of the MC variance."""

                def score(self, post, generator=None):
                    return post.variance.sum(dim=-3)
            ''',
            '''\
            from strategies import PixelPosterior, build_strategy
            from strategies.testing import check_strategy, mc_samples
            post = PixelPosterior.from_samples(mc_samples())
            for name in ("least_confidence", "variance_sum"):
                strategy = build_strategy(name)
                check_strategy(strategy)
                print(name, type(strategy).__module__, tuple(strategy.score(post).shape))
            ''')),
    "selector": Kind(
        kind="selector", registry=SELECTORS, registry_class=SelectorRegistry,
        unknown_error=UnknownSelectorError, other_unknown_error=UnknownStrategyError,
        plugin_warning=SelectorPluginWarning, group=SELECTOR_ENTRY_POINT_GROUP, scope="selectors",
        build=build_selector, describe=describe_selectors, check=check_selector,
        builtins=frozenset({"pixelpick", "spread", "topn"}),
        typo=("spred", "spread"), parameter=("spread", "r", 3.0),
        toy=EveryOtherRow, toy_works=_every_other_row_works,
        installed=(
            'first_row = "tiny_plugin.code:FirstRow"',
            '''\
            import torch

            from strategies import select_top_n


            class FirstRow:
                """First row: top-n with the first unlabelled pixels in memory order ranked up."""

                def select(self, scores, labelled, n, generator=None):
                    order = -torch.arange(scores.numel(), dtype=torch.float64)
                    return select_top_n(order.reshape(scores.shape), labelled, n, generator)
            ''',
            '''\
            import torch
            from strategies import build_selector
            from strategies.testing import check_selector
            selector = build_selector("first_row")
            check_selector(selector)
            print("first_row", type(selector).__module__, selector.select(torch.zeros(3, 4), None, 2).tolist())
            ''')),
}


@pytest.fixture(params=sorted(KINDS))
def kind(request) -> Kind:
    return KINDS[request.param]


@pytest.fixture
def throwaway(kind: Kind) -> PluginRegistry:
    return kind.registry_class("throwaway", scope=f"throwaway_{kind.scope}")


def test_unknown_name_names_the_kind_lists_the_registered_ones_and_suggests(kind: Kind) -> None:
    misspelt, meant = kind.typo
    with pytest.raises(kind.unknown_error) as info:
        kind.build(misspelt)
    message = str(info.value)
    plural = kind.unknown_error.kind_plural
    assert f"unknown {kind.kind} '{misspelt}'" in message and f"Did you mean '{meant}'" in message
    assert f"Registered {plural}: {', '.join(sorted(kind.registry.names()))}." in message
    assert kind.builtins <= set(kind.registry.names())
    assert info.value.suggestions[0] == meant
    assert isinstance(info.value, KeyError) and isinstance(info.value, UnknownPluginError)
    assert not isinstance(info.value, kind.other_unknown_error)


def test_unknown_strategy_message_is_unchanged() -> None:
    message = str(UnknownStrategyError("entropyy", ["entropy", "bald"]))
    assert message == ("unknown strategy 'entropyy'. Did you mean 'entropy'? "
                       "Registered strategies: bald, entropy.")


def test_lookup_never_imports_dotted_names(kind: Kind) -> None:
    # a plain mmengine Registry.get("numpy") returns the numpy module
    assert kind.registry.get("numpy") is None
    assert kind.registry.get("os.path") is None
    with pytest.raises(kind.unknown_error):
        kind.build("numpy")


def test_scoped_names_resolve_only_in_their_own_scope(kind: Kind) -> None:
    name = sorted(kind.builtins)[0]
    other = KINDS["selector" if kind.kind == "strategy" else "strategy"]
    assert kind.registry.get(f"{kind.scope}.{name}") is kind.registry.get(name) is not None
    assert kind.registry.get(f"mmseg.{name}") is None
    assert kind.registry.get(f"{other.scope}.{name}") is None


def test_a_root_registry_of_its_own(kind: Kind) -> None:
    from mmengine.registry import STRATEGIES as MMENGINE_STRATEGIES

    assert isinstance(kind.registry, kind.registry_class) and kind.registry.parent is None
    assert kind.registry.kind == kind.kind
    assert kind.registry is not MMENGINE_STRATEGIES  # mmengine's holds distributed-training strategies
    assert not kind.builtins & set(MMENGINE_STRATEGIES.module_dict)
    assert not set(STRATEGIES.names()) & set(SELECTORS.names())


def test_building_under_mmseg_default_scope_logs_no_warning() -> None:
    """mmengine would import ``selectors.registry`` (the stdlib's selectors has none) and warn."""
    from mmengine.logging import MMLogger
    from mmengine.registry import DefaultScope

    records: list[logging.LogRecord] = []
    handler = logging.Handler(level=logging.INFO)
    handler.emit = records.append
    logger = MMLogger.get_current_instance()
    logger.addHandler(handler)
    try:
        with DefaultScope.overwrite_default_scope("mmseg"):
            build_selector("spread", r=4)
            build_strategy("balent")
            assert DefaultScope.get_current_instance().scope_name == "mmseg"
    finally:
        logger.removeHandler(handler)
    assert [r.getMessage() for r in records if r.levelno >= logging.WARNING] == []


def test_build_passes_parameters(kind: Kind) -> None:
    name, parameter, value = kind.parameter
    assert getattr(kind.build(name, **{parameter: value}), parameter) == value
    assert getattr(kind.build(dict(type=name, **{parameter: value})), parameter) == value
    assert getattr(kind.build(dict(type=name, **{parameter: 1.0}), **{parameter: value}), parameter) == value
    with pytest.raises(ValueError, match="needs a 'type' key"):
        kind.build(dict(**{parameter: value}))
    with pytest.raises(ValueError):
        kind.build(name, **{parameter: -1.0})  # out of range: the class says so


def test_decorator_registers_a_plain_class(kind: Kind, throwaway: PluginRegistry) -> None:
    throwaway.register_module(name="toy", module=kind.toy)
    plugin = throwaway.build(dict(type="toy"))
    kind.check(plugin)
    kind.toy_works(plugin)
    assert kind.describe(throwaway) == [("toy", kind.toy.__doc__.strip(), __name__.split(".")[0])]
    with pytest.raises(kind.unknown_error, match="Did you mean 'toy'"):
        throwaway.require("toyy")


def test_builtins_describe_themselves(kind: Kind) -> None:
    rows = {name: (doc, package) for name, doc, package in kind.describe()}
    assert kind.builtins <= set(rows)
    assert all(rows[name][1] == "strategies" for name in kind.builtins)
    assert all(doc and doc != "(no description)" for doc, _ in rows.values())
    first_words = {"pbald": "PowerBALD", "topn": "Top-n", "pixelpick": "PixelPick"}
    assert all(rows[name][0].startswith(words) for name, words in first_words.items() if name in rows)


class _FakeEntryPoint:
    def __init__(self, name: str, value: str, obj=None, error: Exception | None = None):
        self.name, self.value, self._obj, self._error = name, value, obj, error

    def load(self):
        if self._error is not None:
            raise self._error
        return self._obj


def test_entry_point_objects_register_once_and_broken_ones_warn(monkeypatch, kind: Kind,
                                                                throwaway: PluginRegistry) -> None:
    points = [_FakeEntryPoint("plugged", "pkg.mod:Toy", kind.toy),
              _FakeEntryPoint("broken", "pkg.broken:Thing", error=ImportError("no module pkg.broken"))]
    monkeypatch.setattr("strategies.plugins.metadata.entry_points",
                        lambda group: points if group == "test.group" else [])
    with pytest.warns(kind.plugin_warning,
                      match=f"skipped {kind.kind} plugin.*'broken'.*ImportError: no module pkg.broken"):
        assert load_entry_points("test.group", registry=throwaway) == ["plugged"]
    assert throwaway.get("plugged") is kind.toy
    assert load_entry_points("test.group", registry=throwaway) == []  # idempotent
    assert throwaway.get("broken") is None


def test_an_unknown_group_needs_a_registry() -> None:
    with pytest.raises(ValueError, match="benchmark.selectors"):
        load_entry_points("benchmark.nothing")


def _write_plugin_package(root: Path, kind: Kind) -> Path:
    """A tiny third-party distribution declaring plugins in the kind's entry-point group."""
    entry_points, code, _ = kind.installed
    pkg = root / "tiny_plugin_src"
    (pkg / "tiny_plugin").mkdir(parents=True)
    (pkg / "pyproject.toml").write_text(textwrap.dedent("""\
        [build-system]
        requires = ["setuptools"]
        build-backend = "setuptools.build_meta"

        [project]
        name = "tiny-plugin"
        version = "0.0.1"

        """) + f'[project.entry-points."{kind.group}"]\n{entry_points}\n')
    (pkg / "tiny_plugin" / "__init__.py").write_text("")
    (pkg / "tiny_plugin" / "code.py").write_text(textwrap.dedent(code))
    return pkg


@pytest.mark.integration
def test_installed_package_is_discovered_through_its_entry_points(tmp_path: Path, kind: Kind) -> None:
    pkg = _write_plugin_package(tmp_path, kind)
    site = tmp_path / "site"
    pip = subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps",
                          "--no-build-isolation", "--no-index", "--target", str(site), str(pkg)],
                         capture_output=True, text=True, timeout=300)
    assert pip.returncode == 0, pip.stderr
    assert list(site.glob("tiny_plugin-*.dist-info"))
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(site), str(REPO)]))
    proc = subprocess.run([sys.executable, "-c", textwrap.dedent(kind.installed[2])], env=env, cwd=tmp_path,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    names = [line.split()[0] for line in kind.installed[0].splitlines()]
    for name in names:
        assert f"{name} tiny_plugin.code" in proc.stdout
    if kind.kind == "selector":
        assert "first_row tiny_plugin.code [[0, 0], [0, 1]]" in proc.stdout
    else:
        assert "least_confidence tiny_plugin.code (6, 7)" in proc.stdout
    listing = subprocess.run([sys.executable, "-m", "benchmark", "list"], env=env, cwd=REPO,
                             capture_output=True, text=True, timeout=300)
    assert listing.returncode == 0, listing.stderr
    for name in names:
        assert any(name in line and "tiny_plugin" in line for line in listing.stdout.splitlines()), name


def test_list_command_prints_the_selectors_after_the_strategies() -> None:
    from argparse import Namespace
    from io import StringIO

    from rich.console import Console

    from benchmark.cli import cmd_list

    console = Console(record=True, width=120, file=StringIO())
    assert cmd_list(Namespace(plugins=None), console) == 0
    text = console.export_text()
    assert text.index("Registered acquisition strategies") < text.index("Registered selectors")
    selectors_part = text[text.index("Registered selectors"):]
    for name in KINDS["selector"].builtins:
        assert name in selectors_part
    assert "balent" not in selectors_part
