"""RunSpec: everything one run (dataset, model, strategy, selection, seed) needs, each field
tagged once with its role; the run identity (what a resumed run must match) and the cycle-0
identity (what the shared cycle-0 model depends on) are derived from those roles."""
from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

from benchmark.records.schema import DEFAULT_SELECTION, DEFAULT_UNIT, SUPERVISED

# What each RunSpec field is for, stated once per field (``role`` metadata):
RUN = "run"              # identifies a run's results: a resumed run must match on it
CYCLE0 = "cycle0"        # identifies the run's cycle 0 (shared model of a seed) AND the run
EXECUTION = "execution"  # only how the run executes; may change between resumes
ROLES = (RUN, CYCLE0, EXECUTION)


def _tagged(role: str, **kwargs):
    return field(metadata={"role": role}, **kwargs)


@dataclass(frozen=True)
class RunSpec:
    """Everything one run (dataset, model, strategy, seed) needs; flags map 1:1 to fields.

    Every field carries a role (``RUN``, ``CYCLE0`` or ``EXECUTION``); the resume check and the
    cycle-0 cache key are both derived from those roles (``run_identity``, ``cycle0_identity``).
    """

    dataset: str = _tagged(CYCLE0)
    data_root: str = _tagged(CYCLE0)
    model: str = _tagged(CYCLE0)
    preset: str = _tagged(EXECUTION)         # path of the mmengine config file (its content: preset_digest)
    preset_digest: str = _tagged(CYCLE0)     # digest of the resolved preset (its _base_ files included)
    strategy: str = _tagged(RUN)
    selection: str = _tagged(RUN)            # the selector turning a score map into clicks (topn, ...)
    seed: int = _tagged(CYCLE0)
    cycles: int = _tagged(RUN)
    pixels_per_image: int = _tagged(CYCLE0)
    mc_samples: int = _tagged(RUN)
    train_iters: int = _tagged(CYCLE0)
    batch_size: int = _tagged(CYCLE0)
    device: str = _tagged(EXECUTION)
    retrain: str = _tagged(RUN)
    oracle: str = _tagged(EXECUTION)
    out: str = _tagged(EXECUTION)
    pretrained: str | None = _tagged(CYCLE0)
    amp: bool = _tagged(CYCLE0)
    map_images: int = _tagged(EXECUTION)
    map_strategies: tuple = _tagged(EXECUTION)  # strategies whose score maps are saved for the figures
    mc_dropout_rate: float = _tagged(CYCLE0)  # the head's dropout, at training and at MC inference
    mc_dropout_mask: str = _tagged(CYCLE0)    # channel (Dropout2d) or element (Dropout)
    void_clicks: str = _tagged(CYCLE0)        # spend: a void click costs budget; skip: passed over for free
    record_pixels: int = _tagged(RUN)         # pixels per image the uncertainty record samples (0: all)
    gpus_per_run: int = _tagged(CYCLE0, default=1)  # DDP ranks; the effective batch is gpus_per_run x batch_size
    # the query unit and the cost model (docs/regions.md). Cycle 0 is the same random pixel clicks
    # for every unit (so these are RUN fields, not CYCLE0: one shared cycle-0 model per seed)
    unit: str = _tagged(RUN, default=DEFAULT_UNIT)  # pixel (a click) or superpixel (a region's dominant class)
    unit_cost: float = _tagged(RUN, default=1.0)    # cost units of one query of the unit
    pixel_cost: float = _tagged(RUN, default=1.0)   # ... of one pixel click (cycle 0's random clicks)
    budget_per_image: float | None = _tagged(RUN, default=None)  # cost units per image per cycle (None:
    #                                                              pixels_per_image pixel clicks)
    superpixels: dict | None = _tagged(RUN, default=None)  # the superpixel unit's settings, else None

    @property
    def run_id(self) -> str:
        """``dataset__model__strategy[__selection][__unit]__seedN`` (the selection named when not
        topn, the unit when not pixel)."""
        selection = "" if self.selection == DEFAULT_SELECTION else f"__{self.selection}"
        unit = "" if self.unit == DEFAULT_UNIT else f"__{self.unit}"
        return f"{self.dataset}__{self.model}__{self.strategy}{selection}{unit}__seed{self.seed}"

    @property
    def budget(self) -> float:
        """Cost units per image per cycle: ``budget_per_image``, else pixels_per_image clicks."""
        return self.pixels_per_image * self.pixel_cost if self.budget_per_image is None else self.budget_per_image

    @property
    def queries_per_image(self) -> int:
        """Queries of the run's unit per image per cycle: as many as the budget pays for."""
        return int(self.budget / self.unit_cost + 1e-9)

    @property
    def run_dir(self) -> Path:
        return Path(self.out) / "runs" / self.run_id

    @property
    def is_supervised(self) -> bool:
        return self.strategy == SUPERVISED

    @property
    def planned_cycles(self) -> int:
        """Cycles this run records: the supervised reference trains once."""
        return 1 if self.is_supervised else self.cycles

    @property
    def effective_batch_size(self) -> int:
        """Images per optimiser step: --batch-size per rank, times the ranks."""
        return self.batch_size * self.gpus_per_run

    def as_dict(self) -> dict:
        return asdict(self)


LEGACY_FIELDS = ("unit", "unit_cost", "pixel_cost", "budget_per_image", "superpixels")  # added later


def legacy_value(spec: RunSpec, name: str):
    """The value a run made before field ``name`` existed ran with (pixel clicks of cost 1, the
    budget pixels_per_image of them); a resumed older run must match it."""
    defaults = {f.name: f.default for f in fields(RunSpec)}
    return spec.pixels_per_image * 1.0 if name == "budget_per_image" else defaults.get(name)


def run_identity(spec: RunSpec) -> dict:
    """The fields a resumed run must share with the run in the folder (roles RUN and CYCLE0)."""
    return {f.name: getattr(spec, f.name) for f in fields(spec) if f.metadata["role"] in (RUN, CYCLE0)}


def cycle0_identity(spec: RunSpec) -> dict:
    """The fields that determine cycle 0's trained model (role CYCLE0): not the strategy."""
    return {f.name: getattr(spec, f.name) for f in fields(spec) if f.metadata["role"] == CYCLE0}


def preset_digest(preset) -> str:
    """Digest of a resolved mmengine preset (every value, its ``_base_`` files included)."""
    text = json.dumps(preset.to_dict(), sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def cycle0_key(spec: RunSpec) -> str:
    """The cycle-0 cache entry of ``spec``: readable prefix + digest of ``cycle0_identity``."""
    text = json.dumps(cycle0_identity(spec), sort_keys=True, default=str)
    digest = hashlib.sha256(text.encode()).hexdigest()[:16]
    return f"{spec.dataset}__{spec.model}__seed{spec.seed}__{digest}"
