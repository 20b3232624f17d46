"""BalEnt (balanced entropy, ``balent`` and ``balent_ref``): the method's formulas, and the
kernels behind one entry point that compute its costly part, the posterior term.

formula.py       the formulas (fit, posterior term's parts, BalEnt, acquisition value, regime)
beta_entropy.py  the float64 differential entropy of Beta(1 + alpha, beta) in torch
kernel.py        the one entry point: native kernel (CPU), compiled kernel (GPU), else the torch kernel
compiled_kernel.py the posterior term as one pure function for torch.compile (the GPU kernel)
torch_kernel.py  the posterior term in eager torch (any device; the reference)
native_kernel.py the posterior term compiled (CPU): posterior_term.cpp + posterior_term_kernel.h, built with torch.utils.cpp_extension
scores.py        BalEnt of a PixelPosterior: the term kept and shared, the scores, the regime
"""
from strategies.balent.formula import (
    DEGENERATE,
    FIT_FLOOR,
    FIT_TOLERANCE,
    LOG_2,
    NEGATIVE,
    POSITIVE,
    REF_BETA_FN_EPS,
    REGIME_NAMES,
    SATURATED,
    PosteriorTerm,
    balent_acquisition,
    beta_moment_fit,
)
from strategies.balent.kernel import posterior_term, posterior_term_and_scores, posterior_term_parts
from strategies.balent.scores import (
    balanced_entropy,
    balent_regime,
    balent_scores,
    posterior_term_of,
    posterior_term_parts_of,
)

__all__ = [
    "DEGENERATE", "FIT_FLOOR", "FIT_TOLERANCE", "LOG_2", "NEGATIVE", "POSITIVE", "REF_BETA_FN_EPS",
    "REGIME_NAMES", "SATURATED", "PosteriorTerm", "balanced_entropy", "balent_acquisition",
    "balent_regime", "balent_scores", "beta_moment_fit", "posterior_term",
    "posterior_term_and_scores", "posterior_term_of", "posterior_term_parts", "posterior_term_parts_of",
]
