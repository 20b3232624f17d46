"""Shared test setup: the embedded dataset is generated once per test session into a temp cache."""
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="session")
def benchmark_cache(tmp_path_factory) -> Path:
    cache = tmp_path_factory.mktemp("benchmark-cache")
    os.environ["BENCHMARK_CACHE"] = str(cache)
    return cache


@pytest.fixture(scope="session")
def run_cli(benchmark_cache):
    """Run ``python -m benchmark ARGS`` in a subprocess; returns the CompletedProcess."""

    def run(*args, check=True, timeout=900, env_extra=None):
        # one intra-op thread everywhere: a run's floats depend on its thread count, and `run`
        # trains in one-thread worker processes (--workers auto) or in this one, whichever the plan
        # asks for; tests that compare tables across commands need the same arithmetic in both
        path = os.pathsep.join(p for p in (str(REPO), os.environ.get("PYTHONPATH", "")) if p)  # the repo first
        env = dict(os.environ, BENCHMARK_CACHE=str(benchmark_cache), PYTHONPATH=path, OMP_NUM_THREADS="1")
        env.update(env_extra or {})
        proc = subprocess.run([sys.executable, "-m", "benchmark", *map(str, args)], cwd=REPO, env=env,
                              capture_output=True, text=True, timeout=timeout)
        if check and proc.returncode != 0:
            raise AssertionError(f"exit {proc.returncode}\nstdout:\n{proc.stdout}\nstderr:\n{proc.stderr}")
        return proc

    return run


def assert_usage_error(proc, *phrases):
    """A user mistake: exit 2 and one ``error: ...`` line holding every phrase, no traceback."""
    assert proc.returncode == 2, proc.stderr
    lines = [line for line in proc.stderr.strip().splitlines() if line.strip()]
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("error: ") and "Traceback" not in proc.stderr
    for phrase in phrases:
        assert phrase in lines[0], lines[0]


@pytest.fixture(scope="session")
def gated_reference(run_cli, tmp_path_factory) -> Path:
    """``GATED_PLAN`` run without interruption, one run after another in one one-thread process:
    the tables that the interrupted, killed and resumed runs of the same plan must end with."""
    from tests.fixtures.gated_strategy import GATED_PLAN

    out = tmp_path_factory.mktemp("gated-reference")
    run_cli("run", *GATED_PLAN, "--workers", "1", "--out", out)
    return out
