"""Acquisition strategies for active learning of semantic segmentation from sparse pixel labels.

    from strategies import STRATEGIES, PixelPosterior, build_selector
    post = PixelPosterior.from_samples(probs)           # probs [m, C, H, W]
    strategy = STRATEGIES.build(dict(type="balent"))
    scores = strategy.score(post, generator=torch.Generator().manual_seed(0))  # [H, W]
    picks = build_selector("topn").select(scores, labelled, n=5, generator=g)  # [k, 2] (y, x)

``select_top_n(scores, labelled, n, g)`` is the ``topn`` selector as a function.

A harness calls ``prepare_kernels()`` once per process before its first timed scoring (it builds
BalEnt's native kernel if this machine has not yet, and loads it) and records
``scoring_backend(device)`` (which kernel scores BalEnt, and its build) with each run.
"""
from strategies.balent.kernel import prepare as prepare_kernels
from strategies.balent.kernel import scoring_backend
from strategies.plugins import PluginWarning, SelectorPluginWarning, StrategyPluginWarning, describe
from strategies.posterior import PixelPosterior, PosteriorAccumulator
from strategies.protocol import Strategy, min_mc_samples, needs_samples
from strategies.registry import (
                                ENTRY_POINT_GROUP,
                                SELECTOR_ENTRY_POINT_GROUP,
                                SELECTORS,
                                STRATEGIES,
                                PluginRegistry,
                                SelectorRegistry,
                                StrategyRegistry,
                                UnknownPluginError,
                                UnknownSelectorError,
                                UnknownStrategyError,
                                build_selector,
                                build_strategy,
                                describe_selectors,
                                describe_strategies,
                                load_all_entry_points,
                                load_entry_points,
)
from strategies.selection import select_top_n
from strategies.selectors.protocol import Selector

__all__ = [
    "ENTRY_POINT_GROUP", "SELECTORS", "SELECTOR_ENTRY_POINT_GROUP", "STRATEGIES",
    "PixelPosterior", "PluginRegistry", "PluginWarning", "PosteriorAccumulator", "Selector",
    "SelectorPluginWarning", "SelectorRegistry", "Strategy", "StrategyPluginWarning",
    "StrategyRegistry", "UnknownPluginError", "UnknownSelectorError", "UnknownStrategyError",
    "build_selector", "build_strategy", "describe", "describe_selectors", "describe_strategies",
    "load_all_entry_points", "load_entry_points", "min_mc_samples", "needs_samples", "prepare_kernels",
    "scoring_backend", "select_top_n",
]
