"""The real archives in ../shared/data load with the published sizes (skipped where absent).

CIFAR-10 is decoded once per test session (conftest ``shared_cifar10``) and reused."""

from __future__ import annotations

import time

import numpy as np
import pytest

from deepnetsbench.data import DATASETS, load_archive, load_dataset

pytestmark = pytest.mark.shared



@pytest.fixture(scope="module")
def cifar10(shared_cifar10):
    return shared_cifar10


def test_cifar10(cifar10):
    ds = cifar10
    assert ds.name == "cifar10"
    assert ds.train_x.shape == (50_000, 32, 32, 3) and ds.test_x.shape == (10_000, 32, 32, 3)
    assert ds.classes[:3] == ["airplane", "automobile", "bird"] and ds.num_classes == 10
    assert np.bincount(ds.train_y).tolist() == [5000] * 10
    assert np.bincount(ds.test_y).tolist() == [1000] * 10
    # the decoded pixels have (close to) the published channel means
    measured = ds.train_x[:5000].reshape(-1, 3).mean(0) / 255
    assert np.allclose(measured, DATASETS["cifar10"].mean, atol=0.01)
    x, y = ds.test_tensors(limit=256)
    assert x.shape == (256, 3, 32, 32) and abs(float(x.mean())) < 0.2
    assert len(set(y.tolist())) == 10  # prefixes mix classes


def test_cifar10_cache_is_reused(cifar10, shared_cifar10_root):
    t = time.perf_counter()
    again = load_dataset("cifar10", root=shared_cifar10_root)
    elapsed = time.perf_counter() - t
    assert again.content_sha256 == cifar10.content_sha256
    assert np.array_equal(again.test_x, cifar10.test_x)
    print(f"cached cifar10 load: {elapsed:.2f} s")  # reported, not asserted


@pytest.mark.parametrize("name, classes, size, channels, first_name", [
    ("mnist", 10, 28, 1, "0"),
    ("fashion-mnist", 10, 28, 1, "T-shirt/top"),
    ("tinyimagenet32", 200, 32, 3, None),
])
def test_other_archives(shared_archive, tmp_path, name, classes, size, channels, first_name):
    ds = load_archive(shared_archive(name), root=tmp_path, progress=False)
    info = DATASETS[ds.name]
    assert (len(ds.train_x), len(ds.test_x)) == (info.n_train, info.n_test)
    assert ds.num_classes == classes == info.num_classes
    assert ds.train_x.shape[1:] == (size, size, channels)
    assert np.bincount(ds.test_y, minlength=classes).min() > 0
    if first_name:
        assert ds.class_names[0] == first_name
    if name == "tinyimagenet32":
        assert ds.name == "tinyimagenet" and ds.classes[0].startswith("n0")
        assert ds.class_names != ds.classes  # human-readable names were found
