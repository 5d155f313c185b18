"""ImageDataset: tensors (normalization, channels, resizing), content hash, validation."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from deepnetsbench.data import ImageDataset


def _ds(channels: int = 3, size: int = 4, n: int = 6, seed: int = 0) -> ImageDataset:
    rng = np.random.default_rng(seed)
    return ImageDataset(
        name="t", classes=["a", "b", "c"],
        train_x=rng.integers(0, 256, (n, size, size, channels), dtype=np.uint8),
        train_y=np.arange(n) % 3,
        test_x=rng.integers(0, 256, (n // 2, size, size, channels), dtype=np.uint8),
        test_y=np.arange(n // 2) % 3,
        mean=(0.5,) * channels, std=(0.25,) * channels,
    )


def test_tensors_normalize_exactly():
    ds = _ds()
    x, y = ds.test_tensors()
    assert x.dtype == torch.float32 and x.shape == (3, 3, 4, 4)
    assert y.dtype == torch.int64 and y.tolist() == [0, 1, 2]
    expected = (torch.from_numpy(ds.test_x).permute(0, 3, 1, 2).float() / 255 - 0.5) / 0.25
    assert torch.allclose(x, expected, atol=1e-6)
    xt, yt = ds.train_tensors(limit=4)
    assert xt.shape == (4, 3, 4, 4) and yt.tolist() == [0, 1, 2, 0]


def test_grey_to_three_channels_and_back():
    ds = _ds(channels=1)
    assert ds.channels == 1
    x, _ = ds.test_tensors(channels=3)
    assert x.shape[1] == 3
    assert torch.equal(x[:, 0], x[:, 1]) and torch.equal(x[:, 0], x[:, 2])
    x1, _ = ds.test_tensors(channels=1)
    assert torch.allclose(x1[:, 0], x[:, 0])
    rgb = _ds(channels=3)
    g, _ = rgb.test_tensors(channels=1)
    assert g.shape[1] == 1
    assert rgb.stats(1)[0] == pytest.approx((0.5,))


def test_resize_is_antialiased_bilinear():
    ds = _ds(size=8)
    x, _ = ds.test_tensors(image_size=2)
    assert x.shape == (3, 3, 2, 2)
    src = (torch.from_numpy(ds.test_x).permute(0, 3, 1, 2).float() / 255 - 0.5) / 0.25
    kw = dict(size=(2, 2), mode="bilinear", align_corners=False)
    smooth = torch.nn.functional.interpolate(src, antialias=True, **kw)
    sharp = torch.nn.functional.interpolate(src, antialias=False, **kw)
    assert torch.allclose(x, smooth, atol=1e-5)
    assert not torch.allclose(x, sharp, atol=1e-3)
    up, _ = ds.test_tensors(image_size=16)
    assert up.shape[-1] == 16


def test_indices_limit_and_batches():
    ds = _ds(n=10)
    x, y = ds.train_tensors(indices=[3, 1, 4])
    assert y.tolist() == [0, 1, 1]
    full, labels = ds.train_tensors(image_size=6)
    parts = list(ds.iter_batches("train", batch_size=4, image_size=6))
    assert [len(b[1]) for b in parts] == [4, 4, 2]
    assert torch.allclose(torch.cat([b[0] for b in parts]), full)
    assert torch.equal(torch.cat([b[1] for b in parts]), labels)


def test_content_sha256_is_deterministic_and_sensitive():
    a, b = _ds(), _ds()
    assert a.content_sha256 == b.content_sha256 and len(a.content_sha256) == 64
    c = _ds()
    c.test_x[0, 0, 0, 0] ^= 1
    assert c.content_sha256 != a.content_sha256
    d = _ds()
    d.train_y[0] = 1
    assert d.content_sha256 != a.content_sha256
    assert _ds(seed=1).content_sha256 != a.content_sha256


def test_shape_properties_and_repr():
    ds = _ds(size=5)
    assert (ds.num_classes, ds.image_size, ds.channels, len(ds)) == (3, 5, 3, 9)
    assert "train=6" in repr(ds) and ds.class_names == ds.classes
    grey = ImageDataset("g", ["x", "y"], np.zeros((2, 3, 3), np.uint8), [0, 1],
                        np.zeros((1, 3, 3), np.uint8), [1], (0.5,), (0.2,))
    assert grey.train_x.shape == (2, 3, 3, 1) and grey.train_y.dtype == np.int64


@pytest.mark.parametrize("bad", [
    dict(train_x=np.zeros((2, 4, 4, 3), np.float32)),
    dict(train_y=[0, 1, 5, 0, 1, 2]),
    dict(train_y=[0, 1]),
    dict(mean=(0.5,)),
    dict(std=(0.0, 1.0, 1.0)),
    dict(class_names=["only one"]),
])
def test_validation(bad):
    ds = _ds()
    kwargs = dict(name="t", classes=ds.classes, train_x=ds.train_x, train_y=ds.train_y,
                  test_x=ds.test_x, test_y=ds.test_y, mean=ds.mean, std=ds.std)
    kwargs.update(bad)
    with pytest.raises(ValueError):
        ImageDataset(**kwargs)
