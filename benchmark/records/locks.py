"""Advisory file locks for processes that share one output folder (``fcntl.flock``).

Every lock is a small file under ``<out>/locks/`` that is never deleted (deleting a lock file
while another process waits on it would let two processes "hold" it at once)::

    locks/tables.lock              rebuilding the union tables and the leaderboard
    locks/runs/<run_id>.lock       held while a process executes that run
    locks/cycle0/<key>.lock        held while cycle 0 of a seed is trained or loaded
    locks/slots/slot_<k>.lock      the local executor's --max-parallel slots

A lock dies with its process (a killed job never leaves a stale lock). Within one process the
locks are re-entrant (nested ``with`` blocks on the same path are fine). ``flock`` works on local
filesystems and on NFS (Linux emulates it with POSIX locks); Lustre needs the ``flock`` mount option.
"""
from __future__ import annotations

import fcntl
import os
import time
from pathlib import Path

from benchmark.records.fileio import FILE_MODE

POLL_SECONDS = 0.1
_HELD: dict[str, list] = {}  # path -> [fd, depth] of the locks this process holds


def lock_path(out, kind: str, name: str) -> Path:
    """``<out>/locks/<kind>/<name>.lock`` (``kind=""``: directly under ``locks/``)."""
    folder = Path(out) / "locks" / kind if kind else Path(out) / "locks"
    return folder / f"{name}.lock"


def _open(path: Path) -> int:
    path.parent.mkdir(parents=True, exist_ok=True)
    return os.open(path, os.O_RDWR | os.O_CREAT, FILE_MODE)


class FileLock:
    """An exclusive lock on ``path``: ``with FileLock(p):`` waits for it; ``acquire(timeout=s)``
    gives up after ``s`` seconds (0: one try) and returns whether it got the lock."""

    def __init__(self, path):
        self.path = Path(path).resolve()
        self._owned = False

    def acquire(self, timeout: float | None = None) -> bool:
        key = str(self.path)
        if key in _HELD:
            _HELD[key][1] += 1
            self._owned = True
            return True
        fd = _open(self.path)
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | (fcntl.LOCK_NB if deadline is not None else 0))
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    os.close(fd)
                    return False
                time.sleep(POLL_SECONDS)
            except BaseException:
                os.close(fd)
                raise
        _HELD[key] = [fd, 1]
        self._owned = True
        return True

    def release(self) -> None:
        if not self._owned:
            return
        self._owned = False
        key = str(self.path)
        entry = _HELD[key]
        entry[1] -= 1
        if entry[1] == 0:
            del _HELD[key]
            fcntl.flock(entry[0], fcntl.LOCK_UN)
            os.close(entry[0])

    @property
    def owned(self) -> bool:
        return self._owned

    def __enter__(self) -> "FileLock":
        self.acquire()
        return self

    def __exit__(self, *exc) -> None:
        self.release()


def is_locked(path) -> bool:
    """Whether another process holds the lock on ``path`` now (False if this process holds it).

    Probes with a shared lock, so it never blocks; a process that tries to take the lock in the
    same instant may find it busy once (the blocking waits here retry, so nothing is lost).
    """
    path = Path(path).resolve()
    if str(path) in _HELD or not path.exists():
        return False
    fd = os.open(path, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)  # closing releases the probe's shared lock
    return False
