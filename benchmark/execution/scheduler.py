"""What Slurm says of the jobs of a launch, for `benchmark status` (``squeue``; no accounting).

``query_jobs`` asks ``squeue`` for the jobs ``launch`` recorded; ``joined_state`` combines a run's
folder state with its job's, so that a run the scheduler will start again reads ``requeued`` rather
than ``interrupted``, a cancelled one ``cancelled``:

    queued     its job waits (a dependency, a free node, an array's --max-parallel, priority)
    held       its job waits on a hold (``scontrol hold``/``requeuehold``, a held requeue)
    requeued   its job waits after a requeue (a time limit, a preemption, ``scontrol requeue``)
    starting   its job runs, the run not yet (the job's process loads, or waits for the run's lock)
    cancelled  its job was cancelled (``scancel``, a preemption that cancels, or its cycle 0 failed)
    timed out  its job reached its time limit after its last requeue
    failed     its job failed without the run recording an error (out of memory, a node failure, ...)

A run whose lock is held is ``running`` and a finished one ``finished`` whatever Slurm says, and
a run with a recorded error stays ``failed``. Slurm forgets a job ``MinJobAge`` seconds after it
ends (300 by default): from then on, as where ``squeue`` is missing or cannot reach a controller,
the run folders alone tell the state.
"""
from __future__ import annotations

import shutil
import subprocess
from dataclasses import dataclass

SQUEUE_TIMEOUT_SECONDS = 30
QUEUED, HELD, REQUEUED, STARTING = "queued", "held", "requeued", "starting"
CANCELLED, TIMED_OUT, FAILED = "cancelled", "timed out", "failed"
RUNNING, FINISHED = "running", "finished"
# folder states the scheduler may explain (the run stopped without an error of its own, or never began)
EXPLAINABLE = ("queued", "not started", "interrupted")
HOLD_REASONS = ("JobHeldUser", "JobHeldAdmin", "job_requeued_in_held_state")
ACTIVE = ("RUNNING", "CONFIGURING", "RESIZING", "SIGNALING", "STAGE_OUT")
ENDED = {"CANCELLED": CANCELLED, "TIMEOUT": TIMED_OUT, "FAILED": FAILED, "NODE_FAIL": FAILED,
         "OUT_OF_MEMORY": FAILED, "BOOT_FAIL": FAILED, "DEADLINE": FAILED, "PREEMPTED": CANCELLED}


@dataclass(frozen=True)
class SlurmJob:
    state: str          # Slurm's job state: PENDING, RUNNING, COMPLETING, COMPLETED, CANCELLED, TIMEOUT, ...
    reason: str = ""    # why it waits or ended: Dependency, BeginTime, JobHeldUser, ... ("None": no reason)
    restarts: int = 0   # times it was requeued

    def describe(self) -> str:
        """``STATE (reason), requeued Nx`` for the status table."""
        reason = f" ({self.reason})" if self.reason and self.reason != "None" else ""
        again = f", requeued {self.restarts}x" if self.restarts else ""
        return f"{self.state}{reason}{again}"


def parse_squeue(text: str) -> dict:
    """``JOBID|STATE|REASON|RESTARTS|`` lines (``query_jobs``'s format) -> {job id: SlurmJob}."""
    jobs = {}
    for line in text.splitlines():
        fields = line.strip().split("|")
        if len(fields) < 4 or not fields[0]:
            continue
        job_id, state, reason, restarts = (field.strip() for field in fields[:4])
        jobs[job_id] = SlurmJob(state=state.split()[0] if state else "", reason=reason,
                                restarts=int(restarts) if restarts.isdigit() else 0)
    return jobs


def query_jobs(job_ids) -> dict | None:
    """Job id as `launch` recorded it (``1002_1``, ``1004``) -> SlurmJob, for the jobs Slurm still
    knows; None where there is no ``squeue`` or it cannot answer (no controller reachable)."""
    squeue = shutil.which("squeue")
    arrays = sorted({str(job_id).split("_")[0] for job_id in job_ids if job_id})
    if squeue is None or not arrays:
        return None
    command = [squeue, "--noheader", "--states=all", "--array", f"--jobs={','.join(arrays)}",
               "--Format=JobArrayID:|,State:|,Reason:|,RestartCnt:|"]
    try:
        proc = subprocess.run(command, capture_output=True, text=True, timeout=SQUEUE_TIMEOUT_SECONDS)
    except (OSError, subprocess.SubprocessError):
        return None
    if proc.returncode != 0:
        # asked for a single job it has forgotten, squeue fails; for several, it lists those it knows
        return {} if "Invalid job id" in proc.stderr else None
    return parse_squeue(proc.stdout)


def joined_state(folder_state: str, job: SlurmJob | None) -> str:
    """A run's state from its folder's (``benchmark.execution.status``) and its job's (module docstring)."""
    if job is None or folder_state in (RUNNING, FINISHED):
        return folder_state
    if job.state == "PENDING" or job.state.startswith("REQUEUE"):
        if job.reason in HOLD_REASONS or job.state == "REQUEUE_HOLD":
            return HELD
        return REQUEUED if job.restarts or job.state != "PENDING" else QUEUED
    if folder_state not in EXPLAINABLE:
        return folder_state  # failed (its error recorded) or awaiting labels: the folder knows better
    if job.state in ACTIVE:
        return STARTING
    return ENDED.get(job.state, folder_state)  # COMPLETED, COMPLETING, SUSPENDED: as the folder says
