"""Which arm wins across tasks: ``aggregate.csv`` over the (dataset, model) tasks of one results
folder (`python -m benchmark leaderboard --aggregate`).

One row per arm (strategy, selection), sorted by mean rank:

- ``n_tasks``: the tasks the arm was ranked in;
- ``mean_rank``: the mean over those tasks of its leaderboard rank (1 = best; ties share the smaller
  rank), with ``mean_rank_low``/``_high``, a 95% stratified bootstrap interval: each task's seeds are
  resampled within the task with the leaderboard's draws (``statistics.bootstrap_draws``, the same
  seeds for every arm of the task), every arm re-ranked in every task, the ranks averaged;
- ``prob_beats_random`` (+ ``_low``/``_high``): the probability that the arm's AULC beats random's
  on a seed, pooled over tasks as rliable's average probability of improvement: the mean over the
  tasks where both ran of the leaderboard's per-task ``prob_beats_random`` (every task weighs the
  same; with the same seeds in every task this is the share of all (task, seed) pairs), its interval
  from the same stratified resamples; ``n_tasks_with_random``: those tasks.

Ranks of tasks with different numbers of arms are averaged as they are (a rank of 3 of 3 and 3 of 7
count the same): compare arms run in the same tasks.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from benchmark.records.schema import ARM, written_order
from benchmark.reports.leaderboard import TIE_DECIMALS, ranked_seeds
from benchmark.reports.statistics import descending_ranks, percentile_interval, resampled_means
from benchmark.reports.verdicts import TaskSeeds

ROW_COLUMNS = [*ARM, "n_tasks", "mean_rank", "mean_rank_low", "mean_rank_high", "prob_beats_random",
                     "prob_beats_random_low", "prob_beats_random_high", "n_tasks_with_random"]
AGGREGATE_COLUMNS = written_order(ROW_COLUMNS)  # the unit column last


def _mean_over_tasks(per_task: list[tuple[float, np.ndarray]]) -> tuple[float, float, float, int]:
    """(mean of the observed values, bootstrap interval of the mean of the resamples, tasks) over the
    tasks with a value."""
    kept = [(value, resampled) for value, resampled in per_task if not np.isnan(value)]
    if not kept:
        return np.nan, np.nan, np.nan, 0
    observed = float(np.mean([value for value, _ in kept]))
    low, high = percentile_interval(np.mean([resampled for _, resampled in kept], axis=0))
    return observed, float(low), float(high), len(kept)


def aggregate(cycles: pd.DataFrame) -> pd.DataFrame:
    """The table of the module docstring (columns ``AGGREGATE_COLUMNS``)."""
    ranks, beats = {}, {}
    for task, seeds, _ in ranked_seeds(cycles):
        t = TaskSeeds.of(task, seeds)
        observed = descending_ranks(np.nanmean(t.aulc, axis=0), np.nanmean(t.final_miou, axis=0), TIE_DECIMALS)
        resampled = descending_ranks(resampled_means(t.aulc, t.draws), resampled_means(t.final_miou, t.draws),
                                     TIE_DECIMALS)
        probability = t.beats_baseline(TIE_DECIMALS)
        for k, arm in enumerate(t.arms):
            ranks.setdefault(arm, []).append((float(observed[k]), resampled[:, k].astype(float)))
            if probability is not None:
                beats.setdefault(arm, []).append((float(probability[0][k]), probability[1][:, k]))
    rows = []
    for arm in sorted(ranks):
        mean_rank, rank_low, rank_high, n_tasks = _mean_over_tasks(ranks[arm])
        prob, prob_low, prob_high, with_random = _mean_over_tasks(beats.get(arm, []))
        rows.append((*arm, n_tasks, mean_rank, rank_low, rank_high, prob, prob_low, prob_high, with_random))
    frame = pd.DataFrame(rows, columns=ROW_COLUMNS)[AGGREGATE_COLUMNS].astype({"n_tasks": "int64", "n_tasks_with_random": "int64"})
    return frame.sort_values(["mean_rank", *ARM], kind="stable").reset_index(drop=True)
