"""Install the harness into the Python that runs this script, beside the torch it already has.

    python tools/install.py                     # online: mmcv without ops + pip install -e ".[cluster]"
    python tools/install.py --wheelhouse DIR    # offline, from the folder tools/wheelhouse.py wrote
    python tools/install.py -- PIP_ARGS...      # extra pip install options (an index, --dry-run, ...)

For a machine whose torch is already there (a CUDA build, a cluster's module, a container's):
this keeps that torch (pip is told ``torch==<the installed version>``, so it can neither upgrade
nor replace it) and compiles nothing. mmcv 2.1.0 comes without its compiled ops, as the wheel
``tools/mmcv_lite_wheel.py`` makes from PyPI's mmcv-lite (``mmcv 2.1.0+lite``, offered to pip
with ``--find-links``); an mmcv that is already installed and satisfies ``mmcv>=2.1.0,<2.2.0``,
one built with its ops for instance, is kept. The project is installed editable (``-e``) from
this repository. Other packages may be changed to fit the project's requirements (setuptools
below 81, whose ``pkg_resources`` mmengine 0.10 needs). Without a torch in this Python it refuses
with one line and installs nothing.
"""
from __future__ import annotations

import argparse
import importlib.metadata
import importlib.util
import re
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import mmcv_lite_wheel  # noqa: E402  (tools/ is not a package)

ROOT = Path(__file__).resolve().parent.parent
MIN_TORCH = (2, 1)  # pyproject.toml: torch>=2.1


class InstallError(RuntimeError):
    """Something the user must act on (message is one line)."""


def installed_torch() -> str:
    """The version of this Python's torch, or InstallError (none, or older than the project needs)."""
    if importlib.util.find_spec("torch") is None:
        raise InstallError(f"no torch in {sys.executable}: install the torch build for this machine first "
                           f"(https://pytorch.org/get-started/locally/), then run this again; or use "
                           f"`pip install tox && tox -e run`, which makes an environment with a CPU torch")
    try:
        version = importlib.metadata.version("torch")
    except importlib.metadata.PackageNotFoundError:
        raise InstallError(f"{sys.executable} imports a torch that pip does not know as installed "
                           f"(no torch .dist-info on sys.path); install torch with pip, or install the "
                           f"harness in an environment where pip sees its torch") from None
    found = re.match(r"(\d+)\.(\d+)", version)
    if found is None or tuple(map(int, found.groups())) < MIN_TORCH:
        raise InstallError(f"torch {version} in {sys.executable} is older than the harness needs (torch>=2.1): "
                           f"upgrade it with the build for this machine, then run this again")
    return version


def pip_command(torch_version: str, constraints: Path, find_links: Path, extras: list[str], offline: bool,
                pip_args: list[str]) -> list[str]:
    """The one ``pip install`` that installs the project (and what it needs) around the kept torch."""
    constraints.write_text(f"torch=={torch_version}\n")
    target = f"{ROOT}[{','.join(extras)}]" if extras else str(ROOT)
    return [sys.executable, "-m", "pip", "install", "--prefer-binary", "--find-links", str(find_links),
            "-c", str(constraints), *(["--no-index"] if offline else []), *pip_args, "-e", target]


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    pip_args: list[str] = []
    if "--" in argv:
        cut = argv.index("--")
        argv, pip_args = argv[:cut], argv[cut + 1:]
    parser = argparse.ArgumentParser(description=__doc__.strip().splitlines()[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter,
                                     epilog="\n".join(__doc__.strip().splitlines()[1:]))
    parser.add_argument("--wheelhouse", metavar="DIR", help="install offline (pip --no-index) from the folder "
                        "that `python tools/wheelhouse.py DIR` wrote")
    parser.add_argument("--extras", default="cluster",
                        help="the project's extras, comma-separated (default: cluster; 'test' adds the test tools; "
                             "'' for none)")
    args = parser.parse_args(argv)
    extras = [extra.strip() for extra in args.extras.split(",") if extra.strip()]
    try:
        torch_version = installed_torch()
        if args.wheelhouse and not any(Path(args.wheelhouse).glob("mmcv-*.whl")):
            raise InstallError(f"{args.wheelhouse} holds no mmcv wheel: write it with "
                               f"`python tools/wheelhouse.py {args.wheelhouse}` on a machine with internet")
        if importlib.util.find_spec("pip") is None:
            raise InstallError(f"no pip in {sys.executable}: `{sys.executable} -m ensurepip` installs it")
        print(f"keeping torch {torch_version} of {sys.executable}; installing the harness without compiling anything")
        with tempfile.TemporaryDirectory(prefix="al-seg-install-") as tmp:
            if args.wheelhouse:
                find_links = Path(args.wheelhouse).resolve()
            else:
                find_links = Path(tmp) / "wheels"
                mmcv_lite_wheel.build(find_links)
            command = pip_command(torch_version, Path(tmp) / "keep-torch.txt", find_links, extras,
                                  bool(args.wheelhouse), pip_args)
            if subprocess.run(command, cwd=ROOT).returncode != 0:
                raise InstallError("pip could not install the harness (its message is above); torch was left as "
                                   "it was")
    except (InstallError, mmcv_lite_wheel.WheelError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    print(f"installed: try `{Path(sys.executable).name} -m benchmark list`")
    return 0


if __name__ == "__main__":
    sys.exit(main())
