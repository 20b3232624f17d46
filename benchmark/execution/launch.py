"""`python -m benchmark launch`: the plan of `run`, submitted as submitit jobs, then return.

``--executor slurm`` submits Slurm job arrays with dependencies (sbatch through submitit);
``local`` starts the same jobs as background processes on this machine; ``debug`` runs them in
this process, one after another. The job graph is ``benchmark.execution.launch_graph``; the jobs are
``benchmark.execution.jobs``. Every launch records its jobs in ``<out>/launch_logs/submitted.json`` (read by
`benchmark status`); submitit keeps each job's pickles and logs beside it.
"""
from __future__ import annotations

import json
import os
import re
import shutil
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

from benchmark.errors import UsageError
from benchmark.execution.jobs import Dependency, Slots, TablesJob
from benchmark.execution.status import SUBMITTED_FILE
from benchmark.records.fileio import write_text_atomic

LOCAL_DEFAULT_MINUTES = 24 * 60
TABLES_MINUTES = 30
TIME_FORMS = "MINUTES, HH:MM:SS, D-HH or D-HH:MM:SS"


@dataclass
class LaunchOptions:
    executor: str
    log_dir: Path
    minutes: int
    gpus_per_run: int = 1
    max_parallel: int | None = None
    partition: str | None = None
    slurm_options: dict = field(default_factory=dict)
    device: str = "cpu"
    max_timeouts: int = 3


def parse_minutes(text: str) -> int:
    """A Slurm time limit (``MIN``, ``MIN:SS``, ``H:MM:SS``, ``D-H``, ``D-H:MM``, ``D-H:MM:SS``) in minutes."""
    match = re.fullmatch(r"(?:(\d+)-)?(\d+)(?::(\d+))?(?::(\d+))?", text.strip())
    if not match:
        raise UsageError(f"--slurm-time {text!r} is not a time limit: use {TIME_FORMS} (e.g. 4:00:00)")
    days, first, second, third = (int(g) if g else None for g in match.groups())
    if days is not None:  # D-H[:MM[:SS]]
        seconds = days * 86400 + first * 3600 + (second or 0) * 60 + (third or 0)
    elif third is not None:  # H:MM:SS
        seconds = first * 3600 + second * 60 + third
    else:  # MIN[:SS]
        seconds = first * 60 + (second or 0)
    if seconds <= 0:
        raise UsageError(f"--slurm-time {text!r} is zero: give the jobs' time limit ({TIME_FORMS})")
    return -(-seconds // 60)


def parse_slurm_options(items) -> dict:
    """``KEY=VALUE`` (or a bare ``KEY`` flag) items -> sbatch parameters {key: value}."""
    options = {}
    for item in items or []:
        key, sep, value = item.partition("=")
        key = key.strip().lstrip("-")
        if not re.fullmatch(r"[A-Za-z][A-Za-z0-9_-]*", key) or (sep and not value.strip()):
            raise UsageError(f"--slurm-option {item!r}: use KEY=VALUE with an sbatch option name, e.g. "
                             f"--slurm-option account=myproject or --slurm-option mem=64G")
        options[key] = value.strip() if sep else True
    return options


def check_options(args, out: Path) -> LaunchOptions:
    """The launch flags, checked (UsageError naming the flag and the fix)."""
    kind = args.executor
    if kind == "slurm" and shutil.which("srun") is None:
        raise UsageError("--executor slurm: no srun/sbatch on PATH, this is not a Slurm login node; run "
                         "launch there, or use --executor local to run the jobs on this machine")
    if kind == "slurm" and args.slurm_time is None:
        raise UsageError(f"--executor slurm needs --slurm-time, the jobs' time limit ({TIME_FORMS}): a job that "
                         f"reaches it is requeued and resumes, so pick more than one cycle's training time")
    if kind != "slurm" and (args.slurm_partition or args.slurm_option):
        raise UsageError(f"--slurm-partition and --slurm-option apply to --executor slurm only, not {kind}: "
                         f"drop them")
    for flag, value in (("--gpus-per-run", args.gpus_per_run), ("--max-parallel", args.max_parallel)):
        if value is not None and value < 1:
            raise UsageError(f"{flag} must be at least 1; got {value}")
    if kind != "slurm" and args.gpus_per_run > 1:
        raise UsageError(f"--executor {kind} runs one process per job: for several GPUs per run on this machine "
                         f"use `torchrun --nproc_per_node G -m benchmark run ... --gpus-per-run G`")
    if re.fullmatch(r"cuda:\d+", args.device):
        raise UsageError(f"--device {args.device}: launched jobs get their GPUs from the scheduler; use --device cuda")
    if args.device not in ("cpu", "cuda", "auto"):
        raise UsageError(f"unknown device {args.device!r}: use cpu, cuda or auto")
    minutes = parse_minutes(args.slurm_time) if args.slurm_time else LOCAL_DEFAULT_MINUTES
    return LaunchOptions(executor=kind, log_dir=out / "launch_logs", minutes=minutes, gpus_per_run=args.gpus_per_run,
                         max_parallel=args.max_parallel, partition=args.slurm_partition,
                         slurm_options=parse_slurm_options(args.slurm_option), device=args.device)


def visible_gpus() -> tuple:
    """GPU ids this machine shows the launcher (for the local executor's slots)."""
    if os.environ.get("CUDA_VISIBLE_DEVICES") is not None:
        return tuple(g for g in os.environ["CUDA_VISIBLE_DEVICES"].split(",") if g.strip())
    import torch

    return tuple(range(torch.cuda.device_count()))


def _executor(options: LaunchOptions, stage, dependency: str | None):
    """A submitit executor configured for one stage (a fresh one: parameters cannot be unset)."""
    import submitit

    executor = submitit.AutoExecutor(folder=options.log_dir, cluster=options.executor,
                                     slurm_max_num_timeout=options.max_timeouts,
                                     local_max_num_timeout=options.max_timeouts)
    training = stage.kind != "tables"
    gpus = options.gpus_per_run if training and options.device != "cpu" else 0
    params = dict(name=f"al-seg-{stage.kind}", timeout_min=options.minutes if training else TABLES_MINUTES)
    if options.executor == "slurm":
        extra = dict(options.slurm_options)
        if dependency and stage.need_success:
            extra.setdefault("kill_on_invalid_dep", "yes")  # a failed cycle 0 cancels its runs
        if training and options.gpus_per_run > 1:  # one task per GPU; a failed rank ends its job
            params["slurm_srun_args"] = ["--kill-on-bad-exit=1"]
        params.update(tasks_per_node=options.gpus_per_run if training else 1, gpus_per_node=gpus or None,
                      slurm_partition=options.partition, slurm_dependency=dependency,
                      slurm_array_parallelism=options.max_parallel, slurm_additional_parameters=extra or None)
    executor.update_parameters(**params)
    return executor


def _slurm_dependency(stage, submitted: dict) -> str | None:
    if not stage.after:
        return None
    ids = [submitted[name].job_id for name in stage.after]
    if stage.kind == "tables":  # waits for every task of every array: name the arrays
        ids = list(dict.fromkeys(job_id.split("_")[0] for job_id in ids))
    return ("afterok:" if stage.need_success else "afterany:") + ":".join(ids)


def submit(graph, options: LaunchOptions) -> list:
    """Submit every stage in order; returns [(job, submitit job, [dependency job ids])]."""
    submitted, records = {}, []
    slots = Slots(str(options.log_dir.parent), options.max_parallel or 1, visible_gpus() if options.device != "cpu"
                  else (), options.gpus_per_run) if options.executor == "local" else None
    for stage in graph.stages:
        dependency = _slurm_dependency(stage, submitted) if options.executor == "slurm" else None
        if options.executor == "local":
            for job in stage.jobs:
                job.after = tuple(Dependency(submitted[name].job_id, name, str(submitted[name].paths.result_pickle),
                                             str(submitted[name].paths.stdout), stage.need_success)
                                  for name in stage.after)
                job.slots = None if isinstance(job, TablesJob) else slots
        jobs = _executor(options, stage, dependency).submit_array(stage.jobs)
        for job, handle in zip(stage.jobs, jobs):
            submitted[job.name] = handle
            records.append((job, handle, [submitted[name].job_id for name in stage.after]))
    return records


def check_local_gpus(options: LaunchOptions) -> None:
    if options.executor != "local" or options.device == "cpu":
        return
    need, have = (options.max_parallel or 1) * options.gpus_per_run, len(visible_gpus())
    if options.device == "auto" and have == 0:
        return  # auto: the jobs will train on the CPU
    if need > have:
        raise UsageError(f"--executor local with --device {options.device}: --max-parallel "
                         f"{options.max_parallel or 1} x --gpus-per-run {options.gpus_per_run} needs {need} GPU(s), "
                         f"this machine shows {have}: lower --max-parallel")


def write_manifest(out: Path, options: LaunchOptions, records: list) -> Path:
    """``launch_logs/submitted.json``: this launch's jobs; its runs merged over earlier launches'."""
    path = out / SUBMITTED_FILE
    try:
        runs = json.loads(path.read_text()).get("runs", {})
    except (OSError, ValueError, AttributeError):
        runs = {}
    for job, handle, _ in records:
        if job.kind == "run":
            runs[job.run.run_id] = dict(job_id=handle.job_id, cycles_planned=job.run.planned_cycles)
    jobs = [dict(job_id=handle.job_id, kind=job.kind, name=job.name, after=after) for job, handle, after in records]
    manifest = dict(executor=options.executor, submitted=datetime.now(timezone.utc).isoformat(timespec="seconds"),
                    log_folder=str(options.log_dir), jobs=jobs, runs=runs)
    write_text_atomic(path, json.dumps(manifest, indent=2) + "\n")
    return path


def run_debug_jobs(records: list, console) -> None:
    """The debug executor only runs a job when asked for its result: run them now, in order."""
    for job, handle, _ in records:
        console.print(f"running {job.name} in this process")
        handle.result()


def plan_for_jobs(args) -> list:
    """The plan of `run`, with the device left to be resolved where the jobs run: the login node
    that submits them may have no GPU."""
    from dataclasses import replace

    from benchmark.config.plan import make_plan

    device, args.device = args.device, "cpu"
    try:
        runs = make_plan(args)
    finally:
        args.device = device
    return [replace(run, device=device) for run in runs]


def launch(args, console) -> int:
    """Plan, check (preflight), build the job graph, submit it, print the jobs; then return."""
    import mmseg.utils

    from benchmark.config.plan import check_existing, import_plugin_modules
    from benchmark.execution.launch_graph import plan_jobs
    from benchmark.execution.preflight import preflight
    from benchmark.execution.run_state import check_not_running
    from benchmark.reports.display import print_launch

    options = check_options(args, Path(args.out).resolve())
    check_local_gpus(options)
    mmseg.utils.register_all_modules(init_default_scope=True)
    import_plugin_modules(args.plugins)
    runs = plan_for_jobs(args)
    check_existing(runs, args.resume, args.overwrite)
    preflight(runs)
    if args.overwrite:
        check_not_running(runs)
        for run in runs:
            shutil.rmtree(run.run_dir, ignore_errors=True)
    options.max_timeouts = max(run.planned_cycles for run in runs) + 2
    graph = plan_jobs(runs, args.plugins, args.plot)
    records = submit(graph, options) if graph.stages else []
    if records:
        write_manifest(Path(runs[0].out), options, records)
    print_launch(graph, records, options, runs[0].out, console)
    if options.executor == "debug" and records:
        run_debug_jobs(records, console)
    return 0
