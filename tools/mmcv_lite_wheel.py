"""mmcv 2.1.0 without compiled ops, as a wheel named ``mmcv``: PyPI's mmcv-lite 2.1.0, relabelled.

PyPI has mmcv 2.1.0 only as a source distribution, which compiles its ops (12 minutes on 2 CPU
cores, an nvcc build of CUDA sources that predate CUDA 12.4 wherever torch sees a GPU). The
harness's models and transforms call none of those ops (``tests/integration/
test_without_mmcv_ops.py``; ``benchmark.runtime.mmcv_without_ops`` names the op if a model does).
PyPI also has ``mmcv-lite==2.1.0``: a pure-Python wheel of the same release without the compiled
ops (module ``mmcv``, ``mmcv.__version__ == "2.1.0"``), but under another distribution name, so it
does not satisfy the requirement ``mmcv>=2.1.0,<2.2.0`` and installing both would leave two
distributions owning the same files.

This module downloads that wheel (its sha256 is checked), and writes the same files as a wheel
of distribution ``mmcv``, version ``2.1.0+lite``: the ``.dist-info`` folder renamed, ``Name`` and
``Version`` in ``METADATA`` changed, ``RECORD`` written again with the sha256 of every file. Given
to pip with ``--find-links``, it is what pip picks for ``mmcv>=2.1.0,<2.2.0`` (a local version
sorts above the sdist's 2.1.0, and nothing compiles), while an mmcv that is already installed
(with its ops, say) satisfies the requirement and pip keeps it. The output is byte-identical from
run to run (entries keep the original timestamps and order).

    python tools/mmcv_lite_wheel.py DIR     # writes DIR/mmcv-2.1.0+lite-py2.py3-none-any.whl
"""
from __future__ import annotations

import base64
import csv
import hashlib
import io
import os
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

SOURCE_NAME = "mmcv_lite"
SOURCE_VERSION = "2.1.0"
SOURCE_FILE = f"{SOURCE_NAME}-{SOURCE_VERSION}-py2.py3-none-any.whl"
SOURCE_SHA256 = "1d9913c35f793de4a3a022b93cecb712e1e7262eb4704eb8cd15e623dd375000"  # PyPI's mmcv-lite 2.1.0 wheel
NAME = "mmcv"
VERSION = f"{SOURCE_VERSION}+lite"
WHEEL_FILE = f"{NAME}-{VERSION}-py2.py3-none-any.whl"
SUMMARY = ("OpenMMLab Computer Vision Foundation, without compiled ops "
           "(PyPI's mmcv-lite 2.1.0 relabelled as mmcv by al-seg-benchmark's tools/mmcv_lite_wheel.py)")


class WheelError(RuntimeError):
    """The mmcv-lite wheel could not be downloaded or is not the expected one (message is one line)."""


def _record_hash(data: bytes) -> str:
    return "sha256=" + base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()


def _metadata(text: str) -> str:
    """METADATA with the new Name, Version and Summary; everything else (requirements) as it was."""
    out, in_headers = [], True
    for line in text.splitlines(keepends=True):
        if in_headers and line in ("\n", "\r\n"):
            in_headers = False
        if in_headers and line.startswith("Name: "):
            line = f"Name: {NAME}\n"
        elif in_headers and line.startswith("Version: "):
            line = f"Version: {VERSION}\n"
        elif in_headers and line.startswith("Summary: "):
            line = f"Summary: {SUMMARY}\n"
        out.append(line)
    return "".join(out)


def relabel(source: Path, dest_dir: Path) -> Path:
    """Write the mmcv-lite wheel ``source`` as ``dest_dir/mmcv-2.1.0+lite-...whl``; returns its path."""
    old_info = f"{SOURCE_NAME}-{SOURCE_VERSION}.dist-info/"
    new_info = f"{NAME}-{VERSION}.dist-info/"
    dest_dir.mkdir(parents=True, exist_ok=True)
    target = dest_dir / WHEEL_FILE
    rows = []
    with zipfile.ZipFile(source) as src:
        names = src.namelist()
        if old_info + "METADATA" not in names:
            raise WheelError(f"{source} is not the mmcv-lite {SOURCE_VERSION} wheel (no {old_info}METADATA)")
        partial = target.with_name(target.name + ".partial")
        with zipfile.ZipFile(partial, "w", zipfile.ZIP_DEFLATED) as out:
            record_info = None
            for info in src.infolist():
                name = info.filename
                if name == old_info + "RECORD":
                    record_info = info
                    continue
                data = src.read(info)
                if name.startswith(old_info):
                    name = new_info + name[len(old_info):]
                    if name == new_info + "METADATA":
                        data = _metadata(data.decode("utf-8")).encode("utf-8")
                new = zipfile.ZipInfo(name, date_time=info.date_time)
                new.external_attr = info.external_attr
                new.compress_type = zipfile.ZIP_DEFLATED
                out.writestr(new, data)
                if not name.endswith("/"):
                    rows.append((name, _record_hash(data), str(len(data))))
            rows.append((new_info + "RECORD", "", ""))
            buffer = io.StringIO()
            csv.writer(buffer, lineterminator="\n").writerows(rows)
            record = zipfile.ZipInfo(new_info + "RECORD", date_time=record_info.date_time if record_info else
                                     (2023, 10, 17, 11, 30, 0))
            record.external_attr = record_info.external_attr if record_info else 0o644 << 16
            record.compress_type = zipfile.ZIP_DEFLATED
            out.writestr(record, buffer.getvalue())
    os.replace(partial, target)
    return target


def download(dest_dir: Path, python: str = sys.executable, pip_args: tuple[str, ...] = ()) -> Path:
    """Fetch PyPI's mmcv-lite 2.1.0 wheel into ``dest_dir`` with ``python -m pip`` and check its sha256."""
    source = dest_dir / SOURCE_FILE
    if source.is_file() and hashlib.sha256(source.read_bytes()).hexdigest() != SOURCE_SHA256:
        source.unlink()  # pip would keep a file of the right name: fetch it again
    if not source.is_file():
        proc = subprocess.run([python, "-m", "pip", "download", "-q", "--no-deps", "--only-binary=:all:",
                               "-d", str(dest_dir), *pip_args, f"mmcv-lite=={SOURCE_VERSION}"],
                              capture_output=True, text=True)
        if proc.returncode != 0 or not source.is_file():
            last = (proc.stderr.strip().splitlines() or ["(no output)"])[-1]
            raise WheelError(f"could not download mmcv-lite=={SOURCE_VERSION} from the package index: {last}")
    digest = hashlib.sha256(source.read_bytes()).hexdigest()
    if digest != SOURCE_SHA256:
        raise WheelError(f"{source} has sha256 {digest}, not PyPI's {SOURCE_SHA256}")
    return source


def build(dest_dir: str | os.PathLike, python: str = sys.executable, pip_args: tuple[str, ...] = ()) -> Path:
    """Download mmcv-lite 2.1.0 and write ``dest_dir/mmcv-2.1.0+lite-py2.py3-none-any.whl``; returns its path."""
    dest_dir = Path(dest_dir)
    with tempfile.TemporaryDirectory(prefix="mmcv-lite-") as tmp:
        return relabel(download(Path(tmp), python, pip_args), dest_dir)


def main(argv: list[str]) -> int:
    if len(argv) != 1 or argv[0].startswith("-"):
        print(__doc__.strip().splitlines()[-1].strip(), file=sys.stderr)
        return 2
    try:
        print(build(argv[0]))
    except WheelError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
