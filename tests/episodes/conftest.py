"""Tiny synthetic datasets and suites for the episode tests (milliseconds to build)."""

from __future__ import annotations

from pathlib import Path

import pytest

from deepnetsbench.data import synthetic_dataset
from deepnetsbench.episodes import EpisodeConfig, build_suite


def make_source(seed: int = 3):
    ds = synthetic_dataset(20, 12, n_train=600, n_test=200, seed=seed)
    ds.name = "synsrc"
    return ds


def make_grey(seed: int = 4):
    ds = synthetic_dataset(5, 10, n_train=100, n_test=40, channels=1, seed=seed)
    ds.name = "syngrey"
    return ds


def intra_config(**kw) -> EpisodeConfig:
    base = dict(kind="episodes-intra", ways=4, shots=3, queries=3, train_episodes=12,
                val_episodes=2, test_episodes=5, pools=(12, 4, 4), image_size=16,
                targets=("convnet4",))
    return EpisodeConfig(**{**base, **kw})


def inter_config(**kw) -> EpisodeConfig:
    base = dict(kind="episodes-inter", ways=4, shots=3, queries=3, train_episodes=8,
                val_episodes=2, inter_episodes=2, pools=(16, 4, 0), image_size=16,
                targets=("convnet4", "resnet18"))
    return EpisodeConfig(**{**base, **kw})


@pytest.fixture(scope="session")
def src():
    return make_source()


@pytest.fixture(scope="session")
def grey():
    return make_grey()


@pytest.fixture
def intra_path(tmp_path: Path, src) -> Path:
    return build_suite(intra_config(), src, out=tmp_path / "suites" / "intra.h5")


@pytest.fixture
def inter_path(tmp_path: Path, src, grey) -> Path:
    return build_suite(inter_config(), src, [grey], out=tmp_path / "suites" / "inter.h5")


@pytest.fixture
def eh():
    """The helpers above, for tests (importing a conftest by name is fragile)."""
    from types import SimpleNamespace

    return SimpleNamespace(make_source=make_source, make_grey=make_grey,
                           intra_config=intra_config, inter_config=inter_config)


@pytest.fixture(autouse=True)
def _single_thread(one_thread):
    """Tiny tensors: every test here runs on one torch thread (tests/conftest.py)."""
    yield
