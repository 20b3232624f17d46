"""A preset's data transforms as mmseg pipeline steps."""
from __future__ import annotations


def pipeline_steps(preset, key: str) -> list[dict]:
    """The transforms of ``preset.data[key]`` (``train_augment``, ``test_resize``) in order: a list
    of steps, or a dict of named steps (the bases name them so that a preset overrides one step's
    settings and inherits the rest; mmengine merges dicts, not lists)."""
    import copy

    steps = preset.data.get(key) or []
    if isinstance(steps, dict):
        steps = list(steps.values())
    return [copy.deepcopy(dict(step)) for step in steps]
