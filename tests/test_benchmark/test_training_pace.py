"""What keeps the harness's training iteration free of host-device synchronisations
(benchmark/model/training_pace.py): the deferred runtime-info hook gives the message hub (so the
training log) the same values in the same order as mmengine's, read at the logging iterations
only; and the optim wrapper of --amp."""
from types import SimpleNamespace

import torch
from mmengine.hooks import RuntimeInfoHook
from mmengine.logging import MessageHub

from benchmark.model.training_pace import DeferredRuntimeInfoHook, amp_wrapper


def _drive(hook, iters: int, seen: list) -> MessageHub:
    hub = MessageHub(f"pace-{id(hook)}")
    runner = SimpleNamespace(message_hub=hub, iter=0, max_iters=iters)
    for i in range(iters):
        runner.iter = i
        hook.after_train_iter(runner, i, None, dict(loss=torch.tensor(float(i)), acc=torch.tensor([2.0 * i])))
        seen.append(len(hub.log_scalars["train/loss"].data[0]) if "train/loss" in hub.log_scalars else 0)
    return hub


def test_the_message_hub_gets_mmengines_values_at_the_logging_iterations_only():
    deferred_seen, plain_seen = [], []
    deferred = _drive(DeferredRuntimeInfoHook(interval=4), 10, deferred_seen)
    plain = _drive(RuntimeInfoHook(), 10, plain_seen)
    for key in ("train/loss", "train/acc"):
        assert list(deferred.log_scalars[key].data[0]) == list(plain.log_scalars[key].data[0])
    assert plain_seen == list(range(1, 11))  # mmengine: one read (a sync on a GPU) per iteration
    assert deferred_seen == [0, 0, 0, 4, 4, 4, 4, 8, 8, 10]  # at iterations 4, 8 and the last


def test_amp_on_the_cpu_is_mmengines_wrapper():
    assert amp_wrapper("cpu") == "AmpOptimWrapper"  # bf16 without loss scaling on a GPU that has it
