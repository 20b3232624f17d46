"""User mistakes end with one clear line, exit code 2, and nothing in results/ damaged."""
import pytest

from tests.conftest import assert_usage_error

pytestmark = pytest.mark.integration


@pytest.mark.parametrize("args, phrases", [
    (["--strategy", "balentt"], ["unknown strategy 'balentt'", "balent", "random"]),
    (["--model", "unet"], ["unknown model 'unet'", "deeplabv3plus", "fpn"]),
    (["--dataset", "kitti"], ["kitti"]),
    (["--dataset", "cityscapes"], ["--data-root"]),
    (["--seeds", "a,b"], ["--seeds"]),
    (["--cycles", "0"], ["--cycles"]),
    (["--device", "cuda"], ["cuda"]),
    (["--preset", "nonexistent"], ["no preset 'nonexistent'"]),
])
def test_bad_flags(run_cli, tmp_path, args, phrases):
    assert_usage_error(run_cli("run", "--out", tmp_path / "out", *args, check=False), *phrases)


def test_missing_data_root(run_cli, tmp_path):
    proc = run_cli("run", "--dataset", "cityscapes", "--data-root", tmp_path / "nowhere",
                   "--out", tmp_path / "out", check=False)
    assert_usage_error(proc)


def test_impossible_budget(run_cli, tmp_path):
    proc = run_cli("run", "--strategy", "random", "--pixels-per-image", "100000", "--cycles", "2",
                   "--no-supervised", "--out", tmp_path / "out", check=False)
    assert_usage_error(proc, "--pixels-per-image")


def test_unwritable_output_folder(run_cli, tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    proc = run_cli("run", "--out", blocker / "results", check=False)
    assert_usage_error(proc, "--out")


def test_existing_results_are_not_clobbered(run_cli, tmp_path):
    out = tmp_path / "out"
    run = out / "runs" / "synthetic__deeplabv3plus__random__seed0"
    run.mkdir(parents=True)
    (run / "config.json").write_text('{"run": {}}')
    (out / "cycles.csv").write_text("precious\n")
    proc = run_cli("run", "--strategy", "random", "--no-supervised", "--out", out, check=False)
    assert_usage_error(proc, "--resume", "--overwrite")
    assert (out / "cycles.csv").read_text() == "precious\n"
    assert (run / "config.json").read_text() == '{"run": {}}'


def test_list_shows_every_builtin_strategy(run_cli):
    proc = run_cli("list")
    for name in ("random", "entropy", "margin", "bald", "pbald", "balent", "balent_ref"):
        assert name in proc.stdout
