"""Helpers of the install tests: the tools loaded from tools/, fresh virtualenvs that see this
environment's torch (and nothing else of it), pip switched off from every network, a wheelhouse."""
from __future__ import annotations

import importlib.metadata
import importlib.util
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
TOOLS = REPO / "tools"


def load_tool(name: str):
    """``tools/<name>.py`` as a module (tools/ is a folder of scripts, not a package)."""
    if str(TOOLS) not in sys.path:
        sys.path.insert(0, str(TOOLS))
    spec = importlib.util.spec_from_file_location(f"al_seg_tools_{name}", TOOLS / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def offline_env(**extra: str) -> dict:
    """The environment with pip cut off from every index: no configuration file (this machine's
    sets extra indexes, find-links and constraints), no PIP_* variable of ours, --no-index, an index
    URL and proxies that point at a closed local port, no cache."""
    env = {key: value for key, value in os.environ.items()
           if not key.startswith("PIP_") and key not in ("PYTHONPATH", "VIRTUAL_ENV")}
    env.update(PIP_CONFIG_FILE=os.devnull, PIP_NO_INDEX="1", PIP_INDEX_URL="http://127.0.0.1:9/simple",
               PIP_NO_CACHE_DIR="1", PIP_DISABLE_PIP_VERSION_CHECK="1", http_proxy="http://127.0.0.1:9",
               https_proxy="http://127.0.0.1:9", HTTP_PROXY="http://127.0.0.1:9", HTTPS_PROXY="http://127.0.0.1:9")
    env.update(extra)
    return env


def online_env(**extra: str) -> dict:
    """This machine's environment for pip (its index configuration kept), without our PYTHONPATH."""
    env = {key: value for key, value in os.environ.items() if key not in ("PYTHONPATH", "VIRTUAL_ENV")}
    env.update(PIP_DISABLE_PIP_VERSION_CHECK="1", **extra)
    return env


def run(args, check: bool = True, **kwargs) -> subprocess.CompletedProcess:
    proc = subprocess.run([str(a) for a in args], capture_output=True, text=True, **kwargs)
    if check and proc.returncode != 0:
        raise AssertionError(f"{args} exited {proc.returncode}\nstdout:\n{proc.stdout[-4000:]}\n"
                             f"stderr:\n{proc.stderr[-4000:]}")
    return proc


def _requirement_names(dist) -> list[str]:
    names = []
    for requirement in dist.requires or []:
        name, _, marker = requirement.partition(";")
        if "extra" in marker:
            continue
        names.append(re.match(r"[A-Za-z0-9._-]+", name.strip()).group(0))
    return names


def link_torch(dest: Path, leave_out: tuple[str, ...] = ()) -> Path:
    """``dest`` with links to this environment's torch and what torch requires (their files and
    .dist-info), nothing else: put on a venv's path, it is "a machine that already has a torch".
    ``leave_out``: requirements not linked (the install must bring them)."""
    dest.mkdir(parents=True, exist_ok=True)
    todo, seen = ["torch"], set(leave_out)
    while todo:
        try:
            dist = importlib.metadata.distribution(todo.pop())
        except importlib.metadata.PackageNotFoundError:
            continue
        key = re.sub(r"[-_.]+", "-", dist.metadata["Name"]).lower()
        if key in seen:
            continue
        seen.add(key)
        todo += _requirement_names(dist)
        for top in {Path(str(f)).parts[0] for f in dist.files or []}:
            source = Path(dist.locate_file(top))
            if top != ".." and not top.endswith(".data") and source.exists() and not (dest / top).exists():
                (dest / top).symlink_to(source)
    return dest


def make_venv(path: Path, torch_site: Path | None, with_pip: bool = True) -> Path:
    """A fresh virtualenv whose Python sees ``torch_site`` through a .pth file; returns its python.
    With pip, the venv's own old setuptools is removed, so pip sees the one torch came with."""
    run([sys.executable, "-m", "venv", *([] if with_pip else ["--without-pip"]), path])
    python = path / "bin" / "python"
    if with_pip:
        run([python, "-m", "pip", "uninstall", "-y", "-q", "setuptools"], env=offline_env())
    if torch_site is not None:
        purelib = run([python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"]).stdout.strip()
        (Path(purelib) / "linked_torch.pth").write_text(f"{torch_site}\n")
    return python


def purelib(python: Path) -> Path:
    return Path(run([python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"]).stdout.strip())


def fake_mmcv_with_ops(python: Path) -> Path:
    """A distribution named mmcv 2.1.0 with a compiled-ops marker, installed as pip would (RECORD):
    stands for an mmcv the user built with its ops."""
    site = purelib(python)
    (site / "mmcv").mkdir()
    (site / "mmcv" / "__init__.py").write_text('__version__ = "2.1.0"\n')
    marker = site / "mmcv" / "_ext.cpython-fake.so"
    marker.write_bytes(b"built with ops")
    info = site / "mmcv-2.1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: mmcv\nVersion: 2.1.0\n")
    (info / "INSTALLER").write_text("pip\n")
    (info / "RECORD").write_text("mmcv/__init__.py,,\nmmcv/_ext.cpython-fake.so,,\nmmcv-2.1.0.dist-info/METADATA,,\n"
                                 "mmcv-2.1.0.dist-info/INSTALLER,,\nmmcv-2.1.0.dist-info/RECORD,,\n")
    return marker


@pytest.fixture(scope="session")
def torch_site(tmp_path_factory) -> Path:
    if importlib.util.find_spec("torch") is None:
        pytest.skip("no torch in the test environment to link into the test virtualenvs")
    return link_torch(tmp_path_factory.mktemp("torch-site") / "site")


@pytest.fixture(scope="session")
def bare_torch_site(tmp_path_factory) -> Path:
    """A torch without setuptools beside it: the install brings the setuptools the harness can use."""
    if importlib.util.find_spec("torch") is None:
        pytest.skip("no torch in the test environment to link into the test virtualenvs")
    return link_torch(tmp_path_factory.mktemp("bare-torch-site") / "site", leave_out=("setuptools",))


@pytest.fixture(scope="session")
def wheelhouse(tmp_path_factory) -> Path:
    """tools/wheelhouse.py's folder for this Python and platform (built once per session, online)."""
    folder = tmp_path_factory.mktemp("wheelhouse") / "wheels"
    proc = run([sys.executable, TOOLS / "wheelhouse.py", folder], cwd=REPO, env=online_env())
    assert "pip install --no-index --find-links" in proc.stdout, proc.stdout
    return folder
