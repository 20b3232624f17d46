"""The job graph of `launch` and its flags, without submitting anything."""
from dataclasses import replace

import pytest

from benchmark.config.run_spec import cycle0_key
from benchmark.cycle.cycle0_cache import CycleZeroCache
from benchmark.errors import UsageError
from benchmark.execution.jobs import CycleZeroJob, RunJob, TablesJob
from benchmark.execution.launch import parse_minutes, parse_slurm_options
from benchmark.execution.launch_graph import plan_jobs
from benchmark.execution.run_state import run_lock_path
from benchmark.records.run_folder import RunFolder
from tests.test_benchmark.test_concurrency import _held_elsewhere, _record, spec


def plan(out, seeds=(0, 1), strategies=("balent", "random")):
    runs = []
    for seed in seeds:
        runs += [replace(spec(out, name, seed), cycles=2) for name in ("supervised", *strategies)]
    return runs


def finish(run, cycles=None):
    for cycle in range(run.planned_cycles if cycles is None else cycles):
        RunFolder(run.run_dir).append_cycle(_record(run.strategy, run.seed, cycle), {"road": 1.0})


def names(stage):
    return [job.name for job in stage.jobs]


def test_one_cycle0_job_per_seed_its_strategy_runs_after_it_and_the_tables_after_all(tmp_path):
    graph = plan_jobs(plan(tmp_path))
    first, seed0, seed1, tables = graph.stages
    assert names(first) == ["cycle0:synthetic__fpn__seed0", "synthetic__fpn__supervised__seed0",
                            "cycle0:synthetic__fpn__seed1", "synthetic__fpn__supervised__seed1"]
    assert first.after == [] and isinstance(first.jobs[0], CycleZeroJob) and isinstance(first.jobs[1], RunJob)
    assert names(seed0) == ["synthetic__fpn__balent__seed0", "synthetic__fpn__random__seed0"]
    assert seed0.after == ["cycle0:synthetic__fpn__seed0"] and seed0.need_success
    assert seed1.after == ["cycle0:synthetic__fpn__seed1"]
    assert isinstance(tables.jobs[0], TablesJob) and not tables.need_success
    assert tables.after == [job.name for stage in (first, seed0, seed1) for job in stage.jobs]
    assert sum(isinstance(job, CycleZeroJob) for job in graph.jobs) == 2


def test_finished_runs_are_skipped_and_a_cached_or_recorded_cycle_0_needs_no_job(tmp_path):
    runs = plan(tmp_path)
    sup0, balent0, random0, sup1, balent1, random1 = runs
    finish(sup0)
    finish(balent0)
    finish(balent1, cycles=1)  # resumed: its cycle 0 is recorded
    CycleZeroCache(tmp_path, cycle0_key(random1)).save({}, {})  # cached, no run started yet
    graph = plan_jobs(runs)
    assert graph.finished == [sup0.run_id, balent0.run_id]
    first, seed0, tables = graph.stages
    assert names(first) == ["cycle0:synthetic__fpn__seed0", sup1.run_id, balent1.run_id, random1.run_id]
    assert names(seed0) == [random0.run_id] and seed0.after == ["cycle0:synthetic__fpn__seed0"]


def test_nothing_to_submit_when_every_run_is_finished(tmp_path):
    runs = plan(tmp_path, seeds=(0,))
    for run in runs:
        finish(run)
    graph = plan_jobs(runs)
    assert graph.stages == [] and len(graph.finished) == 3


def test_a_run_another_process_executes_is_left_to_it(tmp_path):
    runs = plan(tmp_path, seeds=(0,), strategies=("balent",))
    holder = _held_elsewhere(run_lock_path(runs[1]))
    try:
        graph = plan_jobs(runs)
    finally:
        holder.kill()
        holder.join()
    assert graph.running == [runs[1].run_id]
    assert [job.name for job in graph.jobs] == [runs[0].run_id, "tables"]  # no cycle-0 job for nobody


@pytest.mark.parametrize("text, minutes", [("90", 90), ("30:30", 31), ("2:00:00", 120), ("1-0", 1440),
                                           ("1-02:30", 1590), ("0-00:00:59", 1)])
def test_slurm_time_limits(text, minutes):
    assert parse_minutes(text) == minutes


@pytest.mark.parametrize("text", ["two hours", "0", "1:2:3:4", ""])
def test_bad_slurm_time_limits(text):
    with pytest.raises(UsageError, match="--slurm-time"):
        parse_minutes(text)


def test_slurm_options():
    assert parse_slurm_options(["account=proj", "--mem=64G", "exclusive", "constraint=a100|h100"]) == {
        "account": "proj", "mem": "64G", "exclusive": True, "constraint": "a100|h100"}
    for bad in ["=x", "mem=", "a b=c"]:
        with pytest.raises(UsageError, match="--slurm-option"):
            parse_slurm_options([bad])
