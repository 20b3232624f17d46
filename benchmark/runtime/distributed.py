"""Several processes (ranks) for one run: the process group, who writes, what is shared.

A run with ``--gpus-per-run G`` runs as G processes started by torchrun (one machine) or as
the G tasks of one Slurm job (submitit). ``init_from_env`` creates the process group itself,
before any mmengine Runner: mmengine 0.10's ``init_dist`` calls ``torch.cuda.set_device`` even
for the gloo backend, which fails on a CPU-only torch. Training then goes through mmengine's own
DDP (``launcher='pytorch'``, see ``ddp_wrapper_cfg``).

Only rank 0 writes files (run folder, tables, cycle-0 cache, logs it owns); every rank reads
them. Without a process group every helper here is the single-process identity.
"""
from __future__ import annotations

import contextlib
import datetime
import os

from benchmark.errors import UsageError

# The other ranks wait in a collective while rank 0 waits for a lock (a run or a cycle-0 entry that
# another job is training, which can take hours at paper scale): torch's default 30 minutes is short.
COLLECTIVE_TIMEOUT = datetime.timedelta(hours=12)


def _dist():
    import torch.distributed as dist

    return dist if dist.is_available() and dist.is_initialized() else None


def rank() -> int:
    dist = _dist()
    return dist.get_rank() if dist else 0


def world_size() -> int:
    dist = _dist()
    return dist.get_world_size() if dist else 1


def is_main() -> bool:
    return rank() == 0


def requested_world_size() -> int:
    """Processes the launcher started for this run (torchrun's or submitit's WORLD_SIZE), else 1."""
    return int(os.environ.get("WORLD_SIZE", "1"))


def init_from_env(device: str) -> None:
    """Join the process group torchrun (or ``export_submitit_env``) described in the environment:
    gloo on the CPU, nccl on GPUs (each rank on GPU LOCAL_RANK). Nothing for a single process."""
    import torch
    import torch.distributed as dist

    if requested_world_size() <= 1 or dist.is_initialized():
        return
    if device.startswith("cuda"):
        torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
    dist.init_process_group(backend="nccl" if device.startswith("cuda") else "gloo", timeout=COLLECTIVE_TIMEOUT)


def export_submitit_env() -> None:
    """In a multi-task submitit job: RANK, WORLD_SIZE, LOCAL_RANK, MASTER_ADDR/PORT from the job,
    every GPU of the node left visible (each rank picks GPU LOCAL_RANK itself)."""
    from submitit import JobEnvironment
    from submitit.helpers import TorchDistributedEnvironment

    if JobEnvironment().num_tasks > 1 and "WORLD_SIZE" not in os.environ:
        TorchDistributedEnvironment().export(set_cuda_visible_devices=False)


def check_world_size(expected: int) -> None:
    """The processes started match ``--gpus-per-run`` (UsageError naming both otherwise)."""
    started = requested_world_size()
    if started != expected:
        raise UsageError(f"--gpus-per-run {expected}, but {started} process(es) were started for this run: start "
                         f"{expected} with `torchrun --nproc_per_node {expected} -m benchmark run ...` (or pass "
                         f"--gpus-per-run {started})")


def shutdown() -> None:
    dist = _dist()
    if dist:
        dist.destroy_process_group()


def barrier() -> None:
    dist = _dist()
    if dist:
        dist.barrier()


@contextlib.contextmanager
def main_first():
    """Rank 0 runs the block first (it may write files, e.g. generate a dataset), then the others."""
    if not is_main():
        barrier()
    try:
        yield
    finally:
        if is_main():
            barrier()


def broadcast(value):
    """Rank 0's ``value`` on every rank (any picklable object)."""
    dist = _dist()
    if not dist:
        return value
    box = [value if is_main() else None]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def gather_dict(local: dict) -> dict:
    """The union of every rank's dict (keys are disjoint), on every rank, in key order."""
    dist = _dist()
    if not dist:
        return local
    parts: list = [None] * dist.get_world_size()
    dist.all_gather_object(parts, local)
    merged = {key: value for part in parts for key, value in part.items()}
    return dict(sorted(merged.items()))


def all_sum(values: list) -> list:
    """Each value summed over the ranks (integers stay integers)."""
    import torch

    dist = _dist()
    if not dist:
        return values
    device = "cuda" if dist.get_backend() == "nccl" else "cpu"  # nccl reduces GPU tensors only
    total = torch.tensor([float(v) for v in values], dtype=torch.float64, device=device)
    dist.all_reduce(total)
    return [type(v)(t) for v, t in zip(values, total.tolist())]


def share_rank0_state(model) -> None:
    """Every rank takes rank 0's parameters and buffers (DDP keeps the parameters equal, but each
    rank's batch-norm statistics come from its own batches)."""
    import torch

    dist = _dist()
    if not dist:
        return
    with torch.no_grad():
        for tensor in model.state_dict().values():
            if tensor.is_contiguous():
                dist.broadcast(tensor, src=0)
            else:  # e.g. a channels-last weight (schedule.channels_last): through a dense copy
                dense = tensor.contiguous()
                dist.broadcast(dense, src=0)
                tensor.copy_(dense)


def my_share(count: int) -> list[int]:
    """The indices of ``range(count)`` this rank handles: every world_size-th, from its rank."""
    return list(range(rank(), count, world_size()))


def ddp_wrapper_cfg(device: str) -> dict:
    """mmengine's DDP wrapper config: on the CPU without device_ids (mmengine would pass
    [LOCAL_RANK], which DDP refuses for a CPU module)."""
    cfg = dict(type="MMDistributedDataParallel", broadcast_buffers=False, find_unused_parameters=False)
    if not device.startswith("cuda"):
        cfg["device_ids"] = None
    return cfg
