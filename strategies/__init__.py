"""Acquisition strategies for active learning of semantic segmentation from sparse pixel labels.

    from strategies import STRATEGIES, PixelPosterior, build_selector
    post = PixelPosterior.from_samples(probs)           # probs [m, C, H, W]
    strategy = STRATEGIES.build(dict(type="balent"))
    scores = strategy.score(post, generator=torch.Generator().manual_seed(0))  # [H, W]
    picks = build_selector("topn").select(scores, labelled, n=5, generator=g)  # [k, 2] (y, x)

A strategy may also ask for each image's classifier features (``PixelFeatures``), be given the pool's
labelled set once per cycle (``PoolContext``, through ``begin_cycle``) and choose its clicks itself:
see ``strategies.protocol``.

``select_top_n(scores, labelled, n, g)`` is the ``topn`` selector as a function.
"""
from strategies.pixel_features import PixelFeatures
from strategies.plugins import (
                                PluginWarning,
                                SelectorPluginWarning,
                                StrategyPluginWarning,
                                describe,
                                describe_selectors,
                                describe_strategies,
                                load_all_entry_points,
                                load_entry_points,
)
from strategies.pool_context import PoolContext
from strategies.posterior import PixelPosterior, PosteriorAccumulator
from strategies.protocol import (
                                ClickChooser,
                                PoolAwareStrategy,
                                Strategy,
                                chooses_clicks,
                                for_cycle,
                                min_mc_samples,
                                needs_features,
                                needs_labelled_features,
                                needs_samples,
                                per_image_call,
                                pool_aware,
                                scores_alone,
)
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
)
from strategies.selection import select_top_n
from strategies.selectors.protocol import Selector

__all__ = [
    "ENTRY_POINT_GROUP", "SELECTORS", "SELECTOR_ENTRY_POINT_GROUP", "STRATEGIES",
    "ClickChooser", "PixelFeatures", "PoolAwareStrategy", "PoolContext", "chooses_clicks", "for_cycle",
    "needs_features", "needs_labelled_features", "per_image_call", "pool_aware",
    "PixelPosterior", "PluginRegistry", "PluginWarning", "PosteriorAccumulator", "Selector",
    "SelectorPluginWarning", "SelectorRegistry", "Strategy", "StrategyPluginWarning",
    "StrategyRegistry", "UnknownPluginError", "UnknownSelectorError", "UnknownStrategyError",
    "build_selector", "build_strategy", "describe", "describe_selectors", "describe_strategies",
    "load_all_entry_points", "load_entry_points", "scores_alone", "min_mc_samples", "needs_samples", "select_top_n",
]
