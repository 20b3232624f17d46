"""What the plan reads of the strategies' declared capabilities (``strategies.protocol``), never
their names: which selections a run of a strategy is planned with, and which strategies have a
score map of one image to draw."""
from __future__ import annotations

from benchmark.errors import UsageError
from benchmark.records.schema import DEFAULT_SELECTION


def selections_for(name: str, selections: list[str]) -> list[str]:
    """The selections ``name`` runs with: all of them, or for a strategy that chooses its own
    clicks (no selector applies) the default one alone, which ``selections`` must then hold."""
    from strategies import STRATEGIES, chooses_clicks

    if not chooses_clicks(STRATEGIES.get(name)):
        return selections
    if DEFAULT_SELECTION in selections:
        return [DEFAULT_SELECTION]
    raise UsageError(f"--selection {','.join(selections)}: strategy {name} chooses its own clicks, so no selector "
                     f"applies to it; add {DEFAULT_SELECTION} to --selection (it then runs once, recorded under "
                     f"{DEFAULT_SELECTION}) or drop {name}")


def check_map_strategies(names) -> None:
    """Every ``--map-strategies`` name scores one image's posterior alone (the validation maps are
    drawn from that): not one that needs features, the pool's labelled set or chooses clicks."""
    from strategies import STRATEGIES, chooses_clicks, needs_features, pool_aware

    for name in names:
        strategy = STRATEGIES.get(name)
        if pool_aware(strategy) or needs_features(strategy) or chooses_clicks(strategy):
            raise UsageError(f"--map-strategies: {name} has no score map of one image alone (it uses the features "
                             f"or the pool's labelled set): drop it from --map-strategies (or from "
                             f"active_learning.map_strategies in the preset)")
