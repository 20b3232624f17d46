"""What keeps mmengine's training iteration at the GPU's pace: no host-device synchronisation per
iteration, and bf16 autocast without loss scaling where the GPU has bf16.

- mmengine's ``RuntimeInfoHook`` puts every loss of every iteration into the message hub with
  ``.item()``: one host-device synchronisation per iteration (five reads), so the CPU cannot queue
  iteration t + 1 while the GPU runs t, and every data-loading or Python stall adds to the GPU's
  idle time. ``DeferredRuntimeInfoHook`` keeps the detached loss tensors of the iterations between
  two log lines on the device and hands them to the message hub, in order, at the iteration the
  ``LoggerHook`` logs (and the last): the logged values are the same numbers, read once per
  logging interval instead of every iteration.
- mmengine's ``AmpOptimWrapper`` is fp16 with a dynamic ``GradScaler``, whose inf check after
  every step is another synchronisation. bf16 has fp32's exponent range and needs no loss
  scaling: ``Bf16OptimWrapper`` is mmengine's plain ``OptimWrapper`` inside
  ``torch.autocast(dtype=torch.bfloat16)``. ``amp_wrapper(device)`` picks it where the GPU
  supports bf16 (Ampere and newer), else mmengine's fp16 wrapper.

On the CPU nothing changes in the arithmetic: the same losses reach the same optimizer, so the
tables stay byte-identical.
"""
from __future__ import annotations

from contextlib import contextmanager

import torch
from mmengine.hooks import RuntimeInfoHook
from mmengine.optim import OptimWrapper
from mmengine.registry import HOOKS, OPTIM_WRAPPERS


@HOOKS.register_module(force=True)
class DeferredRuntimeInfoHook(RuntimeInfoHook):
    """mmengine's RuntimeInfoHook, with the per-iteration losses read at the logging iterations only."""

    def __init__(self, interval: int = 1, **kwargs):
        super().__init__(**kwargs)
        self.interval = max(int(interval), 1)
        self._pending: list[dict] = []

    def after_train_iter(self, runner, batch_idx: int, data_batch=None, outputs=None) -> None:
        if outputs is not None:
            self._pending.append({k: v.detach() if isinstance(v, torch.Tensor) else v for k, v in outputs.items()})
        if self.every_n_train_iters(runner, self.interval) or self.is_last_train_iter(runner):
            self.flush(runner)

    def flush(self, runner) -> None:
        """Every pending iteration's values into the message hub, in order (one synchronisation)."""
        pending, self._pending = self._pending, []
        for outputs in pending:
            super().after_train_iter(runner, 0, None, outputs)

    def after_train(self, runner) -> None:
        self.flush(runner)
        super().after_train(runner)


@OPTIM_WRAPPERS.register_module(force=True)
class Bf16OptimWrapper(OptimWrapper):
    """mmengine's OptimWrapper with its forward and loss under bf16 autocast (no loss scaling)."""

    @contextmanager
    def optim_context(self, model):
        with super().optim_context(model), torch.autocast("cuda", dtype=torch.bfloat16):
            yield


def bf16_supported(device: str) -> bool:
    return torch.device(device).type == "cuda" and torch.cuda.is_available() and torch.cuda.is_bf16_supported()


def amp_wrapper(device: str) -> str:
    """The optim wrapper of ``--amp`` on ``device``: bf16 without loss scaling where supported,
    else mmengine's fp16 AmpOptimWrapper."""
    return "Bf16OptimWrapper" if bf16_supported(device) else "AmpOptimWrapper"
