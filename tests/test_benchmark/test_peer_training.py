"""The peer training loop of `perf --gpu-check` (benchmark/perf/peer_training.py), on the CPU at tiny
sizes: it computes the harness model's loss on the same batch, trains the same parameters with the
same optimizer, and its loss falls on a learnable toy. Its speed is `perf --gpu-check`'s to say."""
import torch

from benchmark.perf import peer_training
from benchmark.perf.fixtures import load_model
from benchmark.perf.gpu_check import PAPER_MODEL, TINY, paper_preset, synthetic_items

CLASSES = 19


def _sparse(items, keep: int, seed: int = 0):
    """The items with all but ``keep`` pixels per image unlabelled (255): click labels."""
    g = torch.Generator().manual_seed(seed)
    out = []
    for item in items:
        label = torch.from_numpy(item["gt_seg_map"].copy())
        mask = torch.ones(label.numel(), dtype=torch.bool)
        mask[torch.randperm(label.numel(), generator=g)[:keep]] = False
        label.view(-1)[mask] = 255
        out.append(dict(item, gt_seg_map=label.numpy()))
    return out


def _harness_loss(model, images, labels):
    from mmengine.structures import PixelData
    from mmseg.structures import SegDataSample

    samples = []
    for label in labels:
        shape = tuple(label.shape)
        sample = SegDataSample(metainfo=dict(img_shape=shape, ori_shape=shape, pad_shape=shape))
        sample.gt_sem_seg = PixelData(data=label[None].long())
        samples.append(sample)
    data = model.data_preprocessor(dict(inputs=list(images), data_samples=samples), True)
    total, _ = model.parse_losses(model.loss(data["inputs"], data["data_samples"]))
    return total


def test_the_peer_computes_the_harness_models_loss_on_the_same_batch():
    model = load_model(PAPER_MODEL, CLASSES, "cpu").train()
    items = _sparse(synthetic_items(TINY), keep=40)
    images = torch.stack([torch.from_numpy(i["img"].transpose(2, 0, 1).copy()) for i in items[:2]])
    labels = torch.stack([torch.from_numpy(i["gt_seg_map"]) for i in items[:2]])
    torch.manual_seed(0)  # the heads' dropout draws the same masks on both paths
    ours = peer_training.peer_loss(model, images, labels)
    torch.manual_seed(0)
    theirs = _harness_loss(model, images, labels)
    assert float(ours.detach()) > 0
    torch.testing.assert_close(ours, theirs, rtol=1e-5, atol=1e-6)


def test_the_peer_trains_the_same_parameters_with_the_presets_optimizer():
    from mmengine.optim import build_optim_wrapper

    model = load_model(PAPER_MODEL, CLASSES, "cpu")
    optimizer_cfg = dict(paper_preset().schedule.optimizer)
    ours, _ = peer_training.make_optimizer(model, optimizer_cfg, iters=10)
    theirs = build_optim_wrapper(model, dict(type="OptimWrapper", optimizer=dict(optimizer_cfg))).optimizer
    assert type(ours) is type(theirs)
    assert [id(p) for g in ours.param_groups for p in g["params"]] == \
        [id(p) for g in theirs.param_groups for p in g["params"]]
    for key in ("lr", "momentum", "weight_decay"):
        assert ours.param_groups[0][key] == theirs.param_groups[0][key]


def test_the_peers_loss_falls_on_a_learnable_toy():
    """One image whose colours follow its labels, 400 labelled pixels, the embedded default's model
    (the paper model's loop is the same code; on this CPU it is too slow for a test)."""
    torch.manual_seed(0)
    model = load_model("deeplabv3plus_tiny", CLASSES, "cpu")
    loader = peer_training.make_loader(_sparse(synthetic_items(TINY, count=1), keep=400), (64, 128), 2, "cpu", 0)
    losses = []
    optimizer = dict(type="SGD", lr=0.05, momentum=0.9, weight_decay=5e-4)
    peer_training.train(model, loader, optimizer, 6, "cpu", False, losses=losses)
    values = [float(v) for v in losses]
    assert values[-1] < 0.92 * values[0] and values[-1] == min(values), values
