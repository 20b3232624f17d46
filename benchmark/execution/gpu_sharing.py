"""`run --workers N` on one GPU: several runs in separate processes sharing the device.

A small model (the embedded default's) leaves a large GPU idle: its kernels are short, and one
process spends most of an iteration in Python and launches. Several processes, each with its own
CUDA context, overlap their kernels on the device (the GPU time-slices the contexts; NVIDIA's MPS
would let kernels of different processes run concurrently, which the harness does not start
itself: an administrator's choice, see the README). The runs are independent and each is
seeded, so the tables are those of ``--workers 1``.

How many (``auto_workers``; the rule, stated once):

    N = min(runs, CPU cores, floor(MEMORY_SHARE x free / (HEADROOM x peak + CONTEXT_BYTES)))

with ``free`` the device's free memory now (``torch.cuda.mem_get_info``), ``peak`` the peak memory
one run's cycle allocates (``torch.cuda.max_memory_allocated`` of a probe: a few training
iterations and one MC inference batch of the plan's first run, in a process of its own, so this
process holds no CUDA context), ``HEADROOM`` for what the allocator caches beyond the peak
(fragmentation, cuDNN's workspaces), ``CONTEXT_BYTES`` for each process's CUDA context and
libraries, and ``MEMORY_SHARE`` for what other users of the GPU may take meanwhile. At least 1.
Each worker then caps its own allocations at ``memory_fraction`` of the device
(``torch.cuda.set_per_process_memory_fraction``), so that a run that outgrows its share fails in
its own process (one run marked failed, resumable) instead of starving the others.

Every function here that does not touch a GPU is pure (numbers in, numbers out) and tested on
the CPU (tests/test_benchmark/test_gpu_sharing.py); the two that do (``device_memory``,
``probe_peak_bytes``) are thin and run by ``perf --gpu-check``.
"""
from __future__ import annotations

import math
import tempfile
from pathlib import Path

GIB = 1 << 30
MEMORY_SHARE = 0.9     # of the free memory, for the workers together
HEADROOM = 1.25        # reserved by the allocator / allocated at peak
CONTEXT_BYTES = GIB // 2  # a process's CUDA context, cuBLAS/cuDNN handles and workspaces
PROBE_ITERS = 3        # training iterations of the probe (the first ones allocate the most)


def workers_for_memory(free_bytes: int, peak_bytes: int, runs: int, cores: int) -> int:
    """The rule of this module's docstring: how many runs fit on the device at once."""
    per_worker = HEADROOM * max(peak_bytes, 0) + CONTEXT_BYTES
    fit = math.floor(MEMORY_SHARE * max(free_bytes, 0) / per_worker)
    return max(1, min(runs, cores, fit))


def memory_fraction(workers: int, free_bytes: int, total_bytes: int) -> float:
    """The share of the device's memory each of ``workers`` processes may allocate: an equal part
    of ``MEMORY_SHARE`` of the free memory, as a fraction of the total (what
    ``set_per_process_memory_fraction`` takes), at most 1."""
    if total_bytes <= 0 or workers < 1:
        return 1.0
    return min(1.0, MEMORY_SHARE * free_bytes / workers / total_bytes)


def explain(workers: int, free_bytes: int, total_bytes: int, peak_bytes: int, runs: int, cores: int) -> str:
    """One line for the console: N and why."""
    return (f"--workers auto on the GPU: {workers} (peak of one run's cycle {peak_bytes / GIB:.2f} GiB, "
            f"x {HEADROOM} + {CONTEXT_BYTES / GIB:.1f} GiB per process; {MEMORY_SHARE:.0%} of "
            f"{free_bytes / GIB:.1f} GiB free of {total_bytes / GIB:.1f}; {runs} runs, {cores} cores)")


def device_index(device: str) -> int:
    """The CUDA device index of ``cuda`` / ``cuda:N`` (0 for plain ``cuda``)."""
    import torch

    index = torch.device(device).index
    return 0 if index is None else int(index)


def device_memory(device: str) -> tuple[int, int]:
    """(free, total) bytes of the device now."""
    import torch

    return tuple(int(v) for v in torch.cuda.mem_get_info(device_index(device)))


def limit_this_process(device: str, fraction: float | None) -> None:
    """In a worker: cap this process's allocations on ``device`` at ``fraction`` of its memory."""
    import torch

    if fraction is not None and fraction < 1.0 and torch.cuda.is_available():
        torch.cuda.set_per_process_memory_fraction(fraction, device_index(device))


def _probe(run) -> tuple[int, int, int]:
    """In a fresh process: the device's (free, total) bytes before anything is allocated, then
    ``PROBE_ITERS`` training iterations of ``run``'s model on random clicks and one MC inference
    batch on its device; (peak bytes allocated, free, total); zeros on the CPU."""
    import mmseg.utils
    import torch

    from benchmark.config.seeds import derive_seed
    from benchmark.cycle.acquisition import mask_generator
    from benchmark.data.label_store import GroundTruthOracle, LabelStore, seed_random_pixels
    from benchmark.execution.preflight import PlanResources
    from benchmark.model.mc_dropout import mc_posteriors
    from benchmark.model.segmentor import train_one_cycle
    from benchmark.model.training import fresh_model

    mmseg.utils.register_all_modules(init_default_scope=True)
    on_gpu = torch.device(run.device).type == "cuda"
    free, total = device_memory(run.device) if on_gpu else (0, 0)  # this process's context counted as used
    resources = PlanResources()
    preset, data = resources.preset(run), resources.data(run)
    model = fresh_model(run, preset, data)
    store = LabelStore(data.shapes)
    picks = seed_random_pixels(data.shapes, max(run.pixels_per_image, 1), torch.Generator().manual_seed(0))
    store.add(0, picks, GroundTruthOracle(data.ground_truth).answer(picks))
    loader = data.train_loader(store, run.batch_size, derive_seed(run.seed, 0, "sampler"))
    with tempfile.TemporaryDirectory(prefix="gpu-probe-") as work:
        train_one_cycle(model, loader, preset.schedule, PROBE_ITERS, Path(work), 0, run.amp)
    model.eval()
    with torch.no_grad():
        batch = next(iter(data.pool_loader(run.batch_size)))
        ids = range(len(batch["data_samples"]))
        mc_posteriors(model, batch, run.mc_samples, [mask_generator(run, 0, i) for i in ids])
    if not on_gpu:
        return 0, free, total
    torch.cuda.synchronize(run.device)
    return int(torch.cuda.max_memory_allocated(run.device)), free, total


def probe_peak_bytes(run) -> tuple[int, int, int]:
    """(peak GPU bytes one cycle of ``run`` allocates, the device's free and total bytes), measured
    in a process of its own (this one stays without a CUDA context)."""
    from concurrent.futures import ProcessPoolExecutor
    from multiprocessing import get_context

    with ProcessPoolExecutor(1, mp_context=get_context("spawn")) as pool:
        return pool.submit(_probe, run).result()


def auto_workers(runs, device: str, cores: int, console=None) -> tuple[int, float | None]:
    """``--workers auto`` on a GPU: (N, each worker's memory fraction) by the module's rule, from
    a probe of the plan's first run and the device's free memory now."""
    if len(runs) <= 1:
        return 1, None
    peak, free, total = probe_peak_bytes(runs[0])
    workers = workers_for_memory(free, peak, len(runs), cores)
    if console is not None:
        console.print(explain(workers, free, total, peak, len(runs), cores))
    return workers, memory_fraction(workers, free, total) if workers > 1 else None
