"""tools/shared_env.py: the tox environments' shared virtualenv is rebuilt only when what it was
built from changes (pyproject.toml, the script, the mmcv tool)."""
from __future__ import annotations

from tests.test_install.conftest import load_tool

shared_env = load_tool("shared_env")


def test_an_up_to_date_environment_is_left_alone(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(shared_env.venv, "create", lambda *a, **k: (_ for _ in ()).throw(AssertionError("rebuilt")))
    (tmp_path / ".installed").write_text(shared_env.digest() + "\n")
    assert shared_env.main(str(tmp_path)) == 0
    assert "is up to date" in capsys.readouterr().out


def test_the_digest_covers_the_mmcv_tool(monkeypatch, tmp_path):
    before = shared_env.digest()
    changed = tmp_path / "mmcv_lite_wheel.py"
    changed.write_text("# another way to get mmcv\n")
    monkeypatch.setattr(shared_env.mmcv_lite_wheel, "__file__", str(changed))
    assert shared_env.digest() != before

