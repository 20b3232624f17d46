"""The strategy registry: strict lookup, clear errors, decorator and entry-point registration.

Registration tests use throwaway registries; the one test that installs a package runs pip and
then a fresh interpreter, so the process-wide ``STRATEGIES`` is never changed by a test.
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
    STRATEGIES,
    PixelPosterior,
    StrategyPluginWarning,
    StrategyRegistry,
    UnknownStrategyError,
    build_strategy,
    describe_strategies,
    load_entry_points,
)
from strategies.testing import check_strategy, mc_samples

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def registry() -> StrategyRegistry:
    return StrategyRegistry("throwaway", scope="throwaway_scope")


def test_unknown_name_lists_the_registered_ones_and_suggests() -> None:
    with pytest.raises(UnknownStrategyError) as info:
        build_strategy("balentt")
    message = str(info.value)
    assert "unknown strategy 'balentt'" in message
    assert "Did you mean 'balent'" in message
    for name in ("bald", "balent", "balent_ref", "entropy", "margin", "pbald", "random"):
        assert name in message
    assert info.value.suggestions[0] == "balent"


def test_lookup_never_imports_dotted_names() -> None:
    # a plain mmengine Registry.get("numpy") returns the numpy module
    assert STRATEGIES.get("numpy") is None
    assert STRATEGIES.get("os.path") is None
    with pytest.raises(UnknownStrategyError):
        build_strategy("numpy")


def test_scoped_names_resolve_only_in_our_scope() -> None:
    assert STRATEGIES.get("strategies.balent") is STRATEGIES.get("balent")
    assert STRATEGIES.get("mmseg.balent") is None


def test_not_the_mmengine_strategies_registry() -> None:
    from mmengine.registry import STRATEGIES as MMENGINE_STRATEGIES

    assert STRATEGIES is not MMENGINE_STRATEGIES
    assert STRATEGIES.parent is None
    assert "balent" not in MMENGINE_STRATEGIES.module_dict


def test_build_passes_parameters() -> None:
    assert build_strategy("pbald", beta=2.5).beta == 2.5
    assert build_strategy(dict(type="pbald", beta=0.5)).beta == 0.5
    with pytest.raises(ValueError, match="beta must be positive"):
        build_strategy("pbald", beta=0.0)


def test_decorator_registers_a_plain_class(registry: StrategyRegistry) -> None:
    @registry.register_module(name="least_confidence")
    class LeastConfidence:
        """One minus the largest mean class probability."""

        def score(self, post, generator=None):
            return 1.0 - post.mean.max(dim=-3).values

    strategy = registry.build(dict(type="least_confidence"))
    check_strategy(strategy)
    post = PixelPosterior.from_samples(mc_samples())
    torch.testing.assert_close(strategy.score(post), 1.0 - post.mean.max(dim=0).values)
    rows = describe_strategies(registry)
    assert rows == [("least_confidence", "One minus the largest mean class probability.",
                     __name__.split(".")[0])]


def test_builtins_describe_themselves() -> None:
    rows = {name: (doc, package) for name, doc, package in describe_strategies()}
    assert rows["balent"][1] == "strategies"
    assert rows["pbald"][0].startswith("PowerBALD")
    assert all(doc and doc != "(no description)" for doc, _ in rows.values())


class _FakeEntryPoint:
    def __init__(self, name: str, value: str, obj=None, error: Exception | None = None):
        self.name, self.value, self._obj, self._error = name, value, obj, error

    def load(self):
        if self._error is not None:
            raise self._error
        return self._obj


def test_entry_point_objects_register_once_and_broken_ones_warn(monkeypatch, registry) -> None:
    class Plugged:
        """A plugged-in strategy."""

        def score(self, post, generator=None):
            return post.predictive_entropy

    points = [_FakeEntryPoint("plugged", "pkg.mod:Plugged", Plugged),
              _FakeEntryPoint("broken", "pkg.broken:Thing", error=ImportError("no module pkg.broken"))]
    monkeypatch.setattr("strategies.plugins.metadata.entry_points",
                        lambda group: points if group == "test.group" else [])
    with pytest.warns(StrategyPluginWarning, match="'broken'.*ImportError: no module pkg.broken"):
        assert load_entry_points("test.group", registry=registry) == ["plugged"]
    assert registry.get("plugged") is Plugged
    assert load_entry_points("test.group", registry=registry) == []  # idempotent
    assert registry.get("broken") is None


def _write_plugin_package(root: Path) -> Path:
    """A tiny third-party distribution declaring two strategies in ``benchmark.strategies``."""
    pkg = root / "tiny_plugin_src"
    (pkg / "tiny_al_plugin").mkdir(parents=True)
    (pkg / "pyproject.toml").write_text(textwrap.dedent("""\
        [build-system]
        requires = ["setuptools"]
        build-backend = "setuptools.build_meta"

        [project]
        name = "tiny-al-plugin"
        version = "0.0.1"

        [project.entry-points."benchmark.strategies"]
        least_confidence = "tiny_al_plugin.strategies"
        variance_sum = "tiny_al_plugin.strategies:VarianceSum"
        """))
    (pkg / "tiny_al_plugin" / "__init__.py").write_text("")
    (pkg / "tiny_al_plugin" / "strategies.py").write_text(textwrap.dedent('''\
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
    assert list(site.glob("tiny_al_plugin-*.dist-info"))
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(site), str(REPO)]))
    script = textwrap.dedent("""\
        import torch
        from strategies import PixelPosterior, build_strategy
        from strategies.testing import check_strategy, mc_samples
        post = PixelPosterior.from_samples(mc_samples())
        for name in ("least_confidence", "variance_sum"):
            strategy = build_strategy(name)
            check_strategy(strategy)
            print(name, type(strategy).__module__, tuple(strategy.score(post).shape))
        """)
    proc = subprocess.run([sys.executable, "-c", script], env=env, cwd=tmp_path,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert "least_confidence tiny_al_plugin.strategies (6, 7)" in proc.stdout
    assert "variance_sum tiny_al_plugin.strategies (6, 7)" in proc.stdout
    listing = subprocess.run([sys.executable, "-m", "benchmark", "list"], env=env, cwd=REPO,
                             capture_output=True, text=True, timeout=300)
    assert listing.returncode == 0, listing.stderr
    rows = [line for line in listing.stdout.splitlines() if "least_confidence" in line]
    assert rows and "tiny_al_plugin" in rows[0] and "Least confidence" in rows[0]
    assert any("variance_sum" in line and "tiny_al_plugin" in line
               for line in listing.stdout.splitlines())
