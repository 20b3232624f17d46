"""From command-line flags to a validated list of runs. Every flag is checked here, once."""
from __future__ import annotations

import os
import tempfile
from dataclasses import asdict, dataclass, replace
from pathlib import Path

from benchmark.errors import UsageError

MODELS = ("deeplabv3plus", "fpn")
SUPERVISED = "supervised"
CONFIG_DIR = Path(__file__).resolve().parent.parent / "mmseg_configs"
PRESET_DIR = CONFIG_DIR / "presets"


@dataclass(frozen=True)
class RunSpec:
    """Everything one run (dataset, model, strategy, seed) needs; flags map 1:1 to fields."""

    dataset: str
    data_root: str
    model: str
    preset: str            # path of the mmengine config file (model + schedule + AL settings)
    strategy: str
    seed: int
    cycles: int
    pixels_per_image: int
    mc_samples: int
    train_iters: int
    batch_size: int
    device: str
    retrain: str
    oracle: str
    out: str
    pretrained: str | None
    amp: bool
    map_images: int

    @property
    def run_id(self) -> str:
        return f"{self.dataset}__{self.model}__{self.strategy}__seed{self.seed}"

    @property
    def run_dir(self) -> Path:
        return Path(self.out) / "runs" / self.run_id

    @property
    def is_supervised(self) -> bool:
        return self.strategy == SUPERVISED

    def as_dict(self) -> dict:
        return asdict(self)


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


def resolve_strategies(text: str) -> list[str]:
    """'all' or 'a,b' -> registered strategy names (validated against the registry)."""
    from strategies import describe_strategies, load_entry_points

    load_entry_points()
    registered = [row[0] for row in describe_strategies()]
    if text.strip() == "all":
        return sorted(registered)
    names = [n.strip() for n in text.split(",") if n.strip()]
    for name in names:
        if name not in registered:
            raise UsageError(f"unknown strategy {name!r}: registered strategies are "
                             f"{', '.join(sorted(registered))} (see `python -m benchmark list`)")
    return list(dict.fromkeys(names))


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
    if device != "cpu" and not device.startswith("cuda"):
        raise UsageError(f"unknown device {device!r}: use cpu, cuda, cuda:N or auto")
    return device


def check_writable(out: Path) -> None:
    try:
        out.mkdir(parents=True, exist_ok=True)
        fd, probe = tempfile.mkstemp(prefix=".write-probe-", dir=out)
        os.close(fd)
        os.unlink(probe)
    except OSError as err:
        raise UsageError(f"cannot write to output folder {out} ({err.strerror}): "
                         f"pass --out with a writable folder") from None


def check_positive(value: int | None, flag: str, minimum: int = 1) -> None:
    if value is not None and value < minimum:
        raise UsageError(f"{flag} must be at least {minimum}; got {value}")


def load_preset(path: Path):
    from mmengine.config import Config

    try:
        return Config.fromfile(str(path))
    except Exception as err:  # a user's own config file with a mistake in it
        raise UsageError(f"cannot read preset {path}: {err}; fix the file or pick a preset name") from None


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

    strategies = resolve_strategies(args.strategy)
    models = resolve_models(args.model)
    spec = get_dataset(args.dataset)
    device = check_device(args.device)
    out = Path(args.out)
    check_writable(out)
    for flag in ("cycles", "pixels_per_image", "mc_samples", "train_iters", "batch_size"):
        check_positive(getattr(args, flag), "--" + flag.replace("_", "-"))
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
            strategy="", seed=0, cycles=_pick(args.cycles, al.cycles),
            pixels_per_image=_pick(args.pixels_per_image, al.pixels_per_image),
            mc_samples=_pick(args.mc_samples, al.mc_samples),
            train_iters=_pick(args.train_iters, schedule.iters),
            batch_size=_pick(args.batch_size, schedule.batch_size), device=device,
            retrain=args.retrain, oracle=args.oracle, out=str(out.resolve()),
            pretrained=str(Path(args.pretrained).resolve()) if args.pretrained else None,
            amp=bool(args.amp or schedule.get("amp", False)),
            map_images=_pick(args.map_images, al.get("map_images", 0)),
        )
        for seed in seeds:
            names = ([SUPERVISED] if args.supervised else []) + strategies
            runs += [replace(base, strategy=name, seed=seed) for name in names]
    return runs


def check_existing(runs: list[RunSpec], resume: bool, overwrite: bool) -> None:
    """Refuse to silently mix or clobber results already in the output folder."""
    import json

    for run in runs:
        config = run.run_dir / "config.json"
        if not config.exists():
            continue
        if overwrite:
            continue
        if not resume:
            raise UsageError(f"{run.run_dir} already holds results: pass --resume to continue "
                             f"it, --overwrite to recompute it, or --out for a fresh folder")
        old = json.loads(config.read_text()).get("run", {})
        for key, value in run.as_dict().items():
            if key in ("device", "out", "amp") or old.get(key) == value:
                continue
            raise UsageError(f"cannot resume {run.run_id}: it was made with {key}={old.get(key)!r}, "
                             f"now {key}={value!r}; use the same settings, --overwrite or another --out")
