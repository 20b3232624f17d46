"""A strategy written outside the repository, loaded with --plugins, listed and ranked beside ours."""
import os
import textwrap

import pandas as pd
import pytest

from tests.conftest import REPO, assert_usage_error

pytestmark = pytest.mark.integration

PLUGIN = textwrap.dedent('''\
    from strategies import STRATEGIES


    @STRATEGIES.register_module(name="least_confidence")
    class LeastConfidence:
        """Least confidence: one minus the largest mean class probability."""

        def score(self, post, generator=None):
            return 1.0 - post.mean.max(dim=-3).values
    ''')


@pytest.fixture
def plugin_env(tmp_path):
    folder = tmp_path / "plugins"
    folder.mkdir()
    (folder / "my_strategies.py").write_text(PLUGIN)
    (folder / "broken_strategies.py").write_text("raise RuntimeError('oops')\n")
    return dict(PYTHONPATH=os.pathsep.join([str(folder), str(REPO)]))


def test_list_shows_a_plugin_strategy_with_its_package(run_cli, plugin_env):
    proc = run_cli("list", "--plugins", "my_strategies", env_extra=plugin_env)
    row = next(line for line in proc.stdout.splitlines() if "least_confidence" in line)
    assert "my_strategies" in row and "Least confidence" in row


def test_plugin_strategy_runs_and_is_ranked(run_cli, plugin_env, tmp_path):
    out = tmp_path / "out"
    run_cli("run", "--plugins", "my_strategies", "--strategy", "least_confidence,random",
            "--no-supervised", "--cycles", "2", "--train-iters", "2", "--mc-samples", "2",
            "--pixels-per-image", "3", "--seeds", "0", "--out", out, env_extra=plugin_env)
    board = pd.read_csv(out / "leaderboard.csv")
    assert set(board["strategy"]) == {"least_confidence", "random"}
    assert board["rank"].min() == 1 and board["aulc_mean"].notna().all()  # (equal AULCs share rank 1)
    picks = pd.read_csv(out / "runs" / "synthetic__deeplabv3plus__least_confidence__seed0" / "selections.csv")
    assert sorted(picks["cycle"].unique()) == [0, 1] and (picks["cycle"] == 1).sum() == 3 * 40


@pytest.mark.parametrize("module, phrase", [("no_such_module", "cannot import 'no_such_module'"),
                                            ("broken_strategies", "RuntimeError: oops")])
def test_bad_plugin_is_one_error_line(run_cli, plugin_env, tmp_path, module, phrase):
    proc = run_cli("run", "--plugins", module, "--out", tmp_path / "out", env_extra=plugin_env,
                   check=False)
    assert_usage_error(proc, "--plugins", phrase)
    assert not (tmp_path / "out" / "runs").exists()
