"""From command-line flags to a validated list of runs. Every flag is checked here, once."""
from __future__ import annotations

import hashlib
import json
import os
import re
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path

from benchmark.errors import UsageError
from benchmark.records import DEFAULT_SELECTION, SUPERVISED

MODELS = ("deeplabv3plus", "fpn")

VOID_CLICKS = ("spend", "skip")
CONFIG_DIR = Path(__file__).resolve().parent.parent / "mmseg_configs"
PRESET_DIR = CONFIG_DIR / "presets"

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

    @property
    def run_id(self) -> str:
        """``dataset__model__strategy[__selection]__seedN`` (the selection named when not topn)."""
        selection = "" if self.selection == DEFAULT_SELECTION else f"__{self.selection}"
        return f"{self.dataset}__{self.model}__{self.strategy}{selection}__seed{self.seed}"

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


def role_of(name: str) -> str:
    """The role of the RunSpec field ``name``."""
    return {f.name: f.metadata.get("role") for f in fields(RunSpec)}[name]


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


def parse_int_list(text: str, flag: str) -> list[int]:
    try:
        values = [int(part) for part in str(text).split(",") if part.strip() != ""]
    except ValueError:
        raise UsageError(f"{flag} takes comma-separated integers such as 0,1,2; got {text!r}") from None
    if not values or any(v < 0 for v in values):
        raise UsageError(f"{flag} takes non-negative integers such as 0,1,2; got {text!r}")
    return values


def import_plugin_modules(text: str | None) -> list[str]:
    """Import the comma-separated modules of ``--plugins`` so their strategies register."""
    import importlib
    import sys

    modules = [m.strip() for m in (text or "").split(",") if m.strip()]
    if modules and os.getcwd() not in sys.path:  # the console script does not add it itself
        sys.path.insert(0, os.getcwd())
    for module in modules:
        try:
            importlib.import_module(module)
        except ModuleNotFoundError as err:
            raise UsageError(f"--plugins: cannot import {module!r} ({err}); put its folder on "
                             f"PYTHONPATH or run from the folder that holds it") from None
        except Exception as err:  # the plugin's own bug: name it, no traceback
            raise UsageError(f"--plugins: importing {module!r} failed: {type(err).__name__}: {err}; "
                             f"fix the module") from None
    return modules


def registered_strategies() -> list[str]:
    """Every registered strategy name (built-ins and installed plugins), sorted."""
    from strategies import STRATEGIES, load_entry_points

    load_entry_points()
    return STRATEGIES.names()


def resolve_strategy_names(text: str, flag: str = "--strategy") -> list[str]:
    """'all' or 'a,b' -> registered strategy names; an unknown name is the registry's own
    message ("did you mean", the registered names) raised as a usage error."""
    from strategies import STRATEGIES, UnknownStrategyError

    registered = registered_strategies()
    if text.strip() == "all":
        return registered
    names = list(dict.fromkeys(n.strip() for n in text.split(",") if n.strip()))
    if not names:
        raise UsageError(f"{flag} needs at least one strategy name (or all); see `python -m benchmark list`")
    for name in names:
        if name == SUPERVISED:
            raise UsageError(f"{flag}: {SUPERVISED!r} is the fully supervised reference, not a strategy: it "
                             f"runs by default (--no-supervised skips it)")
        try:
            STRATEGIES.require(name)
        except UnknownStrategyError as err:
            raise UsageError(f"{flag}: {err} See `python -m benchmark list`.") from None
    return names


def resolve_selection_names(text: str, preset) -> list[str]:
    """'a,b' -> registered selector names, each built once with the preset's parameters
    (``active_learning.selector_params[name]``) so that a bad parameter fails here."""
    from strategies import SELECTORS, UnknownSelectorError, build_selector

    names = list(dict.fromkeys(n.strip() for n in text.split(",") if n.strip()))
    if not names:
        raise UsageError("--selection needs at least one selector name; see `python -m benchmark list`")
    for name in names:
        try:
            SELECTORS.require(name)
            build_selector(name, **selector_params(preset, name))
        except UnknownSelectorError as err:
            raise UsageError(f"--selection: {err} See `python -m benchmark list`.") from None
        except (TypeError, ValueError) as err:
            raise UsageError(f"selector {name}: {err}; fix active_learning.selector_params in the preset") from None
    return names


def selector_params(preset, name: str) -> dict:
    """The preset's parameters of selector ``name`` (``active_learning.selector_params``)."""
    return dict(preset.active_learning.get("selector_params", {}).get(name, {}))


def resolve_models(text: str) -> list[str]:
    if text.strip() == "all":
        return list(MODELS)
    names = [n.strip() for n in text.split(",") if n.strip()]
    for name in names:
        if name not in MODELS:
            raise UsageError(f"unknown model {name!r}: choose one of {', '.join(MODELS)} or all")
    return list(dict.fromkeys(names))


def resolve_preset(preset: str | None, dataset: str, model: str) -> Path:
    """A preset name (file ``mmseg_configs/presets/<name>_<model>.py``) or a config path."""
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


def check_device(device: str) -> str:
    import torch

    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise UsageError("--device cuda was asked for but torch sees no CUDA GPU: "
                         "use --device cpu (or install a CUDA build of torch)")
    if device != "cpu" and not re.fullmatch(r"cuda(:\d+)?", device):
        raise UsageError(f"unknown device {device!r}: use cpu, cuda, cuda:N or auto")
    if device.startswith("cuda:") and int(device.split(":")[1]) >= torch.cuda.device_count():
        raise UsageError(f"--device {device}: torch sees {torch.cuda.device_count()} GPU(s), numbered from 0; "
                         f"pick one of them")
    return device


def check_writable(out: Path) -> None:
    """``out`` can be created and written, checked without creating or touching anything."""
    probe = out.resolve()
    while not probe.exists():
        probe = probe.parent
    if not probe.is_dir():
        raise UsageError(f"cannot write to output folder {out}: {probe} is a file; pass --out with a folder")
    if not os.access(probe, os.W_OK | os.X_OK):
        raise UsageError(f"cannot write to output folder {out} ({probe} is not writable): "
                         f"pass --out with a writable folder")


def check_positive(value: int | None, flag: str, minimum: int = 1) -> None:
    if value is not None and value < minimum:
        raise UsageError(f"{flag} must be at least {minimum}; got {value}")


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
                             f"mmseg_configs/presets/ through _base_ or define it")
        missing = [k for k in keys if k not in preset[section]]
        if missing:
            raise UsageError(f"preset {path}: {section} lacks {', '.join(missing)}: add it or inherit a preset")
    if not isinstance(preset.schedule.optimizer, dict) or "type" not in preset.schedule.optimizer:
        raise UsageError(f"preset {path}: schedule.optimizer must be a dict with a type, e.g. "
                         f"dict(type='AdamW', lr=2e-3)")
    return preset


def mc_dropout_settings(args, al) -> dict:
    """The run's MC dropout (flags over ``active_learning.mc_dropout``), checked."""
    from benchmark.mc_dropout import MASKS

    preset = dict(al.get("mc_dropout", {}))
    rate = _pick(args.mc_dropout_rate, preset.get("rate", 0.1))
    mask = _pick(args.mc_dropout_mask, preset.get("mask", "channel"))
    if not (isinstance(rate, (int, float)) and 0.0 < rate < 1.0):
        raise UsageError(f"MC dropout rate {rate!r} is not in (0, 1): pass --mc-dropout-rate such as 0.1 "
                         f"or 0.5 (MC dropout needs some dropout)")
    if mask not in MASKS:
        raise UsageError(f"MC dropout mask {mask!r} is unknown: use {' or '.join(MASKS)}")
    return dict(mc_dropout_rate=float(rate), mc_dropout_mask=mask)


def void_clicks_setting(args, al) -> str:
    """spend (a void click costs budget, the default) or skip (the oracle's void pixels are passed
    over at no cost: an idealised annotator; it needs the ground-truth oracle)."""
    value = _pick(args.void_clicks, al.get("void_clicks", "spend"))
    if value not in VOID_CLICKS:
        raise UsageError(f"void clicks {value!r}: use spend or skip")
    if value == "skip" and args.oracle != "ground-truth":
        raise UsageError("--void-clicks skip needs --oracle ground-truth: a human annotator's void answers "
                         "are only known after the click was paid for")
    return value


def check_mc_samples(strategies: list[str], mc_samples: int) -> None:
    """Each strategy gets at least the MC samples it declares it needs (``min_mc_samples``)."""
    from strategies import STRATEGIES, min_mc_samples

    for name in strategies:
        need = min_mc_samples(STRATEGIES.get(name))
        if mc_samples < need:
            raise UsageError(f"--mc-samples {mc_samples} is too few for strategy {name}: it needs at least "
                             f"{need} (with one sample the MC variance is 0 and its score is constant); "
                             f"raise --mc-samples or drop {name}")


def resolve_data_root(dataset: str, data_root: str | None, preset) -> Path:
    """Where the data lies: the generated embedded dataset, or a checked native layout."""
    from benchmark.data import get_dataset
    from benchmark.data.synthetic import default_cache_dir, ensure_synthetic

    if dataset == "synthetic":
        root = Path(data_root) if data_root else default_cache_dir()
        return ensure_synthetic(root, **preset.get("synthetic", {}))
    if not data_root:
        raise UsageError(f"--dataset {dataset} needs --data-root pointing at its native layout "
                         f"(see `python -m benchmark datasets check --dataset {dataset} --help`)")
    report = get_dataset(dataset).check(data_root, max_label_files=4)
    return Path(getattr(report, "root", data_root))


def _pick(flag_value, preset_value):
    return preset_value if flag_value is None else flag_value


def make_plan(args) -> list[RunSpec]:
    """Validate every flag and expand them into the ordered list of runs.

    Order: for each model and seed, the supervised reference first, then the strategies, so
    that partial results are always comparable. Seeds live here only.
    """
    from benchmark.data import get_dataset

    strategies = resolve_strategy_names(args.strategy)
    models = resolve_models(args.model)
    get_dataset(args.dataset)  # an unknown dataset name is a usage error here
    device = check_device(args.device)
    out = Path(args.out)
    check_writable(out)
    for flag in ("cycles", "pixels_per_image", "mc_samples", "train_iters", "batch_size", "gpus_per_run"):
        check_positive(getattr(args, flag, None), "--" + flag.replace("_", "-"))
    check_positive(args.record_pixels, "--record-pixels", minimum=0)
    if args.pretrained is not None and not Path(args.pretrained).is_file():
        raise UsageError(f"--pretrained {args.pretrained} is not a file: pass a local backbone "
                         f"checkpoint (.pth); nothing is downloaded")
    runs = []
    for model in models:
        preset_path = resolve_preset(args.preset, args.dataset, model)
        preset = load_preset(preset_path)
        al, schedule = preset.active_learning, preset.schedule
        seeds = parse_int_list(args.seeds, "--seeds") if args.seeds else list(al.seeds)
        data_root = resolve_data_root(args.dataset, args.data_root, preset)
        base = RunSpec(
            dataset=args.dataset, data_root=str(data_root), model=model, preset=str(preset_path),
            strategy="", selection=DEFAULT_SELECTION, seed=0, cycles=_pick(args.cycles, al.cycles),
            pixels_per_image=_pick(args.pixels_per_image, al.pixels_per_image),
            mc_samples=_pick(args.mc_samples, al.mc_samples),
            train_iters=_pick(args.train_iters, schedule.iters),
            batch_size=_pick(args.batch_size, schedule.batch_size), device=device,
            retrain=args.retrain, oracle=args.oracle, out=str(out.resolve()),
            pretrained=str(Path(args.pretrained).resolve()) if args.pretrained else None,
            amp=bool(args.amp or schedule.get("amp", False)),
            map_images=_pick(args.map_images, al.get("map_images", 0)),
            map_strategies=tuple(resolve_strategy_names(args.map_strategies, "--map-strategies")
                                 if args.map_strategies is not None else al.get("map_strategies", ())),
            preset_digest=preset_digest(preset),
            **mc_dropout_settings(args, al), void_clicks=void_clicks_setting(args, al),
            record_pixels=_pick(args.record_pixels, al.get("record_pixels", 0)),
            gpus_per_run=getattr(args, "gpus_per_run", 1),
        )
        check_mc_samples(strategies, base.mc_samples)
        selections = resolve_selection_names(args.selection or al.get("selection", DEFAULT_SELECTION), preset)
        for seed in seeds:
            if args.supervised:
                runs.append(replace(base, strategy=SUPERVISED, selection=DEFAULT_SELECTION, seed=seed))
            runs += [replace(base, strategy=name, selection=selection, seed=seed)
                     for name in strategies for selection in selections]
    return runs


def check_existing(runs: list[RunSpec], resume: bool, overwrite: bool) -> None:
    """Refuse to silently mix or clobber results already in the output folder.

    A resumed run must match the folder's run on every field of ``run_identity``.
    """
    for run in runs:
        config = run.run_dir / "config.json"
        if not config.exists() or overwrite:
            continue
        if not resume:
            raise UsageError(f"{run.run_dir} already holds results: pass --resume to continue "
                             f"it, --overwrite to recompute it, or --out for a fresh folder")
        try:
            old = json.loads(config.read_text()).get("run", {})
        except (OSError, ValueError) as err:
            raise UsageError(f"cannot resume {run.run_id}: its config.json is unreadable ({err}); "
                             f"use --overwrite or another --out") from None
        for key, value in run_identity(run).items():
            if key not in old:
                raise UsageError(f"cannot resume {run.run_id}: it was made by an older version that did not "
                                 f"record {key}; use --overwrite or another --out")
            if _same(old[key], value):
                continue
            raise UsageError(f"cannot resume {run.run_id}: it was made with {key}={old.get(key)!r}, "
                             f"now {key}={value!r}; use the same settings, --overwrite or another --out")


def _same(saved, value) -> bool:
    """A value read back from config.json equals the planned one (JSON turns tuples into lists)."""
    return json.loads(json.dumps(value, default=str)) == saved


def cycle0_key(spec: RunSpec) -> str:
    """The cycle-0 cache entry of ``spec``: readable prefix + digest of ``cycle0_identity``."""
    text = json.dumps(cycle0_identity(spec), sort_keys=True, default=str)
    digest = hashlib.sha256(text.encode()).hexdigest()[:16]
    return f"{spec.dataset}__{spec.model}__seed{spec.seed}__{digest}"
