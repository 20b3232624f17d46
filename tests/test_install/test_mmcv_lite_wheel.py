"""tools/mmcv_lite_wheel.py: PyPI's mmcv-lite wheel relabelled as mmcv 2.1.0+lite, files unchanged."""
from __future__ import annotations

import base64
import csv
import hashlib
import io
import subprocess
import zipfile

import pytest

from tests.test_install.conftest import load_tool

tool = load_tool("mmcv_lite_wheel")
INFO = "mmcv_lite-2.1.0.dist-info"
NEW_INFO = "mmcv-2.1.0+lite.dist-info"


def fake_source(path):
    """A small wheel laid out as mmcv-lite 2.1.0's (module files, its .dist-info, a RECORD)."""
    metadata = ("Metadata-Version: 2.1\nName: mmcv-lite\nVersion: 2.1.0\nSummary: OpenMMLab Computer Vision "
                "Foundation\nRequires-Dist: addict\nRequires-Dist: mmengine >=0.3.0\n\nName: in the description\n")
    files = {"mmcv/__init__.py": "from .version import *\n", "mmcv/version.py": "__version__ = '2.1.0'\n",
             "mmcv/ops/__init__.py": "", f"{INFO}/METADATA": metadata, f"{INFO}/top_level.txt": "mmcv\n",
             f"{INFO}/WHEEL": "Wheel-Version: 1.0\nRoot-Is-Purelib: true\nTag: py2-none-any\nTag: py3-none-any\n",
             f"{INFO}/RECORD": "stale,sha256=x,1\n"}
    with zipfile.ZipFile(path, "w") as wheel:
        for name, text in files.items():
            wheel.writestr(zipfile.ZipInfo(name, date_time=(2023, 10, 17, 11, 30, 0)), text)
    return path


def record_rows(wheel: zipfile.ZipFile) -> list[list[str]]:
    return list(csv.reader(io.StringIO(wheel.read(f"{NEW_INFO}/RECORD").decode())))


def check_wheel(path) -> zipfile.ZipFile:
    """Every file of the wheel is in its RECORD with the right sha256 and size, and nothing else is."""
    wheel = zipfile.ZipFile(path)
    rows = record_rows(wheel)
    assert {row[0] for row in rows} == {name for name in wheel.namelist() if not name.endswith("/")}
    for name, digest, size in rows:
        if name == f"{NEW_INFO}/RECORD":
            assert digest == size == ""
            continue
        data = wheel.read(name)
        expected = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
        assert digest == f"sha256={expected}" and int(size) == len(data), name
    return wheel


def test_relabel_renames_the_distribution_and_keeps_the_files(tmp_path):
    out = tool.relabel(fake_source(tmp_path / tool.SOURCE_FILE), tmp_path / "out")
    assert out.name == "mmcv-2.1.0+lite-py2.py3-none-any.whl"
    wheel = check_wheel(out)
    assert not any(name.startswith(INFO) for name in wheel.namelist())
    metadata = wheel.read(f"{NEW_INFO}/METADATA").decode()
    headers, _, body = metadata.partition("\n\n")
    assert "Name: mmcv\n" in headers + "\n" and "Version: 2.1.0+lite" in headers
    assert "Requires-Dist: mmengine >=0.3.0" in headers and "without compiled ops" in headers
    assert body == "Name: in the description\n"  # only the headers change
    source = zipfile.ZipFile(tmp_path / tool.SOURCE_FILE)
    for name in ("mmcv/__init__.py", "mmcv/version.py", "mmcv/ops/__init__.py"):
        assert wheel.read(name) == source.read(name)
    assert wheel.read(f"{NEW_INFO}/WHEEL") == source.read(f"{INFO}/WHEEL")


def test_relabel_is_byte_identical_from_run_to_run(tmp_path):
    source = fake_source(tmp_path / tool.SOURCE_FILE)
    first = tool.relabel(source, tmp_path / "a").read_bytes()
    assert tool.relabel(source, tmp_path / "b").read_bytes() == first


def test_relabel_refuses_another_wheel(tmp_path):
    other = tmp_path / "other-1.0-py3-none-any.whl"
    with zipfile.ZipFile(other, "w") as wheel:
        wheel.writestr("other-1.0.dist-info/METADATA", "Name: other\n")
    with pytest.raises(tool.WheelError, match="not the mmcv-lite 2.1.0 wheel"):
        tool.relabel(other, tmp_path / "out")


def test_a_download_with_another_hash_is_refused(tmp_path, monkeypatch):
    def index_serving_other_bytes(command, **kwargs):  # what a tampered index or mirror would do
        (tmp_path / tool.SOURCE_FILE).write_bytes(b"not the wheel")
        return subprocess.CompletedProcess(command, 0, "", "")

    monkeypatch.setattr(tool.subprocess, "run", index_serving_other_bytes)
    with pytest.raises(tool.WheelError, match="sha256"):
        tool.download(tmp_path)


@pytest.mark.install
def test_the_real_wheel_from_the_index(tmp_path):
    """Downloads PyPI's mmcv-lite 2.1.0 (0.7 MB), checks its sha256 and relabels it."""
    wheel = check_wheel(tool.build(tmp_path))
    assert "mmcv/version.py" in wheel.namelist() and "mmcv/ops/nms.py" in wheel.namelist()
    assert not any(name.endswith(".so") for name in wheel.namelist())
    assert b"__version__ = '2.1.0'" in wheel.read("mmcv/version.py")
