"""Create, or bring up to date, the one virtualenv that `tox -e run` and `tox -e test` share.

tox 4 recreates an environment directory that another environment name used last ("env type
changed"), so the two tox environments cannot share one envdir. Instead each (tiny) tox
environment runs this script first, and both run their command with the interpreter of the
virtualenv it maintains (``.tox/shared`` by default). The install needs an order pip cannot
express in one call: torch first (the CPU wheel), then mmcv 2.1.0 built from source with its ops
against it (no build isolation, setuptools < 81 for mmcv's setup.py), then this project.

A stamp file records a digest of what was installed (pyproject.toml and this script); when it
matches, nothing is done, so the second tox environment starts its work within seconds.

    python tools/shared_env.py ENV_DIR
"""
from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
STEPS = [
    ["torch==2.13.0", "setuptools>=77.0.3,<81", "wheel", "ninja"],
    ["--no-build-isolation", "mmcv==2.1.0"],
    ["--no-build-isolation", "-e", ".[test]"],
]


def digest() -> str:
    text = (ROOT / "pyproject.toml").read_bytes() + Path(__file__).read_bytes()
    return hashlib.sha256(text).hexdigest()


def main(env_dir: str) -> int:
    env = Path(env_dir)
    stamp = env / ".installed"
    if stamp.is_file() and stamp.read_text().strip() == digest():
        print(f"shared environment {env} is up to date")
        return 0
    python = env / "bin" / "python"
    if not python.exists():
        venv.create(env, with_pip=True)
    environ = dict(os.environ, MMCV_WITH_OPS="1", MAX_JOBS=os.environ.get("MAX_JOBS", "2"))
    for step in STEPS:
        subprocess.run([str(python), "-m", "pip", "install", "-q", *step], cwd=ROOT, env=environ, check=True)
    stamp.write_text(digest() + "\n")
    print(f"shared environment {env} installed")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1] if len(sys.argv) > 1 else str(ROOT / ".tox" / "shared")))
