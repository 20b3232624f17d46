"""A sweep of ordinary mistakes through the CLI, each against an output folder holding planted
files: exit 2, one ``error:`` line (no traceback), within a minute, planted files untouched and
nothing new written (issue: fail before the first training step)."""
import time
from pathlib import Path

import pytest

from tests.conftest import REPO, assert_usage_error
from tests.fixtures.native_layouts import make_camvid

pytestmark = pytest.mark.integration

PRESETS = REPO / "benchmark" / "mmseg_configs" / "presets"
BASE = f"_base_ = ['{PRESETS / 'synthetic_deeplabv3plus.py'}']\n"
PRESET_TEXT = {  # a user's own preset file, each with one mistake
    "optimizer": BASE + "schedule = dict(optimizer=dict(type='AdamW', lr=1e-3, momentum=0.9))\n",
    "model_key": BASE + "model = dict(decode_head=dict(dropout_typo=0.3))\n",
    "missing_base": "_base_ = ['./no_such_base.py']\n",
    "syntax": BASE + "schedule = dict(iters=10\n",
    "no_schedule": f"_base_ = ['{REPO / 'benchmark' / 'mmseg_configs' / 'models' / 'deeplabv3plus_tiny.py'}']\n",
    "pipeline": BASE + "data = dict(train_augment=[dict(type='NoSuchTransform')])\n",
    "wrong_type": BASE + "schedule = dict(iters='ten')\n",
}
PLANTED = {"notes.txt": b"my notes\n", "cycles.csv": b"dataset,model\nmine,mine\n",
           "runs/elsewhere/keep.bin": bytes(range(256))}


def planted(root: Path) -> Path:
    for name, data in PLANTED.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_bytes(data)
    return root


def snapshot(root: Path) -> dict:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def preset_file(tmp_path: Path, key: str) -> str:
    path = tmp_path / f"user_preset_{key}.py"
    path.write_text(PRESET_TEXT[key])
    return str(path)


def camvid(tmp_path: Path, damage: str) -> str:
    root = make_camvid(tmp_path / "data")
    annots = sorted((root / "trainannot").glob("*.png"))
    if damage == "corrupt":
        annots[-1].write_bytes(b"\x89PNG\r\n\x1a\n truncated")
    else:  # an image whose annotation is missing
        annots[-1].unlink()
    return str(root)


def run(extra):
    """A ``run`` command line writing into the planted folder ``o`` (one training iteration, were it
    ever to train) with the flags ``extra(tmp_path)``."""
    return lambda t, o: ["run", "--train-iters", "1", "--out", str(o), *extra(t)]


CASES = [  # (id, argv builder (tmp_path, planted folder) -> argv, phrases the one line must hold)
    ("budget", run(lambda t: ["--pixels-per-image", "100000000"]), ["--pixels-per-image", "smallest image"]),
    ("one_mc_sample", run(lambda t: ["--mc-samples", "1", "--strategy", "bald"]), ["--mc-samples 1", "bald"]),
    ("optimizer_key", run(lambda t: ["--preset", preset_file(t, "optimizer")]), ["momentum", "user_preset_optimizer"]),
    ("model_key", run(lambda t: ["--preset", preset_file(t, "model_key")]), ["dropout_typo", "user_preset_model_key"]),
    ("missing_base", run(lambda t: ["--preset", preset_file(t, "missing_base")]), ["no_such_base"]),
    ("preset_syntax", run(lambda t: ["--preset", preset_file(t, "syntax")]), ["user_preset_syntax"]),
    ("preset_section", run(lambda t: ["--preset", preset_file(t, "no_schedule")]), ["active_learning"]),
    ("pipeline_step", run(lambda t: ["--preset", preset_file(t, "pipeline")]), ["NoSuchTransform"]),
    ("preset_value_type", lambda t, o: ["run", "--out", str(o), "--preset", preset_file(t, "wrong_type")],
     ["iters", "'ten'", "user_preset_wrong_type"]),
    ("strategy_typo", run(lambda t: ["--strategy", "balnet"]), ["balnet", "Did you mean 'balent'"]),
    ("selection_typo", run(lambda t: ["--selection", "sprad"]), ["sprad", "spread"]),
    ("map_strategy", run(lambda t: ["--map-strategies", "entropyy"]), ["--map-strategies", "entropyy"]),
    ("dropout_rate", run(lambda t: ["--mc-dropout-rate", "1.5"]), ["--mc-dropout-rate"]),
    ("void_skip_file", run(lambda t: ["--void-clicks", "skip", "--oracle", "file"]), ["--void-clicks skip"]),
    ("unit_typo", run(lambda t: ["--unit", "superpixels"]), ["--unit 'superpixels'"]),
    ("region_spread", run(lambda t: ["--unit", "superpixel", "--selection", "spread"]), ["spread", "superpixel"]),
    ("region_budget", run(lambda t: ["--unit", "superpixel", "--budget", "0.5"]), ["budget of 0.5"]),
    ("gpu", run(lambda t: ["--device", "cuda:3"]), ["cuda"]),
    ("seeds", run(lambda t: ["--seeds", "0,x"]), ["--seeds"]),
    ("model", run(lambda t: ["--model", "deeplab"]), ["deeplab"]),
    ("cycles", run(lambda t: ["--cycles", "0"]), ["--cycles"]),
    ("int_flag", run(lambda t: ["--batch-size", "eight"]), ["--batch-size", "eight"]),
    ("resume_and_overwrite", run(lambda t: ["--resume", "--overwrite"]), ["--overwrite"]),
    ("out_is_a_file", lambda t, o: ["run", "--out", str(t / "a_file")], ["--out"]),
    ("empty_data_root", run(lambda t: ["--dataset", "cityscapes", "--data-root", str(t / "empty")]), ["cityscapes"]),
    ("corrupt_label", run(lambda t: ["--dataset", "camvid", "--data-root", camvid(t, "corrupt")]), ["label"]),
    ("unpaired_image", run(lambda t: ["--dataset", "camvid", "--data-root", camvid(t, "unpaired")]), ["CamVid"]),
    ("leaderboard_garbled", lambda t, o: ["leaderboard", "--results", str(o)], ["cycles.csv"]),
    ("plot_garbled", lambda t, o: ["plot", "--results", str(o)], ["cycles.csv"]),
    ("export_unknown_run", lambda t, o: ["export-queries", "--results", str(o), "--run", "nope", "--cycle", "1"],
     ["nope"]),
    ("import_missing_file", lambda t, o: ["import-labels", "--results", str(o), "--run", "elsewhere", "--file",
                                          str(t / "answers.csv")], ["elsewhere"]),
    ("check_empty_root", lambda t, o: ["datasets", "check", "--dataset", "voc2012", "--data-root", str(t / "empty")],
     ["voc2012"]),
]


@pytest.fixture(scope="module")
def generated(benchmark_cache):
    """The embedded dataset generated once beforehand (into the tests' cache), so the timings are
    the commands' own."""
    from benchmark.config.presets import PRESET_DIR, load_preset
    from benchmark.data.synthetic import ensure_synthetic

    ensure_synthetic(benchmark_cache, **load_preset(PRESET_DIR / "synthetic_deeplabv3plus.py").synthetic)


@pytest.mark.parametrize("argv, phrases", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_a_mistake_is_one_line_fast_and_touches_nothing(run_cli, generated, tmp_path, argv, phrases):
    out = planted(tmp_path / "out")
    (tmp_path / "a_file").write_text("not a folder")
    (tmp_path / "empty").mkdir()
    args = argv(tmp_path, out)
    before = snapshot(out)
    started = time.monotonic()
    proc = run_cli(*args, check=False)
    elapsed = time.monotonic() - started
    assert_usage_error(proc, *phrases)
    assert elapsed < 60, f"{elapsed:.0f} s"
    assert snapshot(out) == before  # nothing rewritten, nothing created
