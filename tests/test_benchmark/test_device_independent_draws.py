"""Same seed, same clicks, on any device: every random draw of a run comes from a CPU generator
and is made on the CPU, whatever the run's device, then moved (benchmark/config/seeds.py,
strategies/rng.py, benchmark/model/mc_dropout.py).

Without a GPU the numbers cannot be compared with CUDA's here (``perf --gpu-check`` does that on
a GPU: cycle-0 clicks, a random acquisition, every strategy's scores). What is checked instead:
the harness's generators for a run on "cuda" (or any device) are the CPU generators of the same
run on the CPU, in the same state; every draw of an acquisition is made by an explicit CPU
generator on the CPU (recorded as torch runs it); and for inputs on another device ("meta": shapes
without data) the strategies and the dropout masks draw the same numbers, on the CPU, as for
inputs on the CPU.
"""
import re
from dataclasses import replace
from pathlib import Path

import pytest
import torch
from torch.overrides import TorchFunctionMode

from benchmark.perf.fixtures import acquisition_spec

REPO = Path(__file__).resolve().parents[2]
RANDOM_OPS = {"rand", "rand_like", "randn", "randn_like", "randint", "randint_like", "randperm", "bernoulli",
              "bernoulli_", "normal", "normal_", "uniform_", "multinomial", "random_", "exponential_",
              "geometric_", "cauchy_", "log_normal_", "poisson"}
DROPOUT_OPS = {"dropout", "dropout1d", "dropout2d", "dropout3d", "alpha_dropout", "feature_alpha_dropout"}
DEVICES = ["cuda", "cuda:1", torch.device("cuda", 0), "meta"]


class RandomDraws(TorchFunctionMode):
    """Records every random draw torch makes inside it: the op, its generator and its result."""

    def __init__(self):
        super().__init__()
        self.draws, self.global_draws = [], []

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        out = func(*args, **kwargs)
        name = getattr(func, "__name__", str(func))
        if name in RANDOM_OPS:
            generator = kwargs.get("generator")
            if generator is None:
                self.global_draws.append(name)
            else:
                self.draws.append((name, generator.device, out.detach().clone()))
        elif name in DROPOUT_OPS:
            training = kwargs.get("training", args[2] if len(args) > 2 else True)
            if training:  # a dropout layer in training mode draws from torch's global RNG
                self.global_draws.append(name)
        return out


def test_the_harness_makes_cpu_generators_whatever_the_run_device():
    from benchmark.cycle.acquisition import mask_generator, record_generator, selection_generator

    cpu = replace(acquisition_spec("cpu", 3, 2), strategy="pbald")
    for device in DEVICES:  # no CUDA needed: the device is not used to make them
        spec = replace(cpu, device=device)
        for make in (selection_generator, mask_generator, record_generator):
            g, reference = make(spec, 2, 7), make(cpu, 2, 7)
            assert g.device == torch.device("cpu"), (make.__name__, device)
            assert torch.equal(g.get_state(), reference.get_state()), (make.__name__, device)


def test_cycle_zero_clicks_do_not_depend_on_the_run_device():
    import numpy as np

    from benchmark.cycle.loop import cycle0_store
    from benchmark.data.label_store import GroundTruthOracle
    from benchmark.perf.fixtures import RandomPool

    pool = RandomPool(3, 12, 16)
    oracle = GroundTruthOracle(lambda i: np.full((12, 16), i, dtype=np.uint8))
    frames = [cycle0_store(acquisition_spec(device, 3, 2), pool, oracle).frame for device in ["cpu", *DEVICES]]
    assert len(frames[0]) == 3 * 5 and all(frame.equals(frames[0]) for frame in frames)


@pytest.mark.parametrize("name", ["random", "pbald"])
def test_strategies_draw_the_same_numbers_on_the_cpu_for_a_posterior_on_any_device(name):
    from strategies import PixelPosterior, build_strategy
    from strategies.testing import mc_samples

    post = PixelPosterior.from_samples(mc_samples(3, (5, 8, 8), seed=1).float())
    draws = {}
    for device in ("cpu", "meta"):
        moved = PixelPosterior(mean=post.mean.to(device), variance=post.variance.to(device),
                               predictive_entropy=post.predictive_entropy.to(device),
                               expected_entropy=post.expected_entropy.to(device), m=post.m)
        with RandomDraws() as seen:
            scores = build_strategy(name).score(moved, generator=torch.Generator().manual_seed(5))
        assert scores.device.type == device and not seen.global_draws
        draws[device] = seen.draws
    assert len(draws["cpu"]) == len(draws["meta"]) >= 1
    for (op, g_device, numbers), (op_cpu, _, reference) in zip(draws["meta"], draws["cpu"]):
        assert op == op_cpu and g_device.type == "cpu" and numbers.device.type == "cpu"
        assert torch.equal(numbers, reference)


def test_the_random_helpers_draw_on_the_cpu_for_any_target_device():
    from strategies.rng import gumbel, permutation, uniform

    for draw in (lambda d: uniform((4, 5), torch.Generator().manual_seed(3), device=d),
                 lambda d: gumbel((4, 5), torch.Generator().manual_seed(3), device=d),
                 lambda d: permutation(9, torch.Generator().manual_seed(3), device=d)):
        with RandomDraws() as on_cpu:
            draw("cpu")
        with RandomDraws() as on_meta:
            assert draw("meta").device.type == "meta"
        assert [d[0] for d in on_meta.draws] == [d[0] for d in on_cpu.draws]
        assert all(torch.equal(a[2], b[2]) and a[2].device.type == "cpu"
                   for a, b in zip(on_meta.draws, on_cpu.draws))


@pytest.mark.parametrize("mask", ["channel", "element"])
def test_dropout_masks_draw_the_same_numbers_on_the_cpu_for_features_on_any_device(mask):
    from benchmark.model.mc_dropout import dropout_masks

    feat = torch.zeros(2, 6, 4, 5)
    drawn = {}
    for device in ("cpu", "meta"):
        generators = [torch.Generator().manual_seed(s) for s in (1, 2)]
        with RandomDraws() as seen:
            masks = dropout_masks(feat.to(device), 0.5, generators, mask)
        assert masks.device.type == device and not seen.global_draws
        drawn[device] = [numbers for _, g_device, numbers in seen.draws if g_device.type == "cpu"]
        assert len(drawn[device]) == len(seen.draws) == 2
    assert all(torch.equal(a, b) for a, b in zip(drawn["meta"], drawn["cpu"]))


def test_an_acquisition_draws_only_from_explicit_cpu_generators():
    """MC masks, strategy noise, tie-breaks of every selector and the sampled record of a real
    acquisition, and the full-network MC reference: no draw from torch's global RNG, none from a
    generator on another device."""
    from benchmark.cycle.acquisition import acquire, mask_generator
    from benchmark.data.label_store import LabelStore
    from benchmark.model.mc_dropout import mc_posteriors
    from benchmark.perf.fixtures import RandomPool, load_model
    from strategies import build_selector, build_strategy

    model = load_model("deeplabv3plus_tiny", 5, "cpu")
    pool = RandomPool(3, 24, 32)
    spec = replace(acquisition_spec("cpu", 2, 2), record_pixels=50)
    with RandomDraws() as seen:
        for strategy in ("random", "pbald", "balent"):
            for selector in ("topn", "pixelpick", "spread"):
                acquire(model, pool, LabelStore(pool.shapes), build_strategy(strategy), build_selector(selector),
                        replace(spec, strategy=strategy, selection=selector), 1)
        mc_posteriors(model, pool.batch(range(2)), 2, [mask_generator(spec, 1, i) for i in range(2)],
                      full_network=True)
    assert not seen.global_draws
    ops = {op for op, _, _ in seen.draws}
    assert {"rand", "randperm"} <= ops  # masks and noise; tie-breaks and the record's sample
    assert all(g_device.type == "cpu" and numbers.device.type == "cpu" for _, g_device, numbers in seen.draws)


def test_no_module_makes_a_generator_on_a_device():
    """Generators are made in one place (benchmark/config/seeds.py), on the CPU; the perf suite
    follows the harness. A ``torch.Generator(device=...)`` anywhere would bring the device's
    stream back."""
    offenders = []
    for folder in ("benchmark", "strategies"):
        for path in sorted((REPO / folder).rglob("*.py")):
            for number, line in enumerate(path.read_text().splitlines(), 1):
                if re.search(r"Generator\(\s*device", line):
                    offenders.append(f"{path.relative_to(REPO)}:{number}: {line.strip()}")
    assert not offenders, offenders
