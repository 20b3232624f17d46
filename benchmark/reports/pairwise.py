"""Which pairs of arms differ, and at which budgets: ``pairwise.csv`` (the pairwise penalty matrix of
Ji et al., WACV 2023, and Lüth et al., 2023, per cycle instead of per budget).

One row per (dataset, model, arm A, arm B), A != B, both directions. At every cycle after cycle 0
(cycle 0 is shared by the arms of a seed) at which A and B have at least 2 seeds in common, a
two-sided paired t-test over those seeds compares their mIoU (``statistics.paired_p_value``, level
``leaderboard.ALPHA``, not corrected: this counts budgets, it is not a family test):

- ``wins``: the share of the compared cycles at which A's mIoU is significantly above B's;
- ``losses``: ... significantly below (= B's ``wins`` over A);
- ``cycles_compared``: how many cycles were compared (0: none had 2 shared seeds; wins and losses
  are then empty).

Every cycle both arms reached counts, not only the leaderboard's ranked span.
"""
from __future__ import annotations

from itertools import permutations

import numpy as np
import pandas as pd

from benchmark.records.schema import APPENDED_KEYS, ARM, SUPERVISED, TASK
from benchmark.reports.leaderboard import ALPHA, clean_cycles
from benchmark.reports.statistics import paired_p_value

ARM_A = [f"{column}_a" for column in ARM]
ARM_B = [f"{column}_b" for column in ARM]
ROW_COLUMNS = TASK + ARM_A + ARM_B + ["wins", "losses", "cycles_compared"]
APPENDED = [f"{column}_{side}" for side in "ab" for column in APPENDED_KEYS]  # unit_a, unit_b: written last
PAIRWISE_COLUMNS = [c for c in ROW_COLUMNS if c not in APPENDED] + APPENDED


def compare_cycles(a: pd.DataFrame, b: pd.DataFrame) -> tuple[int, int, int]:
    """(wins, losses, cycles compared) of A over B from their ``[seed, cycle]`` mIoU frames."""
    wins = losses = compared = 0
    for cycle in sorted(set(a.columns) & set(b.columns)):
        if cycle == 0:
            continue
        x, y = a[cycle].dropna(), b[cycle].dropna()
        if len(x.index.intersection(y.index)) < 2:
            continue
        compared += 1
        if paired_p_value(x, y) < ALPHA:
            shared = x.index.intersection(y.index)
            difference = float(np.mean(x.loc[shared].to_numpy() - y.loc[shared].to_numpy()))
            wins, losses = wins + (difference > 0), losses + (difference < 0)
    return wins, losses, compared


def pairwise(cycles: pd.DataFrame) -> pd.DataFrame:
    """The table of the module docstring, sorted by dataset, model, arm A, arm B."""
    cycles = clean_cycles(cycles)
    cycles = cycles[cycles["strategy"] != SUPERVISED]
    rows = []
    for task, block in cycles.groupby(TASK, sort=True):
        curves = {arm: grp.pivot_table(index="seed", columns="cycle", values="miou", aggfunc="last")
                  for arm, grp in block.groupby(ARM, sort=True)}
        for arm_a, arm_b in permutations(curves, 2):
            wins, losses, compared = compare_cycles(curves[arm_a], curves[arm_b])
            shares = (wins / compared, losses / compared) if compared else (np.nan, np.nan)
            rows.append((*task, *arm_a, *arm_b, *shares, compared))
    frame = pd.DataFrame(rows, columns=ROW_COLUMNS)[PAIRWISE_COLUMNS]
    return frame.astype({"cycles_compared": "int64"}).reset_index(drop=True)
