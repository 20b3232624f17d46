"""Stopping a process at once while keeping what it has done: SIGTERM as a checkpoint, and
processes that end when the process that started them is gone.

**SIGTERM.** Slurm sends it to every process of a job when it requeues the job (``scontrol
requeue``, a preemption with ``PreemptMode=REQUEUE``), cancels it (``scancel``) or reaches its time
limit, and SIGKILL ``KillWait`` seconds later; a plain ``kill`` sends it too. ``stop_on_sigterm``
turns the first one into ``Terminated``, a ``KeyboardInterrupt``, so every path that handles Ctrl-C
handles it: raised in the main thread at its next Python instruction, it unwinds the run, whose
claim marks it ``interrupted`` (``benchmark.execution.run_state``); its completed cycles stay,
since every file is written atomically and a cycle's row in cycles.csv last (the same guarantee
that makes a SIGKILL at any instant safe to resume). Later signals are ignored while it unwinds
(Slurm and srun may both deliver one).

**Orphans.** ``watch_parent`` ends a process soon after the process that started it is gone (a
``kill -9``, the OOM killer, a closed terminal): a thread polls ``os.getppid()`` and, once the
process has been re-parented, delivers SIGTERM to the main thread, which stops as above, and
ends the process once the work in progress (``busy``) has unwound. Polling the parent id works
whoever started the process (multiprocessing's spawn or forkserver, submitit's local controller),
where ``PR_SET_PDEATHSIG`` would fire when the *thread* that forked it ends and is Linux only.
"""
from __future__ import annotations

import contextlib
import os
import signal
import threading
import time

EXIT_TERMINATED = 128 + signal.SIGTERM  # 143, what a shell reports for a process ended by SIGTERM
PARENT_POLL_SECONDS = 0.5
ORPHAN_GRACE_SECONDS = 60.0  # an orphan still unwinding its run after this long is ended outright


class Terminated(KeyboardInterrupt):
    """SIGTERM reached this process: stop where it is, keep what is done (module docstring)."""


_state = dict(stopping=False, busy=0, quiet_when_idle=False)


def _on_signal(signum, frame) -> None:
    if _state["stopping"]:
        return  # already unwinding: a second signal must not interrupt the bookkeeping
    _state["stopping"] = True
    if _state["quiet_when_idle"] and not _state["busy"]:
        raise SystemExit(EXIT_TERMINATED)  # nothing in progress: end without a traceback
    if signum == signal.SIGINT:
        raise KeyboardInterrupt
    raise Terminated(f"stopped by {signal.Signals(signum).name}")


def stop_on_sigterm(also_sigint: bool = False, quiet_when_idle: bool = False) -> None:
    """From now on the first SIGTERM (and SIGINT, with ``also_sigint``) raises ``Terminated``
    (``KeyboardInterrupt``) in the main thread, and later ones are ignored. With
    ``quiet_when_idle``, a signal that arrives outside ``busy()`` ends the process (SystemExit 143).
    Call it from the main thread."""
    _state.update(stopping=False, quiet_when_idle=quiet_when_idle)
    signal.signal(signal.SIGTERM, _on_signal)
    if also_sigint:
        signal.signal(signal.SIGINT, _on_signal)


def count_as_stop(signum: int) -> None:
    """The handler already installed for ``signum`` (submitit's USR2: checkpoint, requeue, exit)
    counts as a stop once it raises: a SIGTERM that follows (Slurm's, as it requeues the job) is
    then ignored instead of breaking into the unwinding."""
    previous = signal.getsignal(signum)
    if not callable(previous):
        return

    def handler(sig, frame):
        if _state["stopping"]:
            return
        try:
            previous(sig, frame)
        except BaseException:
            _state["stopping"] = True
            raise

    signal.signal(signum, handler)


@contextlib.contextmanager
def busy():
    """Work in progress that a stop signal must unwind (a run), rather than end the process."""
    _state["busy"] += 1
    try:
        yield
    finally:
        _state["busy"] -= 1


def stopping() -> bool:
    """Whether a stop signal has reached this process."""
    return _state["stopping"]


def watch_parent(parent_pid: int, poll_seconds: float = PARENT_POLL_SECONDS,
                 grace_seconds: float = ORPHAN_GRACE_SECONDS) -> threading.Thread:
    """Stop this process once ``parent_pid`` is no longer its parent (see the module docstring):
    SIGTERM to the main thread, then, once no work is in progress or after ``grace_seconds``,
    ``os._exit``. Pass the parent's pid as the parent knew it, not ``os.getppid()`` read later: a
    parent that died before the watch began is noticed too, at once, so call it where the stop
    signal is handled (after ``stop_on_sigterm``, inside the ``busy`` block or quiet when idle)."""
    main = threading.main_thread().ident

    def watch() -> None:
        while os.getppid() == parent_pid:
            time.sleep(poll_seconds)
        signal.pthread_kill(main, signal.SIGTERM)
        deadline = time.monotonic() + grace_seconds
        while (_state["busy"] or not _state["stopping"]) and time.monotonic() < deadline:
            time.sleep(poll_seconds / 5)
        # the work in progress has unwound (a run's claim marked it interrupted): whatever the main
        # thread does now (waiting for the next task of a parent that is gone) has no one to serve
        os._exit(EXIT_TERMINATED)

    thread = threading.Thread(target=watch, name="parent-watch", daemon=True)
    thread.start()
    return thread
