"""The per-pixel posterior summary every strategy scores, built from m MC-dropout samples.

``PosteriorAccumulator`` folds in one probability map at a time (Welford's update for mean and
variance, a running sum of per-sample entropies), so memory does not grow with m;
``PixelPosterior.from_samples`` is the same fold over a stacked ``[m, ..., C, H, W]`` tensor.
The class dimension is ``CLASS_DIM`` (-3) throughout, and H and E are Shannon entropies
(``entropy``, natural logs).
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, Callable, Hashable

import torch

CLASS_DIM = -3  # the class dimension of every [..., C, H, W] statistic


def entropy(p: torch.Tensor, dim: int = CLASS_DIM) -> torch.Tensor:
    """Shannon entropy ``-sum p log p`` along ``dim`` (0 log 0 = 0)."""
    return -torch.special.xlogy(p, p).sum(dim)


@dataclass(frozen=True)
class PixelPosterior:
    """Sufficient statistics of m MC samples for one image (or a batch of images).

    ``variance`` is the unbiased (1/(m-1)) variance, defined as 0 when m == 1.
    ``samples`` is only present when built with ``keep_samples=True``.
    """

    mean: torch.Tensor  # [..., C, H, W]
    variance: torch.Tensor  # [..., C, H, W]
    predictive_entropy: torch.Tensor  # [..., H, W]  H = entropy of the mean
    expected_entropy: torch.Tensor  # [..., H, W]  E = mean of the per-sample entropies
    m: int
    samples: torch.Tensor | None = None  # [m, ..., C, H, W]
    _derived: dict = field(default_factory=dict, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.mean.dim() < 3 or self.mean.shape != self.variance.shape:
            raise ValueError(f"mean and variance must share a [..., C, H, W] shape, got "
                             f"{tuple(self.mean.shape)} and {tuple(self.variance.shape)}")
        spatial = self.mean.shape[:-3] + self.mean.shape[-2:]
        for name in ("predictive_entropy", "expected_entropy"):
            if getattr(self, name).shape != spatial:
                raise ValueError(f"{name} must have shape {tuple(spatial)}, "
                                 f"got {tuple(getattr(self, name).shape)}")
        if self.m < 1:
            raise ValueError(f"m must be at least 1, got {self.m}")

    @classmethod
    def from_samples(cls, probs: torch.Tensor, *, keep_samples: bool = False,
                     dtype: torch.dtype | None = None) -> PixelPosterior:
        """Summarise stacked probability maps ``probs`` of shape ``[m, ..., C, H, W]``."""
        if probs.dim() < 4:
            raise ValueError(f"probs must be [m, ..., C, H, W], got shape {tuple(probs.shape)}")
        acc = PosteriorAccumulator(keep_samples=keep_samples, dtype=dtype)
        for sample in probs:  # [..., C, H, W]
            acc.add(sample)
        return acc.finalize()

    def derived(self, key: Hashable, compute: Callable[[], Any]) -> Any:
        """``compute()`` on first use of ``key``, then the kept value: lets two consumers of one
        posterior (a strategy and the uncertainty record, say) share a costly quantity such as
        BalEnt's posterior term. Treat the posterior's tensors as read-only."""
        if key not in self._derived:
            self._derived[key] = compute()
        return self._derived[key]

    def take(self, index: torch.Tensor) -> PixelPosterior:
        """The posterior of one image's pixels ``index`` (flat indices into its [H, W]), shaped
        [C, 1, K]. Quantities already derived for every pixel (tensors of ``score_shape``, or
        dataclasses of them, such as BalEnt's posterior term) come along gathered, so a consumer
        of the subset shares them instead of computing them again. No raw samples are kept."""
        if self.mean.dim() != 3:
            raise ValueError(f"take() needs one image's posterior [C, H, W], got {tuple(self.mean.shape)}")
        index = index.to(self.device)

        def pick(t: torch.Tensor) -> torch.Tensor:
            return t.reshape(t.shape[:-2] + (-1,)).index_select(-1, index).unsqueeze(-2)

        sub = PixelPosterior(mean=pick(self.mean), variance=pick(self.variance),
                             predictive_entropy=pick(self.predictive_entropy),
                             expected_entropy=pick(self.expected_entropy), m=self.m)
        for key, value in self._derived.items():
            gathered = _gathered(value, pick, self.score_shape)
            if gathered is not None:
                sub._derived[key] = gathered
        return sub

    @property
    def num_classes(self) -> int:
        return self.mean.shape[CLASS_DIM]

    @property
    def score_shape(self) -> torch.Size:
        """Shape of a score map for this posterior: ``[..., H, W]``."""
        return self.predictive_entropy.shape

    @property
    def device(self) -> torch.device:
        return self.mean.device

    @property
    def dtype(self) -> torch.dtype:
        return self.mean.dtype


def _gathered(value: Any, pick: Callable, shape: torch.Size) -> Any:
    """``pick(value)`` for a per-pixel tensor, field by field for a dataclass of them, else None."""
    if isinstance(value, torch.Tensor):
        return pick(value) if value.shape == shape else None
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        fields = {f.name: _gathered(getattr(value, f.name), pick, shape) for f in dataclasses.fields(value)}
        return None if any(v is None for v in fields.values()) else dataclasses.replace(value, **fields)
    return None


def _accumulation_dtype(p: torch.Tensor, dtype: torch.dtype | None) -> torch.dtype:
    if not p.is_floating_point():
        raise TypeError(f"probability maps must be floating point, got {p.dtype}")
    dtype = dtype or p.dtype
    return torch.float32 if dtype in (torch.float16, torch.bfloat16) else dtype


class PosteriorAccumulator:
    """Builds a ``PixelPosterior`` one MC sample at a time; memory does not grow with m.

    Statistics are accumulated in ``dtype`` (default: the first sample's dtype, half precision
    promoted to float32), on the first sample's device. ``keep_samples=True`` also keeps every
    sample (for strategies that declare ``needs_samples = True``).
    """

    def __init__(self, *, keep_samples: bool = False, dtype: torch.dtype | None = None) -> None:
        self.keep_samples = keep_samples
        self._dtype = dtype
        self.count = 0
        self._mean: torch.Tensor | None = None  # [..., C, H, W]
        self._m2: torch.Tensor | None = None  # [..., C, H, W] sum of squared deviations
        self._entropy_sum: torch.Tensor | None = None  # [..., H, W] float64
        self._scratch: torch.Tensor | None = None  # [..., C, H, W] workspace, freed by finalize
        self._samples: list[torch.Tensor] = []

    def add(self, p: torch.Tensor) -> None:
        """Fold in one probability map ``p`` of shape ``[..., C, H, W]`` (softmax over dim -3)."""
        if self._mean is None:
            self._start(p)
        elif p.shape != self._mean.shape:
            raise ValueError(f"sample shape {tuple(p.shape)} differs from the first sample's "
                             f"{tuple(self._mean.shape)}")
        p = p.to(device=self._mean.device, dtype=self._mean.dtype)
        if self._scratch is None:
            self._scratch = torch.empty_like(self._mean)
        scratch = self._scratch  # reused for every sample: no per-sample allocation
        self.count += 1
        if self.count == 1:
            self._mean.copy_(p)
        else:  # Welford: M2 += (k-1)/k * d^2 with d = p - mean_{k-1}
            delta = torch.sub(p, self._mean, out=scratch)
            self._mean.add_(delta, alpha=1.0 / self.count)
            self._m2.addcmul_(delta, delta, value=(self.count - 1) / self.count)
        plogp = torch.special.xlogy(p, p, out=scratch)  # entropy(p) = -sum_c p log p
        self._entropy_sum.sub_(plogp.sum(CLASS_DIM))
        if self.keep_samples:
            self._samples.append(p.clone())

    def _start(self, p: torch.Tensor) -> None:
        if p.dim() < 3:
            raise ValueError(f"a sample must be [..., C, H, W], got shape {tuple(p.shape)}")
        dtype = _accumulation_dtype(p, self._dtype)
        self._mean = torch.zeros(p.shape, dtype=dtype, device=p.device)
        self._m2 = torch.zeros_like(self._mean)
        spatial = p.shape[:-3] + p.shape[-2:]
        self._entropy_sum = torch.zeros(spatial, dtype=torch.float64, device=p.device)

    def finalize(self) -> PixelPosterior:
        """The posterior of the samples added so far (the accumulator stays usable)."""
        if self.count == 0:
            raise ValueError("no sample was added to the PosteriorAccumulator")
        mean = self._mean.clone()
        variance = (self._m2 / (self.count - 1) if self.count > 1
                    else torch.zeros_like(self._m2))
        expected = (self._entropy_sum / self.count).to(mean.dtype)
        samples = torch.stack(self._samples) if self.keep_samples else None
        self._scratch = None  # the posterior and the running state are what is kept
        return PixelPosterior(mean=mean, variance=variance, predictive_entropy=entropy(mean),
                              expected_entropy=expected, m=self.count, samples=samples)
