"""Running MC statistics straight from logits: mean, unbiased variance, predictive and expected
entropy of softmax(z) over MC samples, with full-resolution buffers allocated once per batch."""
from __future__ import annotations

import torch

from strategies import PixelPosterior


class SoftmaxStatistics:
    """Mean, unbiased variance, predictive and expected entropy of softmax(z) over MC samples.

    The same statistics as ``strategies.PosteriorAccumulator`` (Welford in float32, entropies
    summed in float64), computed from the logits: the per-sample entropy is
    ``sum_c p_c (max z - z_c) - log max p`` (two non-negative terms, no log of p per class), and
    every full-resolution buffer is allocated once and reused for all m samples.
    """

    def __init__(self, *, keep_samples: bool = False) -> None:
        self.keep_samples = keep_samples
        self.count = 0
        self.samples: list[torch.Tensor] = []
        self._posteriors: list[PixelPosterior] | None = None

    def _start(self, z: torch.Tensor) -> None:
        dtype = torch.float32 if z.dtype in (torch.float16, torch.bfloat16) else z.dtype
        self.mean = torch.empty(z.shape, dtype=dtype, device=z.device)  # [B, C, H, W]
        self.m2 = torch.zeros_like(self.mean)
        self.p = torch.empty_like(self.mean)
        self.entropy_sum = torch.zeros(z.shape[:1] + z.shape[2:], dtype=torch.float64,
                                       device=z.device)  # [B, H, W]

    def add_logits(self, z: torch.Tensor) -> None:
        """Fold in softmax(z) for logits ``z`` [B, C, H, W]; ``z`` is used as scratch space."""
        if self._posteriors is not None:
            raise RuntimeError("SoftmaxStatistics was finalized: its buffers now hold the posteriors; "
                               "start a new one for more samples")
        if self.count == 0:
            self._start(z)
        z = z.to(self.mean.dtype)
        p = torch.softmax(z, dim=1, out=self.p)
        top = z.amax(dim=1, keepdim=True)  # [B, 1, H, W]
        sample_entropy = torch.sub(top, z, out=z).mul_(p).sum(dim=1)  # sum_c p_c (max z - z_c)
        sample_entropy.sub_(p.amax(dim=1).log_())
        self.entropy_sum.add_(sample_entropy)
        self.count += 1
        if self.count == 1:
            self.mean.copy_(p)
        else:  # Welford, as PosteriorAccumulator: M2 += (k-1)/k d^2 with d = p - mean_{k-1}
            delta = torch.sub(p, self.mean, out=z)
            self.mean.add_(delta, alpha=1.0 / self.count)
            self.m2.addcmul_(delta, delta, value=(self.count - 1) / self.count)
        if self.keep_samples:
            self.samples.append(p.clone())

    def finalize(self) -> list[PixelPosterior]:
        """One ``PixelPosterior`` per image (views of the batch tensors, no copy).

        The variance is computed in place over the running sums, so the statistics are closed:
        adding a sample afterwards raises, and calling ``finalize`` again returns the same
        posteriors (never a variance divided twice).
        """
        if self._posteriors is not None:
            return self._posteriors
        if self.count == 0:
            raise ValueError("no sample was added")
        variance = self.m2.div_(self.count - 1) if self.count > 1 else self.m2
        expected = (self.entropy_sum / self.count).to(self.mean.dtype)
        tiny = torch.finfo(self.mean.dtype).tiny  # x log x as xlogy gives it (0 at 0), ~8x faster
        predictive = self.mean.clamp(min=tiny).log_().mul_(self.mean).sum(dim=1).neg_()
        samples = torch.stack(self.samples, dim=1) if self.keep_samples else None  # [B, m, ...]
        self._posteriors = [PixelPosterior(mean=self.mean[i], variance=variance[i],
                                           predictive_entropy=predictive[i], expected_entropy=expected[i],
                                           m=self.count, samples=None if samples is None else samples[i])
                            for i in range(self.mean.shape[0])]
        self.samples = []
        return self._posteriors
