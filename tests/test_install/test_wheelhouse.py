"""tools/wheelhouse.py: a folder from which a machine without internet installs the harness beside
its own torch (issue 21, goal 2), proven by installing from it with pip cut off from every network."""
from __future__ import annotations

import subprocess
import zipfile

import pytest

from tests.test_install.conftest import load_tool, make_venv, offline_env, purelib, run

tool = load_tool("wheelhouse")


def test_manylinux_platforms_stand_for_every_older_glibc():
    platforms = tool.expand_platforms(["manylinux_2_28_x86_64"])
    assert platforms[0] == "manylinux_2_28_x86_64"
    for tag in ("manylinux_2_17_x86_64", "manylinux2014_x86_64", "manylinux2010_x86_64", "manylinux1_x86_64",
                "manylinux_2_5_x86_64"):
        assert tag in platforms
    assert "manylinux_2_29_x86_64" not in platforms
    assert tool.expand_platforms(["manylinux2014_aarch64"])[:2] == ["manylinux_2_17_aarch64", "manylinux2014_aarch64"]
    assert tool.expand_platforms(["macosx_11_0_arm64"]) == ["macosx_11_0_arm64"]


def test_the_stand_in_torch_is_an_empty_wheel_without_requirements(tmp_path):
    with zipfile.ZipFile(tool.stub_torch(tmp_path)) as wheel:
        assert not [name for name in wheel.namelist() if not name.startswith("torch-2.1.0+wheelhouse.stub.dist-info/")]
        metadata = wheel.read("torch-2.1.0+wheelhouse.stub.dist-info/METADATA").decode()
    assert "Name: torch" in metadata and "Requires-Dist" not in metadata


def test_a_source_only_dependency_is_built_into_a_wheel_and_the_download_retried(tmp_path, monkeypatch):
    calls = []
    monkeypatch.setattr(tool.mmcv_lite_wheel, "build", lambda dest, python: dest / "mmcv-2.1.0+lite-py2.py3-none-any.whl")
    monkeypatch.setattr(tool, "project_wheel", lambda dest, python: dest / "al_seg_benchmark-0.1.0-py3-none-any.whl")

    def pip(python, *args):
        calls.append(args[0])
        if args[0] == "download" and calls.count("download") == 1:
            return subprocess.CompletedProcess(args, 1, "", "ERROR: Could not find a version that satisfies the "
                                               "requirement oldpkg>=1.0 (from mmengine) (from versions: none)\n"
                                               "ERROR: No matching distribution found for oldpkg>=1.0\n")
        if args[0] == "wheel":
            assert "--no-binary" in args and args[args.index("--no-binary") + 1] == "oldpkg" and args[-1] == "oldpkg>=1.0"
            folder = args[args.index("-w") + 1]
            (tmp_path / "built").mkdir()
            zipfile.ZipFile(f"{folder}/oldpkg-1.2-py3-none-any.whl", "w").close()
        return subprocess.CompletedProcess(args, 0, "", "")

    monkeypatch.setattr(tool, "_pip", pip)
    tool.build(tmp_path / "house", log=lambda *args: None)
    assert calls == ["download", "wheel", "download"]
    assert (tmp_path / "house" / "oldpkg-1.2-py3-none-any.whl").is_file()


def test_a_source_only_dependency_that_must_compile_is_reported(tmp_path, monkeypatch):
    def pip(python, *args):
        zipfile.ZipFile(f"{args[args.index('-w') + 1]}/native-1.0-cp311-cp311-linux_x86_64.whl", "w").close()
        return subprocess.CompletedProcess(args, 0, "", "")

    monkeypatch.setattr(tool, "_pip", pip)
    with pytest.raises(tool.WheelhouseError, match="not pure Python"):
        tool.build_from_source("native", tmp_path, "python")


@pytest.mark.install
def test_wheelhouse_holds_the_project_mmcv_without_ops_and_no_torch(wheelhouse):
    names = sorted(path.name for path in wheelhouse.glob("*.whl"))
    assert "mmcv-2.1.0+lite-py2.py3-none-any.whl" in names
    assert any(name.startswith("al_seg_benchmark-0.1.0-") for name in names)
    for needed in ("mmengine-", "mmsegmentation-", "numpy-", "scipy-", "submitit-", "setuptools-"):
        assert any(name.startswith(needed) for name in names), needed
    assert not [name for name in names if name.startswith(("torch-", "nvidia_", "triton-"))]
    assert not list(wheelhouse.glob("*.tar.gz")) and not list(wheelhouse.glob("*.zip"))


@pytest.mark.install
def test_offline_install_from_the_wheelhouse_beside_an_existing_torch(wheelhouse, bare_torch_site, tmp_path):
    torch_site = bare_torch_site
    python = make_venv(tmp_path / "venv", torch_site)
    env = offline_env()
    run([python, "-m", "pip", "install", "-q", "--no-index", "--find-links", wheelhouse, "al-seg-benchmark[cluster]"],
        cwd=tmp_path, env=env)
    site = purelib(python)
    assert not (site / "torch").exists() and not list(site.glob("torch-*")), "pip installed a torch into the venv"
    check = run([python, "-c", "import benchmark, mmseg.models, torch, mmcv, importlib.metadata as m; "
                 "from benchmark.runtime.mmcv_without_ops import has_compiled_ops; "
                 "print(benchmark.__file__, torch.__file__, m.version('mmcv'), has_compiled_ops())"],
                cwd=tmp_path, env=env).stdout.split()
    assert check[0].startswith(str(site)) and check[1].startswith(str(torch_site))
    assert check[2:] == ["2.1.0+lite", "False"]
    # a preset loads (mmengine finds mmseg's configs through pkg_resources: setuptools < 81)
    run([python, "-c", "from benchmark.config.presets import PRESET_DIR, load_preset; "
         "assert load_preset(PRESET_DIR / 'cityscapes_fpn.py').model.type == 'EncoderDecoder'"], cwd=tmp_path, env=env)
    listing = run([python, "-m", "benchmark", "list"], cwd=tmp_path, env=env).stdout
    assert "balent" in listing and "random" in listing
    run([python, "-m", "pip", "check"], cwd=tmp_path, env=env)
