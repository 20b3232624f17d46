"""Shared fixtures for the strategies tests."""
from __future__ import annotations

import sys
from pathlib import Path

import pytest
import torch

REPO_ROOT = Path(__file__).resolve().parents[2]
if str(REPO_ROOT) not in sys.path:  # plain `pytest` without an installed package
    sys.path.insert(0, str(REPO_ROOT))

from benchmark.perf.balent_reference import softmax_samples  # noqa: E402, F401  (the tests' samples)


@pytest.fixture
def generator() -> torch.Generator:
    return torch.Generator().manual_seed(0)


def require_native_kernel() -> None:
    """Skip where the machine has no C++ compiler (or the kernel is switched off); any other reason
    the native kernel is unavailable (it failed to build) is a failure."""
    from strategies.balent import native_kernel

    reason = native_kernel.unavailable_reason()
    if reason is None:
        return
    if reason.startswith(("no C++ compiler", "switched off")):
        pytest.skip(f"BalEnt's native kernel: {reason}")
    pytest.fail(f"BalEnt's native kernel is unavailable: {reason}")


@pytest.fixture(params=["native", "torch"])
def posterior_kernel(request) -> str:
    """Runs a test with BalEnt's posterior term from the native kernel and from the torch kernel."""
    from strategies.balent import kernel

    if request.param == "native":
        require_native_kernel()
        yield "native"
    else:
        with kernel.torch_kernel_only():
            yield "torch"
