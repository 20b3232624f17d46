"""``benchmark.runtime.interruption``: SIGTERM as a checkpoint and processes that end with their
parent, in small subprocesses (no model): what runs, what is written, how the process ends."""
import os
import signal
import subprocess
import sys
import textwrap
import time

from tests.conftest import REPO
from tests.fixtures.processes import left_after, tagged

SIGNALLED = textwrap.dedent('''\
    import os, signal, sys, time
    from pathlib import Path
    from benchmark.runtime import interruption

    done = Path(sys.argv[1])
    interruption.stop_on_sigterm(quiet_when_idle=sys.argv[2] == "quiet")
    try:
        with interruption.busy():
            done.with_name("ready").write_text("")
            while True:
                time.sleep(0.01)
    except interruption.Terminated as err:
        os.kill(os.getpid(), signal.SIGTERM)  # a second signal while it unwinds changes nothing
        time.sleep(0.2)
        done.write_text(f"unwound: {err}")
        raise SystemExit(interruption.EXIT_TERMINATED)
''')

PARENT = textwrap.dedent('''\
    import subprocess, sys, time
    child = subprocess.Popen([sys.executable, "-c", sys.argv[1], sys.argv[2], str(__import__("os").getpid())])
    time.sleep(3600)
''')

CHILD = textwrap.dedent('''\
    import sys, time
    from pathlib import Path
    from benchmark.runtime import interruption

    folder, parent = Path(sys.argv[1]), int(sys.argv[2])
    interruption.stop_on_sigterm()
    try:
        with interruption.busy():
            interruption.watch_parent(parent, poll_seconds=0.05)
            (folder / "child").write_text(str(__import__("os").getpid()))
            while True:
                time.sleep(0.01)
    except interruption.Terminated:
        (folder / "unwound").write_text("")
        raise SystemExit(interruption.EXIT_TERMINATED)
''')


def _env(**extra):
    return dict(os.environ, PYTHONPATH=str(REPO), **extra)


def _wait_for(path, proc, seconds=60.0):
    deadline = time.time() + seconds
    while not path.exists():
        assert proc.poll() is None and time.time() < deadline, f"no {path.name}"
        time.sleep(0.02)


def test_sigterm_unwinds_the_work_in_progress_once(tmp_path):
    done = tmp_path / "done"
    proc = subprocess.Popen([sys.executable, "-c", SIGNALLED, str(done), "loud"], env=_env())
    _wait_for(tmp_path / "ready", proc)
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=60) == 143
    assert done.read_text() == "unwound: stopped by SIGTERM"


def test_sigterm_outside_work_in_progress_ends_a_quiet_process_without_a_traceback(tmp_path):
    script = SIGNALLED.replace("with interruption.busy():", "if True:")
    proc = subprocess.Popen([sys.executable, "-c", script, str(tmp_path / "done"), "quiet"], env=_env(),
                            stderr=subprocess.PIPE, text=True)
    _wait_for(tmp_path / "ready", proc)
    proc.send_signal(signal.SIGTERM)
    _, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 143 and "Traceback" not in stderr
    assert not (tmp_path / "done").exists()  # ended where it was, nothing unwound


def test_a_process_whose_parent_is_killed_stops_its_work_and_exits(tmp_path):
    env = _env(**tagged())
    parent = subprocess.Popen([sys.executable, "-c", PARENT, CHILD, str(tmp_path)], env=env)
    _wait_for(tmp_path / "child", parent)
    parent.kill()  # SIGKILL: the child is re-parented
    parent.wait()
    assert left_after(env, 30) == []
    assert (tmp_path / "unwound").exists()  # it stopped through Terminated, as on Slurm's SIGTERM


def test_a_parent_that_died_before_the_watch_began_is_noticed(tmp_path):
    env = _env(**tagged())
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    proc = subprocess.Popen([sys.executable, "-c", CHILD, str(tmp_path), str(dead.pid)], env=env)
    assert proc.wait(timeout=60) == 143
    assert left_after(env, 10) == []
