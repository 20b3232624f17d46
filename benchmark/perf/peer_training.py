"""The peer: the best plain PyTorch training loop for the paper model, what the harness's training
iteration is measured against (``perf --gpu-check``; issue 27, goal 1).

Same network (the mmseg segmentor the harness builds, its parameters trained in place), same loss
(each head's cross-entropy on labels with 255 = unlabelled, averaged over the labelled pixels,
weighted as the config says: what mmseg's ``CrossEntropyLoss(avg_non_ignore=True)`` computes),
same optimizer (the preset's SGD) and poly schedule as the harness's Runner. What it does that a
fast loop does:

- a DataLoader that keeps the GPU fed: ``workers`` processes cut the crops (uint8, the smallest
  form), pinned memory, ``prefetch_factor`` batches ahead, persistent workers; the host-to-device
  copy is ``non_blocking`` and normalisation (and mmseg's BGR->RGB flip) happens on the GPU,
  batched;
- channels_last activations and weights on a GPU, ``cudnn.benchmark`` (fixed crops);
- bf16 autocast (no loss scaling: bf16 has fp32's range) when ``amp``; BatchNorm stays in fp32 as
  autocast keeps it;
- no host-device synchronisation in the loop (the loss is read once, at the end);
- optionally ``torch.compile`` of the forward and loss.

It runs on the CPU too (tiny sizes; tests/test_benchmark/test_peer_training.py checks that its loss
is the harness model's loss on the same batch, that it trains the same parameters with the same
optimizer, and that its loss falls on a learnable toy).
"""
from __future__ import annotations

import time

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader, Dataset, RandomSampler

IGNORE_INDEX = 255
EPS = torch.finfo(torch.float32).eps  # mmseg's weight_reduce_loss: sum / (labelled pixels + eps)


class CropDataset(Dataset):
    """Random crops (uint8 CHW image, uint8 HW label) of in-memory items (``img`` HWC uint8,
    ``gt_seg_map`` HW uint8), each draw seeded by (seed, index, draw count)."""

    def __init__(self, items: list[dict], crop: tuple[int, int], seed: int = 0):
        self.items, self.crop, self.seed = items, crop, seed

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, index: int):
        item = self.items[index % len(self.items)]
        image, label = item["img"], item["gt_seg_map"]
        rng = np.random.default_rng([self.seed, index, int(torch.randint(1 << 30, ()).item())])
        ch, cw = self.crop
        y = int(rng.integers(0, max(image.shape[0] - ch, 0) + 1))
        x = int(rng.integers(0, max(image.shape[1] - cw, 0) + 1))
        img = np.ascontiguousarray(image[y:y + ch, x:x + cw].transpose(2, 0, 1))
        return torch.from_numpy(img), torch.from_numpy(np.ascontiguousarray(label[y:y + ch, x:x + cw]))


def make_loader(items: list[dict], crop: tuple[int, int], batch: int, device, workers: int,
                seed: int = 0) -> DataLoader:
    """An endless loader of crops: ``workers`` processes, pinned memory on a GPU, 4 batches ahead each."""
    on_gpu = torch.device(device).type == "cuda"
    options = dict(num_workers=workers, pin_memory=on_gpu)
    if workers > 0:
        options.update(prefetch_factor=4, persistent_workers=True)
    sampler = RandomSampler(range(len(items)), replacement=True, num_samples=1 << 30,
                            generator=torch.Generator().manual_seed(seed))
    return DataLoader(CropDataset(items, crop, seed), batch_size=batch, sampler=sampler, drop_last=True, **options)


def normalise(model, images: torch.Tensor) -> torch.Tensor:
    """uint8 ``[B, 3, H, W]`` on the device -> the float input mmseg's data preprocessor makes
    (BGR->RGB when it flips, then (x - mean) / std), in channels_last."""
    pre = model.data_preprocessor
    x = images.float()
    if getattr(pre, "channel_conversion", getattr(pre, "_channel_conversion", False)):
        x = x.flip(1)
    x = (x - pre.mean) / pre.std
    return x.contiguous(memory_format=channels_last(x.device))


def channels_last(device) -> torch.memory_format:
    """channels_last on a GPU (cuDNN's fast layout with bf16); the default layout on a CPU, where
    mmseg's depthwise convolutions run far slower in channels_last."""
    return torch.channels_last if torch.device(device).type == "cuda" else torch.contiguous_format


def _heads(model) -> list:
    heads = [model.decode_head]
    if getattr(model, "auxiliary_head", None) is not None:
        heads += list(model.auxiliary_head) if isinstance(model.auxiliary_head, torch.nn.ModuleList) \
            else [model.auxiliary_head]
    return heads


def head_loss(head, features, labels: torch.Tensor) -> torch.Tensor:
    """One head's weighted cross-entropy over its labelled pixels (logits resized to the labels)."""
    logits = head.forward(features)
    logits = F.interpolate(logits, size=labels.shape[-2:], mode="bilinear", align_corners=head.align_corners)
    losses = head.loss_decode if isinstance(head.loss_decode, torch.nn.ModuleList) else [head.loss_decode]
    total = logits.new_zeros((), dtype=torch.float32)
    labelled = (labels != head.ignore_index).sum()
    for loss in losses:
        summed = F.cross_entropy(logits.float(), labels, ignore_index=head.ignore_index, reduction="sum")
        total = total + loss.loss_weight * summed / (labelled + EPS)
    return total


def peer_loss(model, images: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """The training loss of ``model`` on uint8 images ``[B, 3, H, W]`` and labels ``[B, H, W]``
    (255 = unlabelled), both on the model's device: the sum of every head's loss."""
    features = model.extract_feat(normalise(model, images))
    labels = labels.long()
    return sum(head_loss(head, features, labels) for head in _heads(model))


def make_optimizer(model, optimizer_cfg: dict, iters: int, power: float = 0.9):
    """The preset's optimizer over every parameter (as mmengine's default constructor builds it)
    and the poly schedule of the harness's Runner (eta_min 0)."""
    cfg = dict(optimizer_cfg)
    kind = cfg.pop("type")
    optimizer = getattr(torch.optim, kind)(model.parameters(), **cfg)
    schedule = torch.optim.lr_scheduler.PolynomialLR(optimizer, total_iters=iters, power=power)
    return optimizer, schedule


def train(model, loader, optimizer_cfg: dict, iters: int, device, amp: bool, compile_model: bool = False,
          losses: list | None = None) -> float:
    """``iters`` iterations of the peer loop; wall seconds (the device synchronised at the end).
    ``losses``: a list that receives each iteration's loss tensor (read after the loop)."""
    on_gpu = torch.device(device).type == "cuda"
    if on_gpu:
        torch.backends.cudnn.benchmark = True
    model.to(memory_format=channels_last(device)).train()
    optimizer, schedule = make_optimizer(model, optimizer_cfg, iters)
    step_loss = torch.compile(peer_loss) if compile_model else peer_loss
    batches = iter(loader)
    start = time.perf_counter()
    for _ in range(iters):
        images, labels = next(batches)
        images = images.to(device, non_blocking=True)
        labels = labels.to(device, non_blocking=True)
        with torch.autocast(torch.device(device).type, dtype=torch.bfloat16, enabled=amp):
            loss = step_loss(model, images, labels)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        schedule.step()
        if losses is not None:
            losses.append(loss.detach())
    if on_gpu:
        torch.cuda.synchronize(device)
    return time.perf_counter() - start


def peer_rate(make_model, items: list[dict], crop: tuple[int, int], batch: int, iters: int, device,
              amp: bool, workers: int, optimizer_cfg: dict, compile_model: bool = False, warm_up: int = 3) -> dict:
    """Iterations/s of the peer: a fresh model, a warm-up of ``warm_up`` iterations (cuDNN's
    search, the workers' start, a compile), then ``iters`` timed; and the peak GPU memory (GiB,
    None on a CPU)."""
    model = make_model()
    loader = make_loader(items, crop, batch, device, workers)
    on_gpu = torch.device(device).type == "cuda"
    train(model, loader, optimizer_cfg, warm_up, device, amp, compile_model)
    if on_gpu:
        torch.cuda.reset_peak_memory_stats(device)
    seconds = train(model, loader, optimizer_cfg, iters, device, amp, compile_model)
    peak = torch.cuda.max_memory_allocated(device) / 2**30 if on_gpu else None
    return dict(iterations_per_second=iters / seconds, peak_gib=peak, amp=amp, workers=workers,
                compiled=compile_model)
