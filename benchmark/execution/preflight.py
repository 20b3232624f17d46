"""Everything about a plan that can be checked before the first training step, checked once.

``preflight(runs)`` builds what the runs will use, cheaply and without training: the datasets of
every (dataset, data root, preset) (kept, and reused by the execution), the training and test
pipelines, and per preset and model the segmentor and its optimizer. It checks the click budget
against the smallest pool image. Anything wrong is one UsageError naming the problem and the fix,
raised before any file is written under ``--out``.
"""
from __future__ import annotations

import re
from pathlib import Path

from benchmark.errors import UsageError

UNEXPECTED_KEY = re.compile(r"unexpected keyword argument '([^']+)'")
MISSING_KEY = re.compile(r"missing \d+ required positional argument[s]?: (.+)$")


class PlanResources:
    """The resolved preset of each preset file and one RunData per (dataset, data root, preset),
    built once per process and shared by every run that uses them."""

    def __init__(self):
        self._presets, self._data = {}, {}

    def preset(self, run):
        from benchmark.config.presets import load_preset

        if run.preset not in self._presets:
            self._presets[run.preset] = load_preset(Path(run.preset))
        return self._presets[run.preset]

    def data(self, run):
        from benchmark.data import get_dataset
        from benchmark.data.run_data import RunData

        key = (run.dataset, run.data_root, run.preset)
        if key not in self._data:
            self._data[key] = RunData(get_dataset(run.dataset), run.data_root, self.preset(run))
        return self._data[key]


def build_error(preset_path, what: str, err: Exception) -> UsageError:
    """A one-line UsageError for a preset section mmengine/mmseg/torch could not build."""
    text = " ".join(str(err).split()) or type(err).__name__
    found = UNEXPECTED_KEY.search(text)
    if found:
        problem = f"{what} does not take the key {found.group(1)!r}"
    elif MISSING_KEY.search(text):
        problem = f"{what} lacks the required key(s) {MISSING_KEY.search(text).group(1)}"
    else:
        problem = f"{what} cannot be built ({type(err).__name__}: {text[:300]})"
    return UsageError(f"preset {preset_path}: {problem}; fix the preset (a `_delete_=True` in the "
                      f"overriding dict replaces an inherited one instead of merging into it)")


def check_budget(run, data) -> None:
    """The clicks of every cycle must fit into the smallest pool image."""
    smallest = min(s.pixels for s in data.shapes.values())
    if run.pixels_per_image * run.cycles > smallest:
        raise UsageError(f"--pixels-per-image {run.pixels_per_image} x --cycles {run.cycles} asks for "
                         f"more pixels than the smallest image has ({smallest}): lower one of them")


def check_model_and_optimizer(run, preset, data) -> None:
    """Build the run's segmentor (on the CPU) and its optimizer, as training will."""
    from mmengine.optim import build_optim_wrapper

    from benchmark.model.segmentor import build_model

    try:
        model = build_model(preset, len(data.classes), 0, run.pretrained, "cpu")
    except Exception as err:  # the preset's model section: whatever mmseg's builders raise
        raise build_error(run.preset, "model", err) from None
    try:
        build_optim_wrapper(model, dict(type="OptimWrapper", optimizer=dict(preset.schedule.optimizer)))
    except Exception as err:  # an optimizer given another optimizer's keys, say
        raise build_error(run.preset, f"schedule.optimizer ({preset.schedule.optimizer.get('type')})", err) from None


def check_pipelines(run, preset, data) -> None:
    """Build every transform of the training (sparse and dense) and test pipelines."""
    try:
        data.check_pipelines()
    except UsageError:
        raise
    except Exception as err:
        raise build_error(run.preset, "data (a pipeline step)", err) from None


def preflight(runs) -> PlanResources:
    """Build and check what every run of the plan needs; the resources are reused by the runs."""
    resources, built = PlanResources(), set()
    for run in runs:
        preset, data = resources.preset(run), resources.data(run)
        if (run.preset, run.model) not in built:
            check_pipelines(run, preset, data)
            check_model_and_optimizer(run, preset, data)
            built.add((run.preset, run.model))
        if not run.is_supervised:
            check_budget(run, data)
    return resources
