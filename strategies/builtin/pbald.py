"""``pbald``: PowerBALD, stochastic power acquisition on BALD."""
from __future__ import annotations

import math

import torch

from strategies.posterior import PixelPosterior
from strategies.registry import STRATEGIES
from strategies.rng import gumbel
from strategies.uncertainty import bald


@STRATEGIES.register_module(name="pbald")
class PowerBALDStrategy:
    """PowerBALD: pixels sampled with probability proportional to BALD^beta (Kirsch et al. 2023).

    "Stochastic Batch Acquisition: A Simple Baseline for Deep Active Learning" (TMLR 2023):
    score = log BALD + G / beta with G i.i.d. standard Gumbel noise from the generator, so top-n
    samples without replacement with probability proportional to BALD^beta. (Woo's BalEnt
    reference code adds Pareto(1, 1) noise instead; we follow the published definition.)
    """

    min_mc_samples = 2  # built on the MC variance / BALD: constant with one sample

    def __init__(self, beta: float = 1.0) -> None:
        if not (beta > 0 and not math.isnan(beta)):
            raise ValueError(f"pbald's beta must be positive, got {beta}")
        self.beta = float(beta)

    def score(self, post: PixelPosterior,
              generator: torch.Generator | None = None) -> torch.Tensor:
        log_bald = torch.log(bald(post.predictive_entropy, post.expected_entropy)).double()
        noise = gumbel(post.score_shape, generator, device=post.device)  # [..., H, W]
        return log_bald + noise / self.beta

    def __repr__(self) -> str:
        return f"PowerBALDStrategy(beta={self.beta})"
