"""Conformance checks every strategy and every selector must pass.

Run them on your own plugin (a plugin author's test is one line)::

    from strategies.testing import check_selector, check_strategy
    check_strategy(MyStrategy())
    check_selector(MySelector())

Each check raises ``StrategyCheckError`` or ``SelectorCheckError`` (AssertionErrors) naming what
failed. Inputs are small synthetic posteriors and score maps built from a fixed seed, so the
checks are deterministic.

A strategy that declares more than ``score(post, generator)`` (``strategies.protocol``) is checked
through what it declares: a pool-aware one (``begin_cycle``) begins a fresh cycle on a synthetic
pool context for every call; a feature-based one (``needs_features``) gets synthetic features of
the posterior's size, one image at a time (the batch checks are skipped: the harness never gives it
a batch); one that chooses its clicks (``chooses_clicks``) gets the choice checks instead of the
score checks (the selector contract, determinism, no global RNG, MC-sample order, degenerate
inputs, and a fresh cycle per ``begin_cycle``).
"""
from __future__ import annotations

from collections.abc import Callable

import torch

from strategies.posterior import PixelPosterior
from strategies.protocol import chooses_clicks, needs_features, needs_samples, pool_aware
from strategies.selection import select_top_n
from strategies.testing_context import InContext

M, C, H, W = 8, 5, 6, 7


class StrategyCheckError(AssertionError):
    """A strategy failed a conformance check."""


class SelectorCheckError(AssertionError):
    """A selector failed a conformance check."""


def _fail_unless(condition: bool, check: str, message: str,
                 error: type[AssertionError] = StrategyCheckError) -> None:
    if not condition:
        raise error(f"{check}: {message}")


def mc_samples(m: int = M, shape: tuple[int, ...] = (C, H, W), *, seed: int = 0,
               spread: float = 1.0, dtype: torch.dtype = torch.float64) -> torch.Tensor:
    """Synthetic MC-dropout probabilities ``[m, *shape]``: softmax(shared logits + noise)."""
    g = torch.Generator().manual_seed(seed)
    base = 2.0 * torch.randn(shape, generator=g, dtype=torch.float64)
    noise = spread * torch.randn((m, *shape), generator=g, dtype=torch.float64)
    return torch.softmax(base + noise, dim=-3).to(dtype)


def one_hot_samples(m: int = M, shape: tuple[int, ...] = (C, H, W), *,
                    seed: int = 0) -> torch.Tensor:
    """Every sample one-hot on the same class per pixel: no uncertainty at all. # [m, C, H, W]"""
    g = torch.Generator().manual_seed(seed)
    labels = torch.randint(shape[-3], shape[:-3] + shape[-2:], generator=g)
    hot = torch.nn.functional.one_hot(labels, shape[-3]).movedim(-1, -3).to(torch.float64)
    return hot.expand(m, *shape).clone()


def saturated_samples(m: int = M, shape: tuple[int, ...] = (C, H, W), *,
                      seed: int = 0) -> torch.Tensor:
    """float32 softmax samples whose top class leads by a logit gap of 20 to 100 (varying over
    the pixels, + N(0, 0.1^2) noise): a trained model's confident pixels, where the top class's
    mean rounds to 1 and, from gap ~88 on, the other classes underflow to 0. # [m, C, H, W]"""
    g = torch.Generator().manual_seed(seed)
    spatial = shape[:-3] + shape[-2:]
    labels = torch.randint(shape[-3], spatial, generator=g)
    gap = 20.0 + 80.0 * torch.rand(spatial, generator=g, dtype=torch.float64)
    hot = torch.nn.functional.one_hot(labels, shape[-3]).movedim(-1, -3).to(torch.float64)
    noise = 0.1 * torch.randn((m, *shape), generator=g, dtype=torch.float64)
    logits = (gap.unsqueeze(-3) * hot + noise).to(torch.float32)
    return torch.softmax(logits, dim=-3)


def degenerate_inputs(seed: int = 0) -> dict[str, torch.Tensor]:
    """Inputs that must never crash a strategy, by name. Each ``[m, C, H, W]``."""
    constant = mc_samples(1, seed=seed).expand(M, C, H, W).clone()
    g = torch.Generator().manual_seed(seed)
    votes = torch.randint(C, (M, H, W), generator=g)  # one-hot samples that disagree
    return {
        "one-hot": one_hot_samples(seed=seed),
        "constant (zero variance)": constant,
        "uniform": torch.full((M, C, H, W), 1.0 / C, dtype=torch.float64),
        "single sample (m = 1)": mc_samples(1, seed=seed),
        "disagreeing one-hot samples": torch.nn.functional.one_hot(votes, C).movedim(-1, 1)
        .to(torch.float64),
        "float32 near-one-hot": torch.softmax(40.0 * mc_samples(seed=seed, spread=0.1).log(), 1)
        .to(torch.float32),
        "float32 saturated (logit gap 20 to 100)": saturated_samples(seed=seed),
    }


def _posterior(strategy: object, probs: torch.Tensor, device: str) -> PixelPosterior:
    return PixelPosterior.from_samples(probs.to(device), keep_samples=needs_samples(strategy))


def _score(strategy: object, post: PixelPosterior, seed: int | None) -> torch.Tensor:
    g = None if seed is None else torch.Generator().manual_seed(seed)
    return strategy.score(post, generator=g)


def _same(a: torch.Tensor, b: torch.Tensor, rtol: float = 0.0, atol: float = 0.0) -> bool:
    return bool(torch.isclose(a, b, rtol=rtol, atol=atol, equal_nan=True).all())


def check_shape(strategy: object, seed: int = 0, device: str = "cpu") -> None:
    """Scores are a floating tensor [H, W] (or [B, H, W] for a batch) on the posterior's device."""
    for shape in [(C, H, W)] + ([] if needs_features(strategy) else [(2, C, H, W)]):
        post = _posterior(strategy, mc_samples(shape=shape, seed=seed, dtype=torch.float32), device)
        scores = _score(strategy, post, seed)
        _fail_unless(isinstance(scores, torch.Tensor), "shape", f"score returned {type(scores)}")
        expected = shape[:-3] + shape[-2:]
        _fail_unless(scores.shape == expected, "shape",
                     f"expected {expected}, got {tuple(scores.shape)}")
        _fail_unless(scores.is_floating_point(), "shape", f"scores have dtype {scores.dtype}")
        _fail_unless(scores.device == post.device, "shape", f"scores on {scores.device}")


def check_finite(strategy: object, seed: int = 0, device: str = "cpu") -> None:
    """Ordinary (non-degenerate) posteriors give finite scores everywhere."""
    scores = _score(strategy, _posterior(strategy, mc_samples(seed=seed), device), seed)
    _fail_unless(bool(torch.isfinite(scores).all()), "finite",
                 f"{int((~torch.isfinite(scores)).sum())} non-finite scores on ordinary input")


def check_degenerate_inputs(strategy: object, seed: int = 0, device: str = "cpu") -> None:
    """One-hot, constant, uniform, m = 1 ... inputs never crash and keep the score shape."""
    for name, probs in degenerate_inputs(seed).items():
        try:
            scores = _score(strategy, _posterior(strategy, probs, device), seed)
        except Exception as exc:
            raise StrategyCheckError(f"degenerate: crashed on {name} input: {exc!r}") from exc
        _fail_unless(scores.shape == (H, W), "degenerate",
                     f"{name} input gave shape {tuple(scores.shape)}")


def check_degenerates_ranked_last(strategy: object, seed: int = 0, device: str = "cpu") -> None:
    """In an image mixing one-hot and uncertain pixels, selection picks uncertain pixels first."""
    probs = one_hot_samples(seed=seed)
    uncertain = torch.rand((H, W), generator=torch.Generator().manual_seed(seed)) < 0.3
    uncertain[0, 0] = True
    probs = torch.where(uncertain, mc_samples(seed=seed + 1), probs)  # [M, C, H, W]
    scores = _score(strategy, _posterior(strategy, probs, device), seed)
    n = int(uncertain.sum())
    picks = select_top_n(scores, None, n, torch.Generator().manual_seed(seed)).cpu()
    _fail_unless(bool(uncertain[picks[:, 0], picks[:, 1]].all()), "degenerates last",
                 "a one-hot (certain) pixel was selected before an uncertain one")


def check_saturated_ranked_last(strategy: object, seed: int = 0, device: str = "cpu") -> None:
    """float32 statistics: confident pixels whose top class's mean rounds to 1 (logit gap 20 to
    100) are never picked before clearly uncertain ones."""
    uncertain = torch.rand((H, W), generator=torch.Generator().manual_seed(seed + 2)) < 0.3
    uncertain[0, 0] = True
    probs = torch.where(uncertain, mc_samples(seed=seed + 1, dtype=torch.float32),
                        saturated_samples(seed=seed))  # [M, C, H, W] float32
    scores = _score(strategy, _posterior(strategy, probs, device), seed)
    picks = select_top_n(scores, None, int(uncertain.sum()), torch.Generator().manual_seed(seed))
    picks = picks.cpu()
    _fail_unless(bool(uncertain[picks[:, 0], picks[:, 1]].all()), "saturated last",
                 "a saturated (float32, top-class mean ~ 1) pixel was selected before an "
                 "uncertain one")


def check_sample_order_invariance(strategy: object, seed: int = 0, device: str = "cpu") -> None:
    """Permuting the MC samples leaves the scores unchanged (same generator seed)."""
    probs = mc_samples(seed=seed)
    order = torch.randperm(M, generator=torch.Generator().manual_seed(seed + 1))
    first = _score(strategy, _posterior(strategy, probs, device), seed)
    second = _score(strategy, _posterior(strategy, probs[order], device), seed)
    _fail_unless(_same(first, second, rtol=1e-6, atol=1e-9), "sample order",
                 "scores change when the MC samples are permuted")


def check_determinism(strategy: object, seed: int = 0, device: str = "cpu") -> None:
    """Same generator seed, same scores; generator=None is deterministic; global RNG untouched."""
    post = _posterior(strategy, mc_samples(seed=seed), device)
    state = torch.get_rng_state()
    _fail_unless(_same(_score(strategy, post, seed), _score(strategy, post, seed)),
                 "determinism", "two calls with the same generator seed differ")
    _fail_unless(_same(_score(strategy, post, None), _score(strategy, post, None)),
                 "determinism", "generator=None is not deterministic")
    _fail_unless(torch.equal(state, torch.get_rng_state()), "determinism",
                 "score() used torch's global RNG; draw from the generator argument")


def check_batch_consistency(strategy: object, seed: int = 0, device: str = "cpu") -> None:
    """A deterministic strategy scores each image of a batch as it scores it alone."""
    if needs_features(strategy):
        return  # scored one image at a time, with that image's features
    post = _posterior(strategy, mc_samples(seed=seed), device)
    if not _same(_score(strategy, post, seed), _score(strategy, post, seed + 1)):
        return  # stochastic scores: the noise of a batch differs by design
    batch = mc_samples(shape=(2, C, H, W), seed=seed)
    together = _score(strategy, _posterior(strategy, batch, device), seed)
    for b in range(2):
        alone = _score(strategy, _posterior(strategy, batch[:, b], device), seed)
        _fail_unless(_same(together[b], alone, rtol=1e-6, atol=1e-9), "batch",
                     f"image {b} scores differently inside a batch")


CHECKS: list[Callable[..., None]] = [
    check_shape, check_finite, check_degenerate_inputs, check_sample_order_invariance,
    check_determinism, check_batch_consistency,
]


def check_strategy(strategy: object, *, seed: int = 0, device: str = "cpu",
                   degenerates_last: bool = True) -> None:
    """Run every conformance check on ``strategy``; raise ``StrategyCheckError`` on a failure.

    ``degenerates_last=False`` skips the checks that certain pixels (one-hot, or saturated float32
    statistics) are never picked before uncertain ones, for strategies that ignore the posterior
    (like ``random``) or that choose for diversity rather than uncertainty (``coreset``,
    ``badge``); the others, no crash and the score shape on saturated input included, hold for
    every strategy. Strategies that declare features, a pool context or their own choice of clicks
    are checked through those (the module docstring).
    """
    if chooses_clicks(strategy):
        _fail_unless(pool_aware(strategy) or callable(getattr(strategy, "choose", None)), "protocol",
                     f"{strategy!r} declares chooses_clicks but has neither begin_cycle(pool) nor "
                     f"choose(post, excluded, n, generator=None)")
        for check in CHOICE_CHECKS + ([check_choice_degenerates_last] if degenerates_last else []):
            check(strategy, seed=seed, device=device)
        return
    subject = InContext(strategy, seed=seed, device=device) \
        if pool_aware(strategy) or needs_features(strategy) else strategy
    handler = subject.begin(C) if isinstance(subject, InContext) else strategy
    _fail_unless(callable(getattr(handler, "score", None)), "protocol",
                 f"{handler!r} has no score(post, generator=None) method")
    last = [check_degenerates_ranked_last, check_saturated_ranked_last]
    for check in CHECKS + (last if degenerates_last else []):
        check(subject, seed=seed, device=device)


# --- selectors -------------------------------------------------------------------------------


def _selector_fail_unless(condition: bool, check: str, message: str) -> None:
    _fail_unless(condition, check, message, SelectorCheckError)


def score_map(shape: tuple[int, int] = (H, W), *, seed: int = 0, levels: int = 0,
              dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """A synthetic score map ``[h, w]``; ``levels > 0`` rounds it to that many values (ties)."""
    scores = torch.rand(shape, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)
    if levels > 0:
        scores = torch.floor(scores * levels)
    return scores.to(dtype)


def selection_cases(seed: int = 0) -> dict[str, tuple[torch.Tensor, torch.Tensor | None, int]]:
    """``name -> (scores, labelled, n)``: ordinary and awkward inputs every selector must take."""
    g = torch.Generator().manual_seed(seed + 1)
    some = torch.rand(H, W, generator=g) < 0.3
    most = torch.ones(H, W, dtype=torch.bool)
    most[0, :3] = False  # three unlabelled pixels left
    peak = torch.zeros(H, W)
    peak[H // 2, W // 2] = 1.0
    nan = torch.full((H, W), float("nan"))
    mixed = torch.tensor([float("nan"), float("inf"), float("-inf")]).repeat(H * W // 3 + 1)
    return {
        "ordinary": (score_map(seed=seed), some, 5),
        "nothing labelled (labelled=None)": (score_map(seed=seed), None, 5),
        "float64 with many ties": (score_map(seed=seed, levels=3, dtype=torch.float64), some, 9),
        "one sharp peak": (peak, None, 5),
        "n above the unlabelled count": (score_map(seed=seed), most, 5),
        "one-row image": (score_map((1, 9), seed=seed), None, 4),
        "one-pixel image": (score_map((1, 1), seed=seed), None, 3),
        "all NaN": (nan, some, 5),
        "all non-finite (NaN, +inf, -inf)": (mixed[:H * W].reshape(H, W), None, 5),
        "n = 0": (score_map(seed=seed), some, 0),
        "fully labelled": (score_map(seed=seed), torch.ones(H, W, dtype=torch.bool), 5),
    }


def _select(selector: object, scores: torch.Tensor, labelled: torch.Tensor | None, n: int,
            seed: int | None, device: str) -> torch.Tensor:
    g = None if seed is None else torch.Generator().manual_seed(seed)
    mask = None if labelled is None else labelled.to(device)
    return selector.select(scores.to(device), mask, n, generator=g)


def _check_picks(picks: object, scores: torch.Tensor, labelled: torch.Tensor | None, n: int,
                 case: str, fail: Callable[[bool, str, str], None] = _selector_fail_unless) -> None:
    """Output contract: LongTensor [k, 2], k = min(n, unlabelled), in bounds, valid, distinct."""
    fail(isinstance(picks, torch.Tensor), "output", f"{case}: select returned {type(picks)}")
    fail(picks.dtype == torch.long and picks.dim() == 2 and picks.shape[-1] == 2, "output",
         f"{case}: expected a LongTensor [k, 2], got {picks.dtype} {tuple(picks.shape)}")
    fail(picks.device == scores.device, "output", f"{case}: picks on {picks.device}, "
         f"scores on {scores.device}")
    unlabelled = scores.numel() - (0 if labelled is None else int(labelled.sum()))
    fail(picks.shape[0] == min(n, unlabelled), "count",
         f"{case}: {picks.shape[0]} picks, expected min(n={n}, unlabelled={unlabelled})")
    picks = picks.cpu()
    height, width = scores.shape
    inside = (picks >= 0).all(1) & (picks[:, 0] < height) & (picks[:, 1] < width)
    fail(bool(inside.all()), "in bounds", f"{case}: pick outside the {height}x{width} image")
    if labelled is not None:
        fail(not bool(labelled[picks[:, 0], picks[:, 1]].any()), "labelled",
             f"{case}: a labelled pixel was selected again")
    fail(torch.unique(picks[:, 0] * width + picks[:, 1]).numel() == picks.shape[0], "duplicates",
         f"{case}: a pixel was selected twice")


def check_selection_contract(selector: object, seed: int = 0, device: str = "cpu") -> None:
    """Every case of ``selection_cases`` gives valid picks (shape, count, bounds, no repeats)."""
    for case, (scores, labelled, n) in selection_cases(seed).items():
        try:
            picks = _select(selector, scores, labelled, n, seed, device)
        except Exception as exc:
            raise SelectorCheckError(f"crash: {case}: {exc!r}") from exc
        _check_picks(picks, scores.to(device), labelled, n, case)


def check_selector_reproducible(selector: object, seed: int = 0, device: str = "cpu") -> None:
    """Same generator seed, same picks; generator=None is deterministic; global RNG untouched."""
    state = torch.get_rng_state()
    for case in ("ordinary", "float64 with many ties", "one sharp peak"):
        scores, labelled, n = selection_cases(seed)[case]
        first, second = (_select(selector, scores, labelled, n, seed, device) for _ in range(2))
        _selector_fail_unless(torch.equal(first, second), "reproducible",
                              f"{case}: two calls with the same generator seed differ")
        first, second = (_select(selector, scores, labelled, n, None, device) for _ in range(2))
        _selector_fail_unless(torch.equal(first, second), "reproducible",
                              f"{case}: generator=None is not deterministic")
    _selector_fail_unless(torch.equal(state, torch.get_rng_state()), "reproducible",
                          "select() used torch's global RNG; draw from the generator argument")


def check_selector(selector: object, *, seed: int = 0, device: str = "cpu") -> None:
    """Run every selector conformance check; raise ``SelectorCheckError`` on a failure."""
    _selector_fail_unless(callable(getattr(selector, "select", None)), "protocol",
                          f"{selector!r} has no select(scores, labelled, n, generator=None) "
                          f"method")
    check_selection_contract(selector, seed=seed, device=device)
    check_selector_reproducible(selector, seed=seed, device=device)


# --- strategies that choose their clicks (``chooses_clicks``) ------------------------------------


def choice_cases(seed: int = 0) -> dict[str, tuple[torch.Tensor, torch.Tensor, int]]:
    """``name -> (probs [m, C, h, w], excluded [h, w], n)``: what a choosing strategy must take."""
    g = torch.Generator().manual_seed(seed + 1)
    some = torch.rand(H, W, generator=g) < 0.3
    most = torch.ones(H, W, dtype=torch.bool)
    most[0, :3] = False  # three pixels left
    none = torch.zeros(H, W, dtype=torch.bool)
    cases = {
        "ordinary": (mc_samples(seed=seed), some, 5),
        "nothing excluded": (mc_samples(seed=seed), none, 5),
        "n above the selectable count": (mc_samples(seed=seed), most, 5),
        "n = 0": (mc_samples(seed=seed), some, 0),
        "fully excluded": (mc_samples(seed=seed), torch.ones(H, W, dtype=torch.bool), 5),
        "one-row image": (mc_samples(shape=(C, 1, 9), seed=seed), torch.zeros(1, 9, dtype=torch.bool), 4),
        "one-pixel image": (mc_samples(shape=(C, 1, 1), seed=seed), torch.zeros(1, 1, dtype=torch.bool), 3),
    }
    for name, probs in degenerate_inputs(seed).items():
        cases[f"{name} input"] = (probs, some, 5)
    return cases


def _choose(strategy: object, probs: torch.Tensor, excluded: torch.Tensor, n: int, seed: int | None,
            device: str, cycle: object | None = None) -> torch.Tensor:
    """One image's clicks from a fresh cycle (or ``cycle``) in the synthetic pool context."""
    context = InContext(strategy, seed=0 if seed is None else seed, device=device)
    post = _posterior(strategy, probs, device)
    handler = context.begin(post.num_classes) if cycle is None else cycle
    g = None if seed is None else torch.Generator().manual_seed(seed)
    return handler.choose(post, excluded.to(device), n, generator=g, **context.extra(post.score_shape))


def check_choice_contract(strategy: object, seed: int = 0, device: str = "cpu") -> None:
    """Every case of ``choice_cases``: no crash, and the selector contract (LongTensor [k, 2] on the
    posterior's device, k = min(n, pixels not excluded), in bounds, none excluded, none twice)."""
    for case, (probs, excluded, n) in choice_cases(seed).items():
        try:
            picks = _choose(strategy, probs, excluded, n, seed, device)
        except Exception as exc:
            raise StrategyCheckError(f"choice: crashed on {case}: {exc!r}") from exc
        stand_in = torch.empty(excluded.shape, device=device)  # the image's shape and device
        _check_picks(picks, stand_in, excluded, n, f"choice: {case}", _fail_unless)


def check_choice_determinism(strategy: object, seed: int = 0, device: str = "cpu") -> None:
    """Same generator seed, same clicks; generator=None is deterministic; global RNG untouched."""
    probs, excluded, n = choice_cases(seed)["ordinary"]
    state = torch.get_rng_state()
    for g in (seed, None):
        first, second = (_choose(strategy, probs, excluded, n, g, device) for _ in range(2))
        _fail_unless(torch.equal(first, second), "choice determinism",
                     "two choices with the same generator seed differ" if g is not None
                     else "generator=None is not deterministic")
    _fail_unless(torch.equal(state, torch.get_rng_state()), "choice determinism",
                 "choose() used torch's global RNG; draw from the generator argument")


def check_choice_sample_order(strategy: object, seed: int = 0, device: str = "cpu") -> None:
    """Permuting the MC samples leaves the clicks unchanged (same generator seed)."""
    probs, excluded, n = choice_cases(seed)["ordinary"]
    order = torch.randperm(M, generator=torch.Generator().manual_seed(seed + 1))
    first = _choose(strategy, probs, excluded, n, seed, device)
    second = _choose(strategy, probs[order], excluded, n, seed, device)
    _fail_unless(torch.equal(first, second), "choice sample order",
                 "the clicks change when the MC samples are permuted")


def check_choice_fresh_cycle(strategy: object, seed: int = 0, device: str = "cpu") -> None:
    """What a cycle keeps from image to image stays in that cycle: an image chosen first in a new
    cycle gets the clicks it got first in an earlier one, whatever that cycle chose after it."""
    if not pool_aware(strategy):
        return
    probs, excluded, n = choice_cases(seed)["ordinary"]
    other = mc_samples(seed=seed + 5)
    context = InContext(strategy, seed=seed, device=device)
    cycle = context.begin(C)
    first = _choose(strategy, probs, excluded, n, seed, device, cycle)
    _choose(strategy, other, excluded, n, seed, device, cycle)
    again = _choose(strategy, probs, excluded, n, seed, device, context.begin(C))
    _fail_unless(torch.equal(first, again), "fresh cycle",
                 "begin_cycle returned an object that remembers an earlier cycle's choices")


def check_choice_degenerates_last(strategy: object, seed: int = 0, device: str = "cpu") -> None:
    """In an image mixing one-hot and uncertain pixels, n = (uncertain pixels) clicks are all
    uncertain ones (for strategies that choose by uncertainty)."""
    probs = one_hot_samples(seed=seed)
    uncertain = torch.rand((H, W), generator=torch.Generator().manual_seed(seed)) < 0.3
    uncertain[0, 0] = True
    probs = torch.where(uncertain, mc_samples(seed=seed + 1), probs)
    picks = _choose(strategy, probs, torch.zeros(H, W, dtype=torch.bool), int(uncertain.sum()), seed, device)
    picks = picks.cpu()
    _fail_unless(bool(uncertain[picks[:, 0], picks[:, 1]].all()), "degenerates last",
                 "a one-hot (certain) pixel was chosen before an uncertain one")


CHOICE_CHECKS: list[Callable[..., None]] = [
    check_choice_contract, check_choice_determinism, check_choice_sample_order, check_choice_fresh_cycle,
]
