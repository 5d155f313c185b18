"""synthetic_dataset: deterministic, balanced, and learnable."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from deepnetsbench.data import synthetic_dataset


def test_deterministic_and_shaped():
    a = synthetic_dataset(num_classes=5, image_size=16, n_train=50, n_test=20, seed=3)
    b = synthetic_dataset(num_classes=5, image_size=16, n_train=50, n_test=20, seed=3)
    assert a.content_sha256 == b.content_sha256
    assert a.content_sha256 != synthetic_dataset(5, 16, 50, 20, seed=4).content_sha256
    assert a.train_x.shape == (50, 16, 16, 3) and a.test_x.shape == (20, 16, 16, 3)
    assert np.bincount(a.train_y).tolist() == [10] * 5
    assert a.num_classes == 5 and a.name == "synthetic"
    grey = synthetic_dataset(channels=1, n_train=20, n_test=10)
    assert grey.channels == 1 and len(grey.mean) == 1


def test_learnable_by_a_linear_classifier():
    torch.manual_seed(0)
    ds = synthetic_dataset(num_classes=10, image_size=16, n_train=500, n_test=200, seed=0)
    x, y = ds.train_tensors()
    xt, yt = ds.test_tensors()
    model = torch.nn.Linear(x[0].numel(), 10)
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    for _ in range(60):
        opt.zero_grad()
        torch.nn.functional.cross_entropy(model(x.flatten(1)), y).backward()
        opt.step()
    acc = (model(xt.flatten(1)).argmax(1) == yt).float().mean().item()
    assert acc > 0.8  # chance is 0.1


def test_bad_arguments():
    with pytest.raises(ValueError):
        synthetic_dataset(num_classes=1)
    with pytest.raises(ValueError):
        synthetic_dataset(channels=2)
