"""A folder of wheels from which a machine without internet installs the harness beside its own torch.

    python tools/wheelhouse.py DIR [--python 3.12] [--platform manylinux_2_28_x86_64 ...] [--extras cluster]

Run it on any machine that reaches the package index; copy DIR to the node; there, in the Python
that has the node's torch:

    pip install --no-index --find-links DIR "al-seg-benchmark[cluster]"

DIR holds a wheel of this project, mmcv 2.1.0 without compiled ops (``mmcv-2.1.0+lite``, see
``tools/mmcv_lite_wheel.py``) and every other distribution the project needs for the target
Python and platform, resolved by pip (``pip download --only-binary=:all:``) for that target, with
one exception: torch. The resolution is made with a stand-in torch wheel (no files, no
requirements), so neither torch nor its dependencies (CUDA libraries and all) are downloaded: the
node keeps the torch it has, and the project's requirement ``torch>=2.1`` is checked against it
at install time. A dependency that is published only as a source distribution is built here into
a pure-Python wheel (``pip wheel``); one that would need compiling for the target is reported.
setuptools is added too, so that ``pip install --no-index --find-links DIR -e .`` (an editable
install of a copy of the repository) also works offline.

``--python`` defaults to this interpreter's version and ``--platform`` to this machine's platform
tags. A ``manylinux_2_X_ARCH`` platform stands for every manylinux tag up to glibc 2.X (the ones
a machine with that glibc runs), as pip does for the machine it runs on.
"""
from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import mmcv_lite_wheel  # noqa: E402  (tools/ is not a package)

ROOT = Path(__file__).resolve().parent.parent
PROJECT = "al-seg-benchmark"
STUB_TORCH_VERSION = "2.1.0+wheelhouse.stub"  # satisfies the project's torch>=2.1; never installed
STUB_TORCH = f"torch-{STUB_TORCH_VERSION}-py3-none-any.whl"
BUILD_REQUIREMENT = "setuptools>=77.0.3"  # pyproject.toml's build-system requirement (editable installs)
# what a copy of the repository needs to build the project's wheel (the rest is tests, docs, tools)
SOURCES = ("pyproject.toml", "README.md", "benchmark", "strategies")
MAX_SOURCE_BUILDS = 10


class WheelhouseError(RuntimeError):
    """Something the user must act on (message is one line)."""


def expand_platforms(platforms: list[str]) -> list[str]:
    """``manylinux_2_28_x86_64`` -> itself and every older manylinux tag of that architecture."""
    aliases = {"manylinux1": 5, "manylinux2010": 12, "manylinux2014": 17}
    out: list[str] = []
    for platform in platforms:
        legacy = re.fullmatch(r"(manylinux1|manylinux2010|manylinux2014)_(\w+)", platform)
        modern = re.fullmatch(r"manylinux_2_(\d+)_(\w+)", platform)
        if not (legacy or modern):
            out.append(platform)
            continue
        glibc, arch = (aliases[legacy.group(1)], legacy.group(2)) if legacy else (int(modern.group(1)), modern.group(2))
        for minor in range(glibc, 4, -1):
            out.append(f"manylinux_2_{minor}_{arch}")
            for alias, alias_minor in aliases.items():
                if alias_minor == minor:
                    out.append(f"{alias}_{arch}")
    return list(dict.fromkeys(out))


def stub_torch(folder: Path) -> Path:
    """A wheel named torch with no files and no requirements: stands in for the node's torch."""
    info = f"torch-{STUB_TORCH_VERSION}.dist-info"
    path = folder / STUB_TORCH
    with zipfile.ZipFile(path, "w") as wheel:
        wheel.writestr(f"{info}/METADATA", f"Metadata-Version: 2.1\nName: torch\nVersion: {STUB_TORCH_VERSION}\n")
        wheel.writestr(f"{info}/WHEEL", "Wheel-Version: 1.0\nGenerator: al-seg-benchmark wheelhouse\n"
                                        "Root-Is-Purelib: true\nTag: py3-none-any\n")
        wheel.writestr(f"{info}/RECORD", f"{info}/METADATA,,\n{info}/WHEEL,,\n{info}/RECORD,,\n")
    return path


def _pip(python: str, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([python, "-m", "pip", *args], capture_output=True, text=True)


def _last_error(proc: subprocess.CompletedProcess) -> str:
    lines = [line for line in proc.stderr.splitlines() if line.startswith("ERROR:")] or proc.stderr.splitlines()
    return (lines[-1] if lines else "(no output)").removeprefix("ERROR: ").strip()


def project_wheel(dest: Path, python: str) -> Path:
    """Build this project's wheel from a clean copy of its sources (no stale build/ folder)."""
    with tempfile.TemporaryDirectory(prefix="al-seg-src-") as tmp:
        src = Path(tmp) / "src"
        src.mkdir()
        for name in SOURCES:
            path = ROOT / name
            if path.is_dir():
                shutil.copytree(path, src / name, ignore=shutil.ignore_patterns("__pycache__", "*.pyc", "*.so"))
            else:
                shutil.copy2(path, src / name)
        built = Path(tmp) / "wheel"
        proc = _pip(python, "wheel", "-q", "--no-deps", "-w", str(built), str(src))
        if proc.returncode != 0:
            raise WheelhouseError(f"could not build the project's wheel: {_last_error(proc)}")
        (wheel,) = built.glob("*.whl")
        target = dest / wheel.name
        shutil.copy2(wheel, target)
        return target


def source_only(message: str) -> str | None:
    """The requirement pip found no wheel for, from its "No matching distribution found for X" line."""
    found = re.search(r"No matching distribution found for (\S+)", message)
    return found.group(1) if found else None


def build_from_source(requirement: str, dest: Path, python: str) -> Path:
    """A pure-Python wheel of a source-only dependency, built here (one that must compile is refused)."""
    with tempfile.TemporaryDirectory(prefix="al-seg-sdist-") as tmp:
        name = re.match(r"[A-Za-z0-9._-]+", requirement).group(0)
        proc = _pip(python, "wheel", "-q", "--no-deps", "--no-binary", name, "-w", tmp, requirement)
        if proc.returncode != 0:
            raise WheelhouseError(f"no wheel of {requirement} for the target, and its source does not build: "
                                  f"{_last_error(proc)}")
        (wheel,) = Path(tmp).glob("*.whl")
        if not wheel.name.endswith("-none-any.whl"):
            raise WheelhouseError(f"no wheel of {requirement} for the target, and it is not pure Python (built "
                                  f"{wheel.name} here): build it on a machine like the target and add it to {dest}")
        target = dest / wheel.name
        shutil.copy2(wheel, target)
        return target


def build(dest: str | Path, python_version: str | None = None, platforms: list[str] | None = None,
          extras: list[str] | None = None, python: str = sys.executable, log=print) -> list[Path]:
    """Write the wheelhouse into ``dest``; returns the wheels it holds."""
    dest = Path(dest).resolve()
    dest.mkdir(parents=True, exist_ok=True)
    log(f"mmcv without compiled ops: {mmcv_lite_wheel.build(dest, python).name}")
    project = project_wheel(dest, python)
    log(f"the project: {project.name}")
    target: list[str] = []
    if python_version:
        target += ["--python-version", python_version]
    for platform in expand_platforms(platforms or []):
        target += ["--platform", platform]
    requirement = f"{project}[{','.join(extras)}]" if extras else str(project)
    with tempfile.TemporaryDirectory(prefix="al-seg-stub-") as tmp:
        stub = stub_torch(Path(tmp))
        for _ in range(MAX_SOURCE_BUILDS + 1):
            proc = _pip(python, "download", "-q", "--only-binary=:all:", *target, "-d", str(dest),
                        "--find-links", str(dest), requirement, str(stub), BUILD_REQUIREMENT)
            if proc.returncode == 0:
                break
            missing = source_only(proc.stderr)
            if missing is None:
                raise WheelhouseError(f"pip download failed: {_last_error(proc)}")
            log(f"no wheel of {missing} for the target: building one from its source")
            build_from_source(missing, dest, python)
        else:
            raise WheelhouseError(f"pip download failed: {_last_error(proc)}")
    (dest / STUB_TORCH).unlink(missing_ok=True)
    wheels = sorted(dest.glob("*.whl"))
    if any(wheel.name.startswith("torch-") for wheel in wheels):
        raise WheelhouseError(f"{dest} holds a torch wheel: remove it, the node uses its own torch")
    return wheels


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.strip().splitlines()[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter,
                                     epilog="\n".join(__doc__.strip().splitlines()[1:]))
    parser.add_argument("dir", help="the folder to write the wheels into (created if missing; kept wheels are reused)")
    parser.add_argument("--python", dest="python_version", metavar="X.Y",
                        help="the target's Python version (default: this interpreter's)")
    parser.add_argument("--platform", action="append", metavar="TAG",
                        help="the target's platform tag, e.g. manylinux_2_28_x86_64 (repeatable; "
                             "default: this machine's)")
    parser.add_argument("--extras", default="cluster",
                        help="the project's extras to include, comma-separated (default: cluster; '' for none)")
    args = parser.parse_args(argv)
    extras = [extra.strip() for extra in args.extras.split(",") if extra.strip()]
    try:
        wheels = build(args.dir, args.python_version, args.platform, extras)
    except (WheelhouseError, mmcv_lite_wheel.WheelError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    size = sum(wheel.stat().st_size for wheel in wheels) / 2**20
    names = f"al-seg-benchmark[{','.join(extras)}]" if extras else "al-seg-benchmark"
    print(f"{len(wheels)} wheels, {size:.0f} MiB, in {Path(args.dir).resolve()}; on the node, in the Python that "
          f"has its torch:\n    pip install --no-index --find-links {Path(args.dir).resolve()} \"{names}\"")
    return 0


if __name__ == "__main__":
    sys.exit(main())
