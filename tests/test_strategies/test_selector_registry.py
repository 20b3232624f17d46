"""The selector registry: same conventions as the strategies' (strict lookup, plugins, listing).

Registration tests use throwaway registries; the test that installs a package runs pip and then
a fresh interpreter, so the process-wide ``SELECTORS`` is never changed by a test.
"""
from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch

from strategies import (
    SELECTORS,
    STRATEGIES,
    PluginRegistry,
    SelectorPluginWarning,
    SelectorRegistry,
    UnknownPluginError,
    UnknownSelectorError,
    UnknownStrategyError,
    build_selector,
    describe_selectors,
    load_entry_points,
)
from strategies.testing import check_selector

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def registry() -> SelectorRegistry:
    return SelectorRegistry("throwaway", scope="throwaway_selectors")


def test_unknown_name_names_the_kind_lists_the_registered_ones_and_suggests() -> None:
    with pytest.raises(UnknownSelectorError) as info:
        build_selector("spred")
    message = str(info.value)
    assert "unknown selector 'spred'" in message
    assert "Did you mean 'spread'" in message
    assert "Registered selectors: pixelpick, spread, topn" in message
    assert info.value.suggestions[0] == "spread"
    assert isinstance(info.value, (KeyError, UnknownPluginError))
    assert not isinstance(info.value, UnknownStrategyError)


def test_unknown_strategy_message_is_unchanged() -> None:
    message = str(UnknownStrategyError("entropyy", ["entropy", "bald"]))
    assert message == ("unknown strategy 'entropyy'. Did you mean 'entropy'? "
                       "Registered strategies: bald, entropy.")


def test_lookup_never_imports_dotted_names() -> None:
    assert SELECTORS.get("numpy") is None
    assert SELECTORS.get("os.path") is None
    with pytest.raises(UnknownSelectorError):
        build_selector("numpy")


def test_scoped_names_resolve_only_in_our_scope() -> None:
    assert SELECTORS.get("selectors.topn") is SELECTORS.get("topn")
    assert SELECTORS.get("strategies.topn") is None
    assert STRATEGIES.get("selectors.balent") is None


def test_a_root_registry_of_its_own() -> None:
    assert isinstance(SELECTORS, PluginRegistry) and SELECTORS.parent is None
    assert SELECTORS is not STRATEGIES
    assert not set(SELECTORS.names()) & set(STRATEGIES.names())
    assert SELECTORS.kind == "selector" and STRATEGIES.kind == "strategy"


def test_building_under_mmseg_default_scope_logs_no_warning() -> None:
    """mmengine would import ``selectors.registry`` (the stdlib's selectors has none) and warn."""
    import logging

    from mmengine.logging import MMLogger
    from mmengine.registry import DefaultScope

    from strategies import build_strategy

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


def test_build_passes_parameters() -> None:
    assert build_selector("spread", r=3).r == 3.0
    assert build_selector(dict(type="pixelpick", q=0.1)).q == 0.1
    assert build_selector(dict(type="pixelpick", q=0.1), q=0.2).q == 0.2
    with pytest.raises(ValueError, match="needs a 'type' key"):
        build_selector(dict(q=0.1))


def test_builtins_describe_themselves() -> None:
    rows = {name: (doc, package) for name, doc, package in describe_selectors()}
    assert set(rows) == {"pixelpick", "spread", "topn"}
    assert all(package == "strategies" for _, package in rows.values())
    assert rows["topn"][0].startswith("Top-n")
    assert rows["pixelpick"][0].startswith("PixelPick")


class EveryOtherRow:
    """Top-n on even rows only: a toy third-party selector."""

    def select(self, scores, labelled, n, generator=None):
        from strategies import select_top_n

        odd = torch.zeros_like(scores, dtype=torch.bool)
        odd[1::2] = True
        taken = odd if labelled is None else odd | labelled
        picks = select_top_n(scores, taken, n, generator)
        if len(picks) < n:  # not enough even-row pixels: fill from the odd rows
            rest = select_top_n(scores, ~odd if labelled is None else ~odd | labelled,
                                n - len(picks), generator)
            picks = torch.cat([picks, rest])
        return picks


def test_decorator_registers_a_plain_class(registry: SelectorRegistry) -> None:
    registry.register_module(name="every_other_row", module=EveryOtherRow)
    selector = registry.build(dict(type="every_other_row"))
    check_selector(selector)
    picks = selector.select(torch.rand(6, 4, generator=torch.Generator().manual_seed(0)), None, 5)
    assert bool((picks[:, 0] % 2 == 0).all())
    assert describe_selectors(registry) == [
        ("every_other_row", "Top-n on even rows only: a toy third-party selector.",
         __name__.split(".")[0])]
    with pytest.raises(UnknownSelectorError, match="Did you mean 'every_other_row'"):
        registry.require("every_other_rows")


class _FakeEntryPoint:
    def __init__(self, name: str, value: str, obj=None, error: Exception | None = None):
        self.name, self.value, self._obj, self._error = name, value, obj, error

    def load(self):
        if self._error is not None:
            raise self._error
        return self._obj


def test_entry_point_objects_register_once_and_broken_ones_warn(monkeypatch, registry) -> None:
    points = [_FakeEntryPoint("rows", "pkg.mod:EveryOtherRow", EveryOtherRow),
              _FakeEntryPoint("broken", "pkg.broken:Thing", error=ImportError("no pkg.broken"))]
    monkeypatch.setattr("strategies.plugins.metadata.entry_points",
                        lambda group: points if group == "test.selectors" else [])
    with pytest.warns(SelectorPluginWarning, match="skipped selector plugin.*'broken'"):
        assert load_entry_points("test.selectors", registry=registry) == ["rows"]
    assert registry.get("rows") is EveryOtherRow
    assert load_entry_points("test.selectors", registry=registry) == []  # idempotent
    assert registry.get("broken") is None


def test_an_unknown_group_needs_a_registry() -> None:
    with pytest.raises(ValueError, match="benchmark.selectors"):
        load_entry_points("benchmark.nothing")


def _write_plugin_package(root: Path) -> Path:
    """A tiny third-party distribution declaring a selector in ``benchmark.selectors``."""
    pkg = root / "tiny_selector_src"
    (pkg / "tiny_sel_plugin").mkdir(parents=True)
    (pkg / "pyproject.toml").write_text(textwrap.dedent("""\
        [build-system]
        requires = ["setuptools"]
        build-backend = "setuptools.build_meta"

        [project]
        name = "tiny-selector-plugin"
        version = "0.0.1"

        [project.entry-points."benchmark.selectors"]
        first_row = "tiny_sel_plugin.rules:FirstRow"
        """))
    (pkg / "tiny_sel_plugin" / "__init__.py").write_text("")
    (pkg / "tiny_sel_plugin" / "rules.py").write_text(textwrap.dedent('''\
        import torch

        from strategies import select_top_n


        class FirstRow:
            """First row: top-n with the first unlabelled pixels in memory order ranked up."""

            def select(self, scores, labelled, n, generator=None):
                order = -torch.arange(scores.numel(), dtype=torch.float64)
                return select_top_n(order.reshape(scores.shape), labelled, n, generator)
        '''))
    return pkg


@pytest.mark.integration
def test_installed_package_is_discovered_through_its_entry_points(tmp_path: Path) -> None:
    pkg = _write_plugin_package(tmp_path)
    site = tmp_path / "site"
    pip = subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps",
                          "--no-build-isolation", "--no-index", "--target", str(site), str(pkg)],
                         capture_output=True, text=True, timeout=300)
    assert pip.returncode == 0, pip.stderr
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(site), str(REPO)]))
    script = textwrap.dedent("""\
        import torch
        from strategies import build_selector
        from strategies.testing import check_selector
        selector = build_selector("first_row")
        check_selector(selector)
        print(type(selector).__module__, selector.select(torch.zeros(3, 4), None, 2).tolist())
        """)
    proc = subprocess.run([sys.executable, "-c", script], env=env, cwd=tmp_path,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert "tiny_sel_plugin.rules [[0, 0], [0, 1]]" in proc.stdout
    listing = subprocess.run([sys.executable, "-m", "benchmark", "list"], env=env, cwd=REPO,
                             capture_output=True, text=True, timeout=300)
    assert listing.returncode == 0, listing.stderr
    rows = [line for line in listing.stdout.splitlines() if "first_row" in line]
    assert rows and "tiny_sel_plugin" in rows[0] and "First row" in rows[0]
    assert "Registered selectors" in listing.stdout


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
    for name in ("topn", "pixelpick", "spread"):
        assert name in selectors_part
    assert "balent" not in selectors_part
