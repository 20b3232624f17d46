"""``bald``: mutual information between the prediction and the model parameters."""
from __future__ import annotations

import torch

from strategies.posterior import PixelPosterior
from strategies.registry import STRATEGIES
from strategies.uncertainty import bald


@STRATEGIES.register_module(name="bald")
class BALDStrategy:
    """BALD mutual information H - E (Houlsby et al. 2011; Gal et al., ICML 2017).

    "Bayesian Active Learning for Classification and Preference Learning" (arXiv 1112.5745) with
    MC dropout as in "Deep Bayesian Active Learning with Image Data". Values below 1e-9 are
    raised to 1e-9.
    """

    min_mc_samples = 2  # built on the MC variance / BALD: constant with one sample

    def score(self, post: PixelPosterior,
              generator: torch.Generator | None = None) -> torch.Tensor:
        return bald(post.predictive_entropy, post.expected_entropy)  # [..., H, W]
