"""The pieces of launched jobs that need no scheduler: local dependencies, slots, worker signals."""
import os
import pickle
import signal
import subprocess
import sys

import pytest
import torch
from torch.utils.data import DataLoader, Dataset

from benchmark.data.run_data import leave_job_signals_to_the_main_process
from benchmark.execution.jobs import Dependency, DependencyFailed, Slots
from benchmark.records.locks import lock_path
from tests.test_benchmark.test_concurrency import _held_elsewhere


def finished_job(tmp_path, outcome):
    result = tmp_path / "7_0_result.pkl"
    with open(result, "wb") as handle:
        pickle.dump((outcome, "trace" if outcome == "error" else {"ok": 1}), handle)
    return Dependency(job_id="999999999", name="cycle0:x", result=str(result), stdout=str(tmp_path / "7_0_log.out"))


def test_a_dependency_that_succeeded_lets_the_job_start(tmp_path):
    finished_job(tmp_path, "success").wait()


def test_a_failed_dependency_stops_the_job_naming_the_log(tmp_path):
    with pytest.raises(DependencyFailed, match="cycle0:x.*failed.*7_0_log.out"):
        finished_job(tmp_path, "error").wait()


def test_a_dependency_whose_process_died_without_a_result(tmp_path):
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    gone = Dependency(job_id=str(proc.pid), name="run", result=str(tmp_path / "none.pkl"), stdout="log")
    with pytest.raises(DependencyFailed, match="without a result"):
        gone.wait()
    Dependency(**{**gone.__dict__, "need_success": False}).wait()  # the tables job goes on


def test_slots_hand_out_a_free_slot_and_its_gpus(tmp_path, monkeypatch):
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "")
    slots = Slots(str(tmp_path), count=2, gpus=(0, 1, 2, 3), per_run=2)
    holder = _held_elsewhere(lock_path(tmp_path, "slots", "slot_0"))  # another job trains in slot 0
    try:
        with slots.take() as slot:
            assert slot == 1 and os.environ["CUDA_VISIBLE_DEVICES"] == "2,3"
    finally:
        holder.kill()
        holder.join()


class Probe(Dataset):
    """Each item: whether the worker process that loads it ignores SIGUSR2."""

    def __len__(self):
        return 2

    def __getitem__(self, index):
        return torch.tensor(signal.getsignal(signal.SIGUSR2) == signal.SIG_IGN)


def test_dataloader_workers_ignore_the_requeue_signal():
    handler = signal.signal(signal.SIGUSR2, lambda *args: None)  # as submitit's, inherited by workers
    try:
        loader = DataLoader(Probe(), batch_size=1, num_workers=1,
                            worker_init_fn=leave_job_signals_to_the_main_process)
        assert all(bool(batch) for batch in loader)
        assert signal.getsignal(signal.SIGUSR2) != signal.SIG_IGN  # the main process keeps its handler
    finally:
        signal.signal(signal.SIGUSR2, handler)
