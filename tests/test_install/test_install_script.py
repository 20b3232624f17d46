"""tools/install.py: the one-line install on a machine that has its own torch (a CUDA build, say):
keeps that torch, keeps an mmcv built with ops, compiles nothing; refuses in one line without torch."""
from __future__ import annotations

import json
import sys

import pytest

from tests.test_install.conftest import (
    REPO,
    TOOLS,
    fake_mmcv_with_ops,
    make_venv,
    offline_env,
    online_env,
    purelib,
    run,
)

INSTALL = TOOLS / "install.py"


def versions(python, *names, env) -> list[str]:
    code = "import importlib.metadata as m, sys; print(*(m.version(n) for n in sys.argv[1:]))"
    return run([python, "-c", code, *names], env=env).stdout.split()


def test_refuses_in_one_line_without_torch(tmp_path):
    run([sys.executable, "-m", "venv", "--without-pip", tmp_path / "venv"])
    proc = run([tmp_path / "venv" / "bin" / "python", INSTALL], check=False, env=offline_env(), cwd=tmp_path)
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert proc.returncode == 2 and len(lines) == 1, proc.stderr
    assert lines[0].startswith("error: no torch in ") and "pytorch.org" in lines[0] and "tox -e run" in lines[0]


def test_a_wheelhouse_without_mmcv_is_refused(torch_site, tmp_path):
    python = make_venv(tmp_path / "venv", torch_site, with_pip=False)
    (tmp_path / "empty").mkdir()
    proc = run([python, INSTALL, "--wheelhouse", tmp_path / "empty"], check=False, env=offline_env(), cwd=tmp_path)
    assert proc.returncode == 2 and "holds no mmcv wheel" in proc.stderr and "tools/wheelhouse.py" in proc.stderr


@pytest.mark.install
def test_keeps_the_torch_and_an_mmcv_with_ops_that_are_there(wheelhouse, torch_site, tmp_path):
    """Offline, from the wheelhouse: the venv's torch (linked in) and its mmcv 2.1.0 "with ops" stay."""
    python = make_venv(tmp_path / "venv", torch_site)
    marker = fake_mmcv_with_ops(python)
    env = offline_env()
    torch_before = versions(python, "torch", env=env)
    proc = run([python, INSTALL, "--wheelhouse", wheelhouse, "--", "-q"], cwd=tmp_path, env=env)
    assert f"keeping torch {torch_before[0]}" in proc.stdout
    assert versions(python, "torch", "mmcv", "al-seg-benchmark", "mmsegmentation", env=env) == \
        [torch_before[0], "2.1.0", "0.1.0", "1.2.2"]
    assert marker.read_bytes() == b"built with ops"
    site = purelib(python)
    assert not (site / "torch").exists() and not list(site.glob("torch-*")), "pip installed a torch into the venv"
    where = run([python, "-c", "import torch, benchmark; print(torch.__file__, benchmark.__file__)"],
                cwd=tmp_path, env=env).stdout.split()
    assert where[0].startswith(str(torch_site)) and where[1].startswith(str(REPO))  # editable: this repository


@pytest.mark.install
def test_online_it_picks_mmcv_without_ops_and_leaves_torch_alone(torch_site, tmp_path):
    """With the index: what pip would install (--dry-run) is mmcv 2.1.0+lite and no torch."""
    python = make_venv(tmp_path / "venv", torch_site)
    report = tmp_path / "report.json"
    run([python, INSTALL, "--", "-q", "--dry-run", "--report", report], cwd=tmp_path, env=online_env())
    planned = {item["metadata"]["name"].lower(): item["metadata"]["version"] for item in json.loads(report.read_text())["install"]}
    assert planned["mmcv"] == "2.1.0+lite" and planned["al-seg-benchmark"] == "0.1.0"
    assert "torch" not in planned and not [name for name in planned if name.startswith(("nvidia", "triton"))]
    assert "mmcv-lite" not in planned
