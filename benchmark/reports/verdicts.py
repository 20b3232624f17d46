"""How sure a (dataset, model) task's leaderboard is: what its seeds say beyond a mean and a
t-interval (the columns appended to leaderboard.csv; the formulas: ``benchmark.reports.statistics``).

- ``aulc_boot_low``/``_high``, ``final_miou_boot_low``/``_high``: the 95% percentile bootstrap
  interval of the mean over seeds. Stratified by task: the seeds of one task are resampled
  (``BOOTSTRAP_RESAMPLES`` draws from a generator seeded by the task's name), and every arm of the
  task is resampled with the same draws, so a drawn seed brings all its arms' values along. Empty
  with one seed.
- ``aulc_iqm``, ``final_miou_iqm``: the interquartile mean over seeds, from 5 seeds on.
- ``prob_beats_random`` (+ ``_low``/``_high``): the probability that the arm's AULC on a seed
  exceeds random's on the same seed, ties counting half: the mean over the seeds both ran of 1, 0.5
  or 0. Paired by seed, not over all (i, j) pairs of seeds, because runs of one seed share cycle 0
  (its pixels and model), so the pair (i, i) compares two strategies from the same start and (i, j)
  would mix in how good seed i's start was; the interval resamples those seeds with the task's
  draws. ``random`` is the baseline arm ``BASELINE`` (uniform clicks: ``random`` with the default
  selector); 0.5 for itself, empty when it was not run or shares no seed with the arm; no interval
  with one shared seed.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from benchmark.records.schema import ARM, DEFAULT_SELECTION, DEFAULT_UNIT
from benchmark.reports.statistics import (
    bootstrap_draws,
    interquartile_mean,
    percentile_interval,
    resampled_means,
    win_scores,
)

BASELINE = ("random", DEFAULT_SELECTION, DEFAULT_UNIT)  # the arm every other is compared with: uniform random clicks
PROBABILITY_COLUMNS = ["prob_beats_random", "prob_beats_random_low", "prob_beats_random_high"]
BOOTSTRAP_COLUMNS = ["aulc_boot_low", "aulc_boot_high", "final_miou_boot_low", "final_miou_boot_high",
                     "aulc_iqm", "final_miou_iqm"]


@dataclass(frozen=True)
class TaskSeeds:
    """One task's per-seed values as ``[seeds, arms]`` matrices (NaN: the arm lacks that seed) and
    the bootstrap draws every statistic of the task is resampled with."""

    arms: list
    seeds: list
    aulc: np.ndarray
    final_miou: np.ndarray
    draws: np.ndarray

    @classmethod
    def of(cls, task: tuple, seeds: pd.DataFrame) -> TaskSeeds:
        """From ``benchmark.reports.leaderboard.per_seed`` rows of one task (dataset, model)."""
        arms = sorted({tuple(arm) for arm in seeds[ARM].itertuples(index=False)})
        index = pd.MultiIndex.from_tuples(arms, names=ARM)
        matrix = {column: seeds.set_index(["seed", *ARM])[column].unstack(ARM).reindex(columns=index)
                  for column in ("aulc", "final_miou")}
        order = sorted(matrix["aulc"].index)
        return cls(arms=arms, seeds=order, aulc=matrix["aulc"].loc[order].to_numpy(float),
                   final_miou=matrix["final_miou"].loc[order].to_numpy(float),
                   draws=bootstrap_draws(len(order), "/".join(map(str, task))))

    def beats_baseline(self, decimals: int) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
        """Per arm: the probability that its AULC beats the baseline's on a seed they share (1, 0.5,
        0 per seed: ``win_scores``, averaged), its resamples ``[resamples, arms]`` (the task's draws)
        and the number of shared seeds; None without the baseline."""
        if BASELINE not in self.arms:
            return None
        wins = win_scores(self.aulc, self.aulc[:, [self.arms.index(BASELINE)]], decimals)
        shared = (~np.isnan(wins)).sum(axis=0)
        with np.errstate(invalid="ignore"):
            observed = np.where(shared > 0, np.nansum(wins, axis=0) / np.maximum(shared, 1), np.nan)
        return observed, resampled_means(wins, self.draws), shared


def _interval(resampled: np.ndarray, enough: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    low, high = percentile_interval(resampled)
    return np.where(enough, low, np.nan), np.where(enough, high, np.nan)


def task_verdicts(task: tuple, seeds: pd.DataFrame, decimals: int) -> pd.DataFrame:
    """One row per arm of the task (columns ``ARM`` + ``PROBABILITY_COLUMNS`` + ``BOOTSTRAP_COLUMNS``)."""
    t = TaskSeeds.of(task, seeds)
    columns = {}
    for name, matrix in (("aulc", t.aulc), ("final_miou", t.final_miou)):
        enough = (~np.isnan(matrix)).sum(axis=0) >= 2
        columns[f"{name}_boot_low"], columns[f"{name}_boot_high"] = _interval(resampled_means(matrix, t.draws), enough)
        columns[f"{name}_iqm"] = [interquartile_mean(matrix[:, k]) for k in range(len(t.arms))]
    beats = t.beats_baseline(decimals)
    if beats is None:
        columns.update({c: np.full(len(t.arms), np.nan) for c in PROBABILITY_COLUMNS})
    else:
        observed, resampled, shared = beats
        columns["prob_beats_random"] = observed
        columns["prob_beats_random_low"], columns["prob_beats_random_high"] = _interval(resampled, shared >= 2)
    frame = pd.DataFrame(t.arms, columns=ARM)
    return frame.assign(**{c: np.asarray(columns[c], dtype=float) for c in PROBABILITY_COLUMNS + BOOTSTRAP_COLUMNS})
