"""load_dataset and the torchvision/HF conversions, tested on fake objects (no network)."""

from __future__ import annotations

import sys
import threading
import types
import urllib.error
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from deepnetsbench import download
from deepnetsbench.data import fetch, load_dataset, synthetic_dataset
from deepnetsbench.data.cache import cache_path, write_cache
from deepnetsbench.data.fetch import from_hf, from_torchvision
from deepnetsbench.errors import BenchError


class FakeTV:
    """Mimics a torchvision dataset object: .data, .targets or .labels, maybe .classes."""

    def __init__(self, data, targets=None, labels=None, classes=None):
        self.data = data
        if targets is not None:
            self.targets = targets
        if labels is not None:
            self.labels = labels
        if classes is not None:
            self.classes = classes


def test_from_torchvision_cifar_like():
    rng = np.random.default_rng(0)
    names = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]
    train = FakeTV(rng.integers(0, 256, (20, 32, 32, 3), dtype=np.uint8), targets=list(range(10)) * 2,
                   classes=names)
    test = FakeTV(rng.integers(0, 256, (10, 32, 32, 3), dtype=np.uint8), targets=list(range(10)),
                  classes=names)
    ds = from_torchvision("cifar10", train, test)
    assert ds.classes == names and ds.train_x.shape == (20, 32, 32, 3)
    assert np.array_equal(ds.train_x, train.data) and ds.train_y.tolist() == train.targets
    assert ds.mean[0] == pytest.approx(0.4914, abs=1e-4) and ds.source == "torchvision:CIFAR10"


def test_from_torchvision_mnist_like_tensors():
    names = ["0 - zero", "1 - one", "2 - two", "3 - three", "4 - four", "5 - five", "6 - six",
             "7 - seven", "8 - eight", "9 - nine"]
    train = FakeTV(torch.randint(0, 256, (12, 28, 28), dtype=torch.uint8),
                   targets=torch.arange(12) % 10, classes=names)
    test = FakeTV(torch.randint(0, 256, (5, 28, 28), dtype=torch.uint8),
                  targets=torch.arange(5), classes=names)
    ds = from_torchvision("mnist", train, test)
    assert ds.classes == [str(i) for i in range(10)] and ds.class_names == names
    assert ds.train_x.shape == (12, 28, 28, 1) and ds.channels == 1
    assert ds.test_y.tolist() == [0, 1, 2, 3, 4]
    x, _ = ds.test_tensors(image_size=32)
    assert x.shape == (5, 3, 32, 32)


def test_from_torchvision_svhn_like_nchw():
    data = np.random.default_rng(1).integers(0, 256, (6, 3, 32, 32), dtype=np.uint8)
    train = FakeTV(data, labels=np.arange(6) % 10)
    ds = from_torchvision("svhn", train, FakeTV(data[:2], labels=np.array([3, 4])))
    assert ds.train_x.shape == (6, 32, 32, 3)
    assert np.array_equal(ds.train_x[2, :, :, 1], data[2, 1])
    assert ds.classes == [str(i) for i in range(10)] and ds.test_y.tolist() == [3, 4]


def test_from_hf_resizes_and_sorts_classes():
    names = ["n02", "n01", "n03"]  # HF order is not sorted

    def rows(labels):
        return [{"image": Image.new("RGB", (64, 64), (10 * lab, 0, 0)), "label": lab} for lab in labels]

    ds = from_hf("tinyimagenet", rows([0, 1, 2, 0]), rows([2]), names, image_size=32)
    assert ds.classes == ["n01", "n02", "n03"]
    assert ds.train_y.tolist() == [1, 0, 2, 1]  # n02 -> 1, n01 -> 0, n03 -> 2
    assert ds.train_x.shape == (4, 32, 32, 3)
    assert ds.train_x[2, 5, 5, 0] == 20  # label 2 in HF numbering had red 20
    grey = from_hf("custom", rows([0, 1]), rows([1]), ["b", "a"], image_size=16)
    assert grey.name == "custom" and grey.train_x.shape == (2, 16, 16, 3)


def test_fetch_torchvision_calls_the_right_constructor(monkeypatch, tmp_path):
    calls = []

    class FakeCIFAR(FakeTV):
        def __init__(self, root, train=True, download=False):
            calls.append((root, train, download))
            n = 4 if train else 2
            super().__init__(np.zeros((n, 32, 32, 3), np.uint8), targets=[0] * n,
                             classes=[f"c{i}" for i in range(10)])

    class FakeSVHN(FakeTV):
        def __init__(self, root, split="train", download=False):
            calls.append((root, split, download))
            super().__init__(np.zeros((3, 3, 32, 32), np.uint8), labels=np.zeros(3))

    import torchvision.datasets as tvd

    monkeypatch.setattr(tvd, "CIFAR10", FakeCIFAR)
    monkeypatch.setattr(tvd, "SVHN", FakeSVHN)
    ds = load_dataset("cifar-10", root=tmp_path, download=True, progress=False)
    raw = str(tmp_path / "raw" / "cifar10")
    assert calls == [(raw, True, True), (raw, False, True)]
    assert (len(ds.train_x), len(ds.test_x)) == (4, 2)
    assert cache_path("cifar10", tmp_path).is_file()
    calls.clear()
    assert len(load_dataset("cifar10", root=tmp_path).train_x) == 4  # now from the cache
    assert calls == []
    load_dataset("svhn", root=tmp_path, download=True)
    assert [c[1] for c in calls] == ["train", "test"]


def test_fetch_hf_uses_train_and_valid(monkeypatch, tmp_path):
    class Split(list):
        features = {"label": types.SimpleNamespace(names=["b", "a"])}

    def fake_load(source, cache_dir):
        assert source == "zh-plus/tiny-imagenet" and cache_dir.endswith("tinyimagenet")
        img = Image.new("RGB", (64, 64))
        return {"train": Split([{"image": img, "label": 0}] * 3),
                "valid": Split([{"image": img, "label": 1}])}

    monkeypatch.setitem(sys.modules, "datasets", types.SimpleNamespace(load_dataset=fake_load))
    ds = load_dataset("tiny-imagenet", root=tmp_path, download=True, progress=False)
    assert ds.classes == ["a", "b"] and ds.train_y.tolist() == [1, 1, 1] and ds.test_y.tolist() == [0]
    assert ds.train_x.shape == (3, 32, 32, 3)


def test_failed_download_says_how_to_use_an_archive(monkeypatch, tmp_path):
    def offline(info, raw):
        raise urllib.error.URLError("no network")

    monkeypatch.setattr(fetch, "fetch_torchvision", offline)
    with pytest.raises(BenchError) as info:
        load_dataset("mnist", root=tmp_path, download=True)
    assert "could not download mnist" in str(info.value)
    assert "deepnets-bench download --dataset mnist --from ARCHIVE" in info.value.fix


def test_missing_without_download_and_unknown_names(tmp_path):
    with pytest.raises(BenchError) as info:
        load_dataset("cifar100", root=tmp_path)
    assert "--from ARCHIVE" in info.value.fix and "not in the cache" in info.value.what
    with pytest.raises(BenchError, match="not a registered dataset"):
        load_dataset("my-data", root=tmp_path, download=True)
    with pytest.raises(BenchError, match="cannot be downloaded automatically"):
        load_dataset("imagenet", root=tmp_path, download=True)


def test_custom_cached_dataset_and_synthetic(tmp_path):
    ds = synthetic_dataset(n_train=10, n_test=5)
    ds.name = "my-data"
    write_cache(ds, cache_path("my-data", tmp_path))
    back = load_dataset("my-data", root=tmp_path)
    assert back.content_sha256 == ds.content_sha256
    assert back.content_sha256 == back.__class__.content_sha256.func(back)  # stored hash is right
    assert load_dataset("synthetic").name == "synthetic"


def test_source_archive_is_loaded(tmp_path, h):
    tree = h.make_tree(tmp_path / "src")
    ds = load_dataset("toy", root=tmp_path / "root", source=tree, progress=False)
    assert ds.name == "toy" and len(ds.test_x) == 6


@pytest.fixture
def mirror(tmp_path, monkeypatch):
    monkeypatch.setattr(download, "BACKOFF", 0.0)
    served = tmp_path / "mirror"
    served.mkdir()
    handler = partial(SimpleHTTPRequestHandler, directory=str(served))
    handler.log_message = lambda *a: None
    srv = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=srv.serve_forever, args=(0.05,), daemon=True).start()
    monkeypatch.setenv("DEEPNETS_BENCH_URL_IMAGES", f"http://127.0.0.1:{srv.server_address[1]}/")
    yield served
    srv.shutdown()
    srv.server_close()


def test_mirror_of_suite_archives(mirror: Path, tmp_path, h):
    tree = h.make_tree(tmp_path / "src", classes=[str(i) for i in range(10)], n_train=2, n_test=1,
                       size=32)  # the registered size: another one is refused as svhn
    h.pack(tree, mirror / "svhn.tar.gz")
    (mirror / "svhn-classes.txt").write_text("\n".join(f"{i}\tdigit {i}" for i in range(10)))
    ds = load_dataset("svhn", root=tmp_path / "root", download=True, progress=False)
    assert len(ds.train_x) == 20 and ds.class_names[3] == "digit 3"
    assert (tmp_path / "root" / "raw" / "svhn" / "svhn.tar.gz").is_file()


def test_mirror_archive_with_wrong_sha256(mirror: Path, tmp_path, h):
    h.pack(h.make_tree(tmp_path / "src"), mirror / "cifar10.tar.gz")
    with pytest.raises(BenchError, match="sha256"):
        load_dataset("cifar10", root=tmp_path / "root", download=True, progress=False)


def test_unreadable_cache_file_is_reported(tmp_path):
    path = cache_path("cifar10", tmp_path)
    path.write_bytes(b"not hdf5")
    with pytest.raises(BenchError, match="unreadable") as info:
        load_dataset("cifar10", root=tmp_path)
    assert "delete it" in info.value.fix
