"""From command-line flags to a validated list of runs. Every flag is checked here, once."""
from __future__ import annotations

import json
import os
import re
from dataclasses import replace
from pathlib import Path

from benchmark.config.capabilities import check_map_strategies, selections_for
from benchmark.config.modes import (
    DEFAULT_MC_DROPOUT,
    DEFAULT_VOID_CLICKS,
    MC_DROPOUT_MASKS,
    MODELS,
    ORACLE_GROUND_TRUTH,
    VOID_CLICK_MODES,
    VOID_SKIP,
)
from benchmark.config.presets import load_preset, resolve_preset, selector_params
from benchmark.config.run_spec import LEGACY_FIELDS, RunSpec, legacy_value, preset_digest, run_identity
from benchmark.config.units import unit_fields, units_for
from benchmark.errors import UsageError
from benchmark.records.schema import DEFAULT_SELECTION, SUPERVISED


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


def resolve_models(text: str) -> list[str]:
    if text.strip() == "all":
        return list(MODELS)
    names = [n.strip() for n in text.split(",") if n.strip()]
    for name in names:
        if name not in MODELS:
            raise UsageError(f"unknown model {name!r}: choose one of {', '.join(MODELS)} or all")
    return list(dict.fromkeys(names))


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


def mc_dropout_settings(args, al) -> dict:
    """The run's MC dropout (flags over ``active_learning.mc_dropout``), checked."""
    preset = {**DEFAULT_MC_DROPOUT, **al.get("mc_dropout", {})}
    rate = _pick(args.mc_dropout_rate, preset["rate"])
    mask = _pick(args.mc_dropout_mask, preset["mask"])
    if not (isinstance(rate, (int, float)) and 0.0 < rate < 1.0):
        raise UsageError(f"MC dropout rate {rate!r} is not in (0, 1): pass --mc-dropout-rate such as 0.1 "
                         f"or 0.5 (MC dropout needs some dropout)")
    if mask not in MC_DROPOUT_MASKS:
        raise UsageError(f"MC dropout mask {mask!r} is unknown: use {' or '.join(MC_DROPOUT_MASKS)}")
    return dict(mc_dropout_rate=float(rate), mc_dropout_mask=mask)


def void_clicks_setting(args, al) -> str:
    """spend (a void click costs budget, the default) or skip (the oracle's void pixels are passed
    over at no cost: an idealised annotator; it needs the ground-truth oracle)."""
    value = _pick(args.void_clicks, al.get("void_clicks", DEFAULT_VOID_CLICKS))
    if value not in VOID_CLICK_MODES:
        raise UsageError(f"void clicks {value!r}: use {' or '.join(VOID_CLICK_MODES)}")
    if value == VOID_SKIP and args.oracle != ORACLE_GROUND_TRUTH:
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


def _count(args, flag: str, section, key: str, preset_path, minimum: int = 1, default=None) -> int:
    """An integer setting: the flag's value, else the preset's ``section[key]``; checked."""
    value = getattr(args, flag.lstrip("-").replace("-", "_"))
    source = flag
    if value is None:
        value, source = section.get(key, default), f"{key} in preset {preset_path}"
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise UsageError(f"{source} must be an integer of at least {minimum}; got {value!r}")
    return value


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
        seeds = (parse_int_list(args.seeds, "--seeds") if args.seeds else
                 parse_int_list(",".join(map(str, al.seeds)), f"seeds in preset {preset_path}"))
        data_root = resolve_data_root(args.dataset, args.data_root, preset)
        base = RunSpec(
            dataset=args.dataset, data_root=str(data_root), model=model, preset=str(preset_path),
            strategy="", selection=DEFAULT_SELECTION, seed=0,
            cycles=_count(args, "--cycles", al, "cycles", preset_path),
            pixels_per_image=_count(args, "--pixels-per-image", al, "pixels_per_image", preset_path),
            mc_samples=_count(args, "--mc-samples", al, "mc_samples", preset_path),
            train_iters=_count(args, "--train-iters", schedule, "iters", preset_path),
            batch_size=_count(args, "--batch-size", schedule, "batch_size", preset_path), device=device,
            retrain=args.retrain, oracle=args.oracle, out=str(out.resolve()),
            pretrained=str(Path(args.pretrained).resolve()) if args.pretrained else None,
            amp=bool(args.amp or schedule.get("amp", False)),
            map_images=_count(args, "--map-images", al, "map_images", preset_path, minimum=0, default=0),
            map_strategies=tuple(resolve_strategy_names(args.map_strategies, "--map-strategies")
                                 if args.map_strategies is not None else al.get("map_strategies", ())),
            preset_digest=preset_digest(preset),
            **mc_dropout_settings(args, al), void_clicks=void_clicks_setting(args, al),
            record_pixels=_count(args, "--record-pixels", al, "record_pixels", preset_path, minimum=0, default=0),
            gpus_per_run=getattr(args, "gpus_per_run", 1),
        )
        check_mc_samples(strategies, base.mc_samples)
        check_map_strategies(base.map_strategies)
        selections = resolve_selection_names(args.selection or al.get("selection", DEFAULT_SELECTION), preset)
        units = unit_fields(args, al, base.pixels_per_image, selections)
        first = next(iter(units.values()))  # the supervised reference: pixel fields, the plan's costs
        base = replace(base, **{**first, "unit": "pixel", "unit_cost": first["pixel_cost"], "superpixels": None})
        for seed in seeds:
            if args.supervised:
                runs.append(replace(base, strategy=SUPERVISED, selection=DEFAULT_SELECTION, seed=seed))
            runs += [replace(base, strategy=name, selection=selection, seed=seed, **units[unit])
                     for name in strategies for selection in selections_for(name, selections)
                     for unit in units_for(name, list(units))]
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
            if key not in old and key in LEGACY_FIELDS and _same(legacy_value(run, key), value):
                continue  # made before the field existed, with the value it implied
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


