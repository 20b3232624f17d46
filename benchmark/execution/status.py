"""Where every run of an output folder stands: cycles done of planned, state, last error line.

Read from the run folders alone (config.json, cycles.csv, status.json, error.log) and the run
locks, so it works the same for `run`, for the jobs of `launch` and for folders copied from
elsewhere. A run's state:

    running          a process holds the run's lock now
    failed           its last attempt raised (status.json, or error.log for runs without one)
    finished         every planned cycle is recorded
    awaiting-labels  stopped for an annotator's answers (--oracle file)
    interrupted      stopped before the end without an error (killed, preempted, Ctrl-C)
    not started      a folder without a completed cycle and no attempt recorded
    queued           submitted by `launch`, no folder yet (listed from launch_logs/submitted.json)

A ``running`` left in status.json by a process killed outright is repaired to ``interrupted``
(``benchmark.execution.run_state.repair_stale_status``). After a launch on Slurm, where ``squeue``
answers, each run's state is joined with its job's (``benchmark.execution.scheduler``: queued,
held, requeued, starting, cancelled, timed out, failed) and the ``scheduler`` column says what
Slurm says of the job.
"""
from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from benchmark.errors import UsageError
from benchmark.execution import scheduler
from benchmark.execution.run_state import AWAITING, FAILED, FINISHED, INTERRUPTED, RUNNING, repair_stale_status
from benchmark.records.locks import is_locked, lock_path
from benchmark.records.run_folder import RunFolder
from benchmark.records.schema import SUPERVISED

NOT_STARTED, QUEUED = "not started", "queued"
COLUMNS = ["run", "cycles_done", "cycles_planned", "state", "job_id", "host", "updated", "error", "scheduler"]
SUBMITTED_FILE = Path("launch_logs") / "submitted.json"  # written by benchmark.execution.launch


def planned_cycles(config: dict | None) -> int | None:
    """Cycles a run records, from its config.json (the supervised reference: 1)."""
    run = (config or {}).get("run", {})
    if run.get("strategy") == SUPERVISED:
        return 1
    return run.get("cycles")


def _cycles_done(folder: RunFolder) -> int | None:
    try:
        return folder.completed_cycles()
    except (OSError, ValueError, pd.errors.ParserError):
        return None  # an unreadable cycles.csv: shown as '?'


def classify(running: bool, status: dict, done: int | None, planned: int | None, has_error_log: bool) -> str:
    """The state of one run from what its folder and its lock say (see the module docstring)."""
    recorded = status.get("state")
    if running:
        return RUNNING
    if recorded == FAILED:
        return FAILED
    if done is not None and planned is not None and done >= planned:
        return FINISHED
    if recorded == AWAITING:
        return AWAITING
    if recorded in (RUNNING, INTERRUPTED):
        return INTERRUPTED
    if has_error_log:
        return FAILED
    return NOT_STARTED if not done else INTERRUPTED


def run_row(results_dir: Path, run_dir: Path) -> dict:
    folder = RunFolder(run_dir)
    lock = lock_path(results_dir, "runs", folder.run_id)
    status = repair_stale_status(folder, lock) or {}
    config = folder.read_config()
    planned = planned_cycles(config) or status.get("cycles_planned")
    done = _cycles_done(folder)
    state = classify(is_locked(lock), status, done, planned, (run_dir / "error.log").is_file())
    error = (status.get("error") or folder.last_error_line()) if state == FAILED else None
    return dict(run=folder.run_id, cycles_done=done, cycles_planned=planned, state=state,
                job_id=status.get("job_id"), host=status.get("host"), updated=status.get("updated"), error=error)


def _manifest(results_dir: Path) -> dict:
    try:
        manifest = json.loads((Path(results_dir) / SUBMITTED_FILE).read_text())
    except (OSError, ValueError):
        return {}
    return manifest if isinstance(manifest, dict) else {}


def submitted_jobs(results_dir: Path) -> dict:
    """run id -> job id of the last `launch` into ``results_dir`` (empty without one)."""
    return _manifest(results_dir).get("runs", {})


def join_scheduler(rows: list, submitted: dict, jobs: dict | None) -> None:
    """Each row's state joined with its job's (``benchmark.execution.scheduler``), in place; ``jobs``
    is ``scheduler.query_jobs``'s answer (None: Slurm not asked or not reachable)."""
    for row in rows:
        job_id = submitted.get(row["run"], {}).get("job_id")
        job = (jobs or {}).get(str(job_id)) if job_id else None
        row["state"] = scheduler.joined_state(row["state"], job)
        row["scheduler"] = job.describe() if job is not None else None
        if job is not None:  # the job Slurm speaks of (a relaunch's, not the last attempt's)
            row["job_id"] = job_id


def run_states(results_dir, ask_scheduler: bool = True) -> pd.DataFrame:
    """One row per run (COLUMNS), sorted by run id; UsageError when the folder holds no run.
    After a launch on Slurm (and ``ask_scheduler``), states are joined with squeue's."""
    results_dir = Path(results_dir)
    runs_dir = results_dir / "runs"
    run_dirs = sorted(d for d in runs_dir.glob("*") if (d / "config.json").is_file()) if runs_dir.is_dir() else []
    rows = [run_row(results_dir, d) for d in run_dirs]
    known = {row["run"] for row in rows}
    manifest = _manifest(results_dir)
    submitted = manifest.get("runs", {})
    for run_id, job in submitted.items():
        if run_id not in known:
            rows.append(dict(run=run_id, cycles_done=0, cycles_planned=job.get("cycles_planned"), state=QUEUED,
                             job_id=job.get("job_id"), host=None, updated=None, error=None))
    if ask_scheduler and manifest.get("executor") == "slurm":
        join_scheduler(rows, submitted, scheduler.query_jobs(job.get("job_id") for job in submitted.values()))
    if not rows:
        raise UsageError(f"no runs in {results_dir} (no runs/*/config.json): pass the --out folder of "
                         f"`python -m benchmark run` or `launch` as --results")
    return pd.DataFrame(rows, columns=COLUMNS).sort_values("run", kind="stable").reset_index(drop=True)
