"""Acquisition strategies for active learning of semantic segmentation from sparse pixel labels.

    from strategies import STRATEGIES, PixelPosterior, select_top_n
    post = PixelPosterior.from_samples(probs)           # probs [m, C, H, W]
    strategy = STRATEGIES.build(dict(type="balent"))
    scores = strategy.score(post, generator=torch.Generator().manual_seed(0))  # [H, W]
    picks = select_top_n(scores, labelled, n=5, generator=g)                  # [k, 2] (y, x)
"""
from strategies.plugins import StrategyPluginWarning, describe_strategies, load_entry_points
from strategies.posterior import PixelPosterior, PosteriorAccumulator
from strategies.protocol import Strategy, min_mc_samples, needs_samples
from strategies.registry import ENTRY_POINT_GROUP, STRATEGIES, StrategyRegistry, UnknownStrategyError, build_strategy
from strategies.selection import select_top_n

__all__ = [
    "ENTRY_POINT_GROUP", "STRATEGIES", "PixelPosterior", "PosteriorAccumulator", "Strategy",
    "StrategyPluginWarning", "StrategyRegistry", "UnknownStrategyError", "build_strategy",
    "describe_strategies", "load_entry_points", "min_mc_samples", "needs_samples", "select_top_n",
]
