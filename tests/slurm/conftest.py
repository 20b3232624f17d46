"""The Slurm these tests launch into: a private single-node one (tests/fixtures/slurm.py),
started once per test session when the first of them needs it and stopped at the end; where it
cannot be started, every test here is skipped with the reason."""
import pytest

from tests.fixtures.slurm import SlurmUnavailable, start_local_slurm


@pytest.fixture(scope="session")
def slurm():
    try:
        cluster = start_local_slurm()
    except SlurmUnavailable as why:
        pytest.skip(f"no Slurm to test against: {why}")
    print(f"\nSlurm for the tests: {cluster.version} in {cluster.root}")
    try:
        yield cluster
    finally:
        cluster.stop()
