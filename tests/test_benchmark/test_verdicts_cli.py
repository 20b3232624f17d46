"""Known-answer tables through the command line (`leaderboard`, `leaderboard --aggregate`, `plot`
in subprocesses): every verdict column, pairwise.csv and aggregate.csv against an independent
computation here (scipy's paired t-test and noncentral t, brute-force pair counts, the exact
bootstrap distribution)."""
from __future__ import annotations

import itertools

import numpy as np
import pandas as pd
import pytest
from PIL import Image
from scipy import stats

from tests.test_benchmark.test_verdict_statistics import is_fewest_seeds

FRACTIONS = np.array([0.001, 0.002, 0.004, 0.008])
WEIGHTS = np.array([1, 3, 6, 4]) / 14  # the trapezoid over FRACTIONS / their span: AULC = WEIGHTS @ mIoU
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def curve(base: float, s: int) -> np.ndarray:
    return np.array([10 + base + 0.7 * s, 14 + base + 1.3 * s, 19 + base + 0.4 * s * s, 23 + base + 0.9 * s])


def task_a() -> dict:
    """5 seeds: random; better (above random at every cycle after 0, on every seed); clone (random's
    numbers: ties); noisy (random + symmetric noise: 2 seeds up, 2 down, 1 equal); twin (better's
    AULC on average, to the last digit, but a lower final mIoU: no difference to find)."""
    seeds = range(5)
    random = {s: curve(0, s) for s in seeds}
    better = {s: random[s] + np.array([0, 3 + 0.5 * s, 4 + 0.3 * s, 5 - 0.2 * s]) for s in seeds}
    noise = [1.0, -1.0, 2.0, -2.0, 0.0]
    u = np.array([0, 2, 0, 0])   # WEIGHTS @ u = 6/14: moves the AULC, not the final mIoU
    z = np.array([0, 0, 2, -3])  # WEIGHTS @ z = 0: lowers the final mIoU, not the AULC
    shift, drop = [0.5, -0.5, 0.25, -0.25, 0.0], [1.0, 1.2, 0.8, 1.1, 0.9]
    return dict(random=random, better=better, clone={s: random[s].copy() for s in seeds},
                noisy={s: random[s] + noise[s] * np.array([0, 1, 1, 1]) for s in seeds},
                twin={s: better[s] + shift[s] * u + drop[s] * z for s in seeds})


def task_b() -> dict:
    """3 seeds: random, better, worse."""
    random = {s: curve(2, s) for s in range(3)}
    return dict(random=random, better={s: random[s] + np.array([0, 2 + 0.5 * s, 2.5 + s, 3 - s]) for s in range(3)},
                worse={s: random[s] - np.array([0, 1 + s, 1 + 0.5 * s, 2 * s]) for s in range(3)})


def task_c() -> dict:
    """3 seeds, random not run."""
    return dict(better={s: curve(5, s) for s in range(3)}, noisy={s: curve(4, s) + [0, s, -s, 1] for s in range(3)})


TASKS = {("toy", "fpn"): task_a(), ("toy", "deeplab"): task_b(), ("toy2", "fpn"): task_c()}


def cycles_table() -> pd.DataFrame:
    rows = []
    for (dataset, model), arms in TASKS.items():
        for strategy, seeds in arms.items():
            for seed, mious in seeds.items():
                for cycle, (fraction, miou) in enumerate(zip(FRACTIONS, mious)):
                    rows.append(dict(dataset=dataset, model=model, strategy=strategy, selection="topn", seed=seed,
                                     cycle=cycle, labeled_pixels=int(fraction * 1e6), labeled_fraction=fraction,
                                     miou=round(float(miou), 6)))
    return pd.DataFrame(rows)


def aulc(mious) -> float:
    return float(WEIGHTS @ np.round(mious, 6))


def beats(x: float, y: float) -> float:
    return 1.0 if round(x - y, 9) > 0 else 0.5 if round(x - y, 9) == 0 else 0.0


@pytest.fixture(scope="module")
def results(run_cli, tmp_path_factory):
    out = tmp_path_factory.mktemp("verdicts")
    cycles_table().to_csv(out / "cycles.csv", index=False)
    first = run_cli("leaderboard", "--results", out, "--aggregate", env_extra={"COLUMNS": "160"})
    written = {name: (out / name).read_bytes() for name in ("leaderboard.csv", "pairwise.csv", "aggregate.csv")}
    for name in written:
        (out / name).unlink()
    run_cli("leaderboard", "--results", out, "--aggregate")
    again = {name: (out / name).read_bytes() for name in written}
    return out, first.stdout, written, again


def board_row(out, task, strategy) -> pd.Series:
    board = pd.read_csv(out / "leaderboard.csv")
    return board.set_index(["dataset", "model", "strategy"]).loc[(*task, strategy)]


def test_same_input_gives_byte_identical_tables(results):
    _, _, written, again = results
    assert written == again


def test_existing_columns_come_first_and_new_ones_are_appended(results):
    out = results[0]
    columns = list(pd.read_csv(out / "leaderboard.csv").columns)
    assert columns[:20] == [
        "dataset", "model", "strategy", "selection", "n_seeds", "aulc_mean", "aulc_ci95", "final_miou_mean",
        "final_miou_ci95", "pct_of_supervised", "rank", "tied_with_best", "final_labeled_fraction",
        "supervised_miou", "n_cycles", "note", "pct_of_supervised_ci95", "p_holm", "ranked_cycles", "void_share"]
    assert columns[20:] == ["prob_beats_random", "prob_beats_random_low", "prob_beats_random_high",
                            "seeds_for_80pct_power", "aulc_boot_low", "aulc_boot_high", "final_miou_boot_low",
                            "final_miou_boot_high", "aulc_iqm", "final_miou_iqm",
                            # at equal cost (the units issue), the unit key last
                            "aulc_cost_mean", "aulc_cost_ci95", "cost_span_start", "cost_span_end", "unit"]


def test_probability_of_beating_random_is_the_pair_count_over_seeds(results):
    out = results[0]
    for task, arms in TASKS.items():
        for strategy, seeds in arms.items():
            row = board_row(out, task, strategy)
            if "random" not in arms:
                assert row[["prob_beats_random", "prob_beats_random_low", "prob_beats_random_high"]].isna().all()
                continue
            pairs = [beats(aulc(seeds[s]), aulc(arms["random"][s])) for s in seeds]
            assert row["prob_beats_random"] == pytest.approx(np.mean(pairs), abs=1e-6), (task, strategy)
            assert row["prob_beats_random_low"] <= row["prob_beats_random"] <= row["prob_beats_random_high"]
    a = ("toy", "fpn")
    for strategy, expected in [("better", 1.0), ("clone", 0.5), ("random", 0.5)]:
        row = board_row(out, a, strategy)  # every seed the same verdict: the interval is that point
        assert row[["prob_beats_random", "prob_beats_random_low", "prob_beats_random_high"]].tolist() == [expected] * 3
    noisy = board_row(out, a, "noisy")
    assert noisy["prob_beats_random"] == 0.5  # 2 wins, 2 losses, 1 tie
    scores = [beats(aulc(TASKS[a]["noisy"][s]), aulc(TASKS[a]["random"][s])) for s in range(5)]
    exact = [np.mean([scores[i] for i in draw]) for draw in itertools.product(range(5), repeat=5)]
    low, high = np.percentile(exact, [2.5, 97.5], method="inverted_cdf")  # exact bootstrap: atoms 0.1 apart
    assert abs(noisy["prob_beats_random_low"] - low) <= 0.1 and abs(noisy["prob_beats_random_high"] - high) <= 0.1


def test_seeds_for_80_percent_power_against_scipy(results):
    out = results[0]
    board = pd.read_csv(out / "leaderboard.csv", keep_default_na=False)
    for task, arms in TASKS.items():
        rows = board[(board["dataset"] == task[0]) & (board["model"] == task[1])].set_index("strategy")
        best = rows.index[rows["rank"] == 1][0]
        per_seed = {k: np.array([aulc(seeds[s]) for s in sorted(seeds)]) for k, seeds in arms.items()}
        raw = {k: stats.ttest_rel(per_seed[best], per_seed[k]).pvalue for k in arms if k != best}
        order = sorted(raw, key=lambda k: (raw[k], k))
        for position, k in enumerate(order):
            cell = rows.loc[k, "seeds_for_80pct_power"]
            difference = per_seed[best] - per_seed[k]
            if round(abs(difference.mean()), 9) == 0:
                assert cell == "inf", (task, k)
                continue
            alpha = 0.05 / (len(order) - position)  # Holm's level for this comparison
            assert is_fewest_seeds(int(cell), difference, alpha), (task, k, cell)
        assert rows.loc[best, "seeds_for_80pct_power"] == ""  # empty for the best
    assert board_row(out, ("toy", "fpn"), "twin")["rank"] == 2  # tied AULC, lower final: its row says inf


def test_bootstrap_intervals_and_interquartile_means(results):
    out = results[0]
    for task, arms in TASKS.items():
        for strategy, seeds in arms.items():
            row = board_row(out, task, strategy)
            for name, values in (("aulc", [aulc(seeds[s]) for s in seeds]), ("final_miou", [seeds[s][-1] for s in seeds])):
                exact = [np.mean([values[i] for i in draw])
                         for draw in itertools.product(range(len(values)), repeat=len(values))]
                low, high = np.percentile(exact, [2.5, 97.5], method="inverted_cdf")  # the discrete quantiles
                tolerance = 0.03 * np.ptp(exact) + 1e-6
                assert row[f"{name}_boot_low"] == pytest.approx(low, abs=tolerance), (task, strategy, name)
                assert row[f"{name}_boot_high"] == pytest.approx(high, abs=tolerance), (task, strategy, name)
                t_low, t_high = row[f"{name}_mean"] - row[f"{name}_ci95"], row[f"{name}_mean"] + row[f"{name}_ci95"]
                assert row[f"{name}_boot_low"] >= t_low - 1e-6 and row[f"{name}_boot_high"] <= t_high + 1e-6
                if len(values) >= 5:  # the middle half: values 2-4 of 5, sorted
                    assert row[f"{name}_iqm"] == pytest.approx(np.mean(sorted(values)[1:4]), abs=1e-6)
                else:
                    assert np.isnan(row[f"{name}_iqm"])


def test_pairwise_wins_are_the_cycles_a_paired_t_test_separates(results):
    out = results[0]
    pairs = pd.read_csv(out / "pairwise.csv")
    assert list(pairs.columns) == ["dataset", "model", "strategy_a", "selection_a", "strategy_b", "selection_b",
                                   "wins", "losses", "cycles_compared", "unit_a", "unit_b"]
    assert len(pairs) == sum(len(arms) * (len(arms) - 1) for arms in TASKS.values())
    for row in pairs.itertuples(index=False):
        a, b = TASKS[(row.dataset, row.model)][row.strategy_a], TASKS[(row.dataset, row.model)][row.strategy_b]
        wins = losses = 0
        for cycle in (1, 2, 3):  # cycle 0 excluded
            x, y = [np.round(a[s][cycle], 6) for s in a], [np.round(b[s][cycle], 6) for s in b]
            difference = np.subtract(x, y)
            if np.allclose(difference, 0):
                continue  # identical: no difference
            if stats.ttest_rel(x, y).pvalue < 0.05:
                wins, losses = wins + (difference.mean() > 0), losses + (difference.mean() < 0)
        assert row.cycles_compared == 3
        assert (row.wins, row.losses) == pytest.approx((wins / 3, losses / 3)), row
    a = pairs.set_index(["dataset", "model", "strategy_a", "strategy_b"])
    assert a.loc[("toy", "fpn", "better", "random"), "wins"] == 1.0  # significantly above at every cycle
    assert a.loc[("toy", "fpn", "clone", "random"), ["wins", "losses"]].tolist() == [0.0, 0.0]
    mirrored = a.loc[[(d, m, y, x) for d, m, x, y in a.index]]
    assert np.array_equal(mirrored["losses"].to_numpy(), a["wins"].to_numpy())


def test_aggregate_ranks_and_pooled_probability_across_tasks(results):
    out = results[0]
    aggregate = pd.read_csv(out / "aggregate.csv").set_index("strategy")
    ranks, probability = {}, {}
    for arms in TASKS.values():
        names = sorted(arms)
        keys = {k: (round(np.mean([aulc(arms[k][s]) for s in arms[k]]), 9), round(np.mean([arms[k][s][-1] for s in arms[k]]), 9))
                for k in names}  # AULC, then final mIoU; the rank: 1 + the arms ahead
        for k in names:
            ranks.setdefault(k, []).append(1 + sum(keys[j] > keys[k] for j in names))
        if "random" in arms:
            for k in names:
                pairs = [beats(aulc(arms[k][s]), aulc(arms["random"][s])) for s in arms[k]]
                probability.setdefault(k, []).append(np.mean(pairs))
    assert set(aggregate.index) == set(ranks)
    for k in ranks:
        row = aggregate.loc[k]
        assert row["n_tasks"] == len(ranks[k]) and row["mean_rank"] == pytest.approx(np.mean(ranks[k]))
        assert row["mean_rank_low"] <= row["mean_rank"] <= row["mean_rank_high"]
        assert row["n_tasks_with_random"] == len(probability.get(k, []))
        assert row["prob_beats_random"] == pytest.approx(np.mean(probability[k]) if k in probability else np.nan,
                                                         nan_ok=True)
    assert list(aggregate.index[:1]) == ["better"]  # first in every task (the twin ties it in some resamples)
    assert aggregate.loc["better", ["mean_rank", "mean_rank_low"]].tolist() == [1.0, 1.0]


def test_printed_leaderboard_says_how_sure_in_words(results):
    _, stdout, _, _ = results
    assert stdout.count("how sure") == 3 and "P(> random)" in stdout and "bootstrap" in stdout
    assert "never: no difference seen" in stdout  # twin
    assert "Verdict:" in stdout and "IQM" in stdout and "random (topn) was not run" in stdout
    assert "Across tasks" in stdout and "aggregate.csv" in stdout and "pairwise.csv" in stdout


def test_plot_draws_a_pairwise_heatmap_per_task(run_cli, results):
    out = results[0]
    proc = run_cli("plot", "--results", out)
    for dataset, model in TASKS:
        path = out / "figures" / f"pairwise_{dataset}_{model}.png"
        assert path.read_bytes()[:8] == PNG_SIGNATURE and str(path) in proc.stdout.replace("\n", "")
        with Image.open(path) as image:
            assert 300 <= image.width <= 3000 and 300 <= image.height <= 3000
