"""Create, or bring up to date, the one virtualenv that `tox -e run` and `tox -e test` share.

tox 4 recreates an environment directory that another environment name used last ("env type
changed"), so the two tox environments cannot share one envdir. Instead each (tiny) tox
environment runs this script first, and both run their command with the interpreter of the
virtualenv it maintains (``.tox/shared`` by default).

The install compiles nothing: mmcv 2.1.0 comes without its compiled ops, as the wheel that
``tools/mmcv_lite_wheel.py`` makes from PyPI's mmcv-lite 2.1.0 (named ``mmcv``, version
``2.1.0+lite``), offered to pip with ``--find-links``; torch is pinned to 2.13.0 (the CPU wheel
where the machine's pip finds one, as on this project's machines). One pip call installs torch,
mmcv and this project with its test tools; ``--prefer-binary`` keeps pip from building any
dependency from source when a wheel of an older release fits. An mmcv that is already in the
environment and satisfies the requirement (one built with ops, say) is kept.

A stamp file records a digest of what was installed (pyproject.toml, this script and the mmcv
tool); when it matches, nothing is done, so the second tox environment starts its work within
seconds.

    python tools/shared_env.py ENV_DIR
"""
from __future__ import annotations

import hashlib
import subprocess
import sys
import time
import venv
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import mmcv_lite_wheel  # noqa: E402  (tools/ is not a package)

ROOT = Path(__file__).resolve().parent.parent
TORCH = "torch==2.13.0"


def digest() -> str:
    text = b"".join(path.read_bytes() for path in (ROOT / "pyproject.toml", Path(__file__),
                                                    Path(mmcv_lite_wheel.__file__)))
    return hashlib.sha256(text).hexdigest()


def main(env_dir: str) -> int:
    env = Path(env_dir)
    stamp = env / ".installed"
    if stamp.is_file() and stamp.read_text().strip() == digest():
        print(f"shared environment {env} is up to date")
        return 0
    started = time.perf_counter()
    python = env / "bin" / "python"
    if not python.exists():
        venv.create(env, with_pip=True)
    wheels = env / "wheels"
    try:
        mmcv_lite_wheel.build(wheels, python=str(python))
    except mmcv_lite_wheel.WheelError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    subprocess.run([str(python), "-m", "pip", "install", "-q", "--prefer-binary", "--find-links", str(wheels),
                    TORCH, "-e", ".[test]"], cwd=ROOT, check=True)
    stamp.write_text(digest() + "\n")
    print(f"shared environment {env} installed in {time.perf_counter() - started:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1] if len(sys.argv) > 1 else str(ROOT / ".tox" / "shared")))
