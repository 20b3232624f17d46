"""Who executes a run and how its last attempt ended: the run's lock and ``runs/<id>/status.json``.

A process holds ``locks/runs/<run_id>.lock`` for as long as it executes that run, so two
processes never run the same run at once; the lock lives outside the run folder, which
``--overwrite`` deletes. ``status.json`` says what the last process did with the run::

    state           running, finished, failed, awaiting-labels or interrupted
    host, pid       where that process ran; job_id: its Slurm or submitit job, if any
    started, updated (UTC, ISO 8601), cycles_done, cycles_planned
    error           the last error line of a failed attempt (traceback in error.log)
    note            why the state was set by another process than the run's (a stale ``running`` repaired)

A process stopped by a signal (SIGTERM, SIGINT, Slurm's USR2) writes ``interrupted`` itself
(``benchmark.runtime.interruption``). One killed without warning (SIGKILL, the OOM killer) leaves
``running`` behind with its lock released: ``repair_stale_status`` (called by `benchmark status`)
rewrites that as ``interrupted``, holding the lock while it does, so no live process is overruled.
"""
from __future__ import annotations

import os
import socket
from datetime import datetime, timezone
from typing import Callable

from benchmark.errors import UsageError
from benchmark.records.locks import FileLock, is_locked, lock_path
from benchmark.records.run_folder import RunFolder

RUNNING, FINISHED, FAILED = "running", "finished", "failed"
AWAITING, INTERRUPTED = "awaiting-labels", "interrupted"
BUSY_GRACE_SECONDS = 2.0  # how long `run` retries a busy run lock before it gives up


def run_lock_path(run):
    return lock_path(run.out, "runs", run.run_id)


def current_job_id() -> str | None:
    """The Slurm job (array task) or submitit job this process belongs to, if any."""
    env = os.environ
    if env.get("SLURM_ARRAY_JOB_ID") and env.get("SLURM_ARRAY_TASK_ID"):
        return f"{env['SLURM_ARRAY_JOB_ID']}_{env['SLURM_ARRAY_TASK_ID']}"
    for name in ("SLURM_JOB_ID", "SUBMITIT_LOCAL_JOB_ID", "SUBMITIT_DEBUG_JOB_ID"):
        if env.get(name):
            return env[name]
    return None


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def describe_holder(run_dir) -> str:
    """'pid P on host H (job J)' from the run's status.json, or 'another process'."""
    status = RunFolder(run_dir).read_status() or {}
    if status.get("state") != RUNNING or "pid" not in status:
        return "another process"
    job = f", job {status['job_id']}" if status.get("job_id") else ""
    return f"pid {status['pid']} on host {status.get('host', '?')}{job}"


def busy_error(run) -> UsageError:
    return UsageError(f"run {run.run_id} is being executed by {describe_holder(run.run_dir)} (it holds "
                      f"{run_lock_path(run)}): wait for it to end (`python -m benchmark status --results "
                      f"{run.out}`), or use another --out")


def check_not_running(runs) -> None:
    """UsageError naming the first planned run that another process is executing now."""
    for run in runs:
        if is_locked(run_lock_path(run)):
            raise busy_error(run)


def repair_stale_status(folder: RunFolder, lock_file) -> dict | None:
    """The run's status; one that says ``running`` while no process holds ``lock_file`` is
    rewritten as ``interrupted`` first (its process was killed outright). Left as it is where the
    lock is held, or the folder cannot be written (a read-only copy)."""
    status = folder.read_status()
    if not status or status.get("state") != RUNNING or is_locked(lock_file):
        return status
    lock = FileLock(lock_file)
    try:
        if not lock.acquire(timeout=0):
            return status  # a process claimed the run just now
    except OSError:
        return status
    try:
        status = folder.read_status() or {}
        if status.get("state") == RUNNING:  # the claim may have ended it meanwhile
            holder = f"pid {status.get('pid', '?')} on host {status.get('host', '?')}"
            status.update(state=INTERRUPTED, updated=_now(),
                          note=f"{holder} ended without a word (killed outright); found by `benchmark status`")
            folder.write_status(status)
    except OSError:
        pass
    finally:
        lock.release()
    return status


class RunClaim:
    """Holds a run's lock while it executes and keeps its ``status.json`` up to date.

    ``wait=None`` waits for another process's hold to end (``on_wait`` is told first); a number
    of seconds gives up after that long with a UsageError naming the holder.
    """

    def __init__(self, run, wait: float | None = BUSY_GRACE_SECONDS,
                 on_wait: Callable[[str], None] = lambda message: None):
        self.run, self.wait, self.on_wait = run, wait, on_wait
        self.lock = FileLock(run_lock_path(run))
        self.folder: RunFolder | None = None
        self.status: dict = {}

    def __enter__(self) -> "RunClaim":
        if not self.lock.acquire(timeout=0 if self.wait is None else self.wait):
            if self.wait is not None:
                raise busy_error(self.run)
            self.on_wait(f"waiting for run {self.run.run_id}: held by {describe_holder(self.run.run_dir)}")
            self.lock.acquire()
        return self

    def start(self, folder: RunFolder) -> None:
        """The run's folder exists: record that this process executes it now."""
        self.folder = folder
        self.status = dict(state=RUNNING, host=socket.gethostname(), pid=os.getpid(), job_id=current_job_id(),
                           started=_now(), cycles_done=folder.completed_cycles(),
                           cycles_planned=self.run.planned_cycles, error=None)
        self._write()

    def progress(self, cycles_done: int) -> None:
        self.status["cycles_done"] = cycles_done
        self._write()

    def end(self, state: str, error: str | None = None) -> None:
        self.status.update(state=state, error=error)
        if self.folder is not None:
            self.status["cycles_done"] = self.folder.completed_cycles()
        self._write()

    def _write(self) -> None:
        if self.folder is not None:
            self.status["updated"] = _now()
            self.folder.write_status(self.status)

    def __exit__(self, exc_type, exc, tb) -> None:
        try:
            if exc_type is not None and self.status.get("state") == RUNNING:
                self.end(INTERRUPTED)  # Ctrl-C, or a job's preemption signal (SystemExit)
        finally:
            self.lock.release()


class FollowerClaim:
    """What a rank other than 0 holds for a run: rank 0 owns the lock and status.json."""

    def __enter__(self) -> "FollowerClaim":
        return self

    def __exit__(self, *exc) -> None:
        return None

    def start(self, folder) -> None:
        return None

    def progress(self, cycles_done: int) -> None:
        return None

    def end(self, state: str, error: str | None = None) -> None:
        return None
