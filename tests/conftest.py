"""Shared test set-up: small thread counts (CI has 2 cores) and the ../shared data folder."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

torch.set_num_threads(2)

#: ../shared/data beside the checkout, or $DEEPNETS_BENCH_SHARED_DATA (a worktree elsewhere).
SHARED_DATA = Path(os.environ.get("DEEPNETS_BENCH_SHARED_DATA")
                   or Path(__file__).resolve().parents[1].parent / "shared" / "data")


@pytest.fixture(scope="session")
def shared_data() -> Path:
    if not SHARED_DATA.is_dir():
        pytest.skip(f"real datasets not available ({SHARED_DATA} is absent)")
    return SHARED_DATA


@pytest.fixture()
def one_thread():
    """One torch thread: tiny tensors gain nothing from a second one, and on a shared 2-core
    machine every multi-threaded op waits for a busy core."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="session")
def shared_archive(shared_data):
    """shared_archive("cifar10") -> the path of ../shared/data/cifar10.tar.gz (or skip)."""

    def find(name: str) -> Path:
        path = shared_data / f"{name}.tar.gz"
        if not path.is_file():
            pytest.skip(f"{path} is absent")
        return path

    return find


@pytest.fixture(scope="session")
def shared_cifar10_root(tmp_path_factory):
    """The data root that ``shared_cifar10`` decodes into."""
    return tmp_path_factory.mktemp("cifar-root")


@pytest.fixture(scope="session")
def shared_cifar10(shared_archive, shared_cifar10_root):
    """The real CIFAR-10 archive, decoded once per test session into a temporary cache."""
    from deepnetsbench.data import load_archive

    return load_archive(shared_archive("cifar10"), root=shared_cifar10_root, progress=False)
