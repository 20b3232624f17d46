"""Presets: mmengine config files (model + schedule + active-learning settings) under
``benchmark/mmseg_configs/presets/`` or a user's own file; found, read and checked here."""
from __future__ import annotations

from pathlib import Path

from benchmark.errors import UsageError

CONFIG_DIR = Path(__file__).resolve().parents[1] / "mmseg_configs"
PRESET_DIR = CONFIG_DIR / "presets"


def resolve_preset(preset: str | None, dataset: str, model: str) -> Path:
    """A preset name (file ``benchmark/mmseg_configs/presets/<name>_<model>.py``) or a config path."""
    name = preset or dataset
    if name.endswith(".py"):
        path = Path(name)
        if not path.is_file():
            raise UsageError(f"preset file {name} does not exist: pass an existing mmengine "
                             f"config file or a preset name")
        return path.resolve()
    path = PRESET_DIR / f"{name}_{model}.py"
    if not path.is_file():
        known = sorted({p.stem.rsplit("_", 1)[0] for p in PRESET_DIR.glob("*_*.py")})
        raise UsageError(f"no preset {name!r} for model {model}: choose one of "
                         f"{', '.join(known)} or pass a config file path")
    return path


PRESET_KEYS = {  # section -> keys the harness reads from it (the model section is mmseg's own)
    "model": (), "active_learning": ("cycles", "pixels_per_image", "mc_samples", "seeds"),
    "schedule": ("iters", "batch_size", "optimizer"), "data": (),
}


def load_preset(path: Path):
    """The resolved mmengine config of a preset; UsageError for an unreadable one or one that lacks
    a section or key the harness reads."""
    from mmengine.config import Config

    try:
        preset = Config.fromfile(str(path))
    except Exception as err:  # a user's own config file with a mistake in it
        text = " ".join(str(err).split())
        raise UsageError(f"cannot read preset {path}: {type(err).__name__}: {text}; fix the file or pick a "
                         f"preset name") from None
    for section, keys in PRESET_KEYS.items():
        if not isinstance(preset.get(section), dict):
            raise UsageError(f"preset {path} has no {section} section (a dict): inherit one of "
                             f"benchmark/mmseg_configs/presets/ through _base_ or define it")
        missing = [k for k in keys if k not in preset[section]]
        if missing:
            raise UsageError(f"preset {path}: {section} lacks {', '.join(missing)}: add it or inherit a preset")
    if not isinstance(preset.schedule.optimizer, dict) or "type" not in preset.schedule.optimizer:
        raise UsageError(f"preset {path}: schedule.optimizer must be a dict with a type, e.g. "
                         f"dict(type='AdamW', lr=2e-3)")
    return preset


def selector_params(preset, name: str) -> dict:
    """The preset's parameters of selector ``name`` (``active_learning.selector_params``)."""
    return dict(preset.active_learning.get("selector_params", {}).get(name, {}))
