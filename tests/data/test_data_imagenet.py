"""The ImageNet route: a local validation folder (class folders of JPEGs) decoded with the
official evaluation transform, in the official shuffled order, memory-mapped and converted
batch by batch. The folder here is tiny and made by the test (4 classes, 3 images each)."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from PIL import Image

from deepnetsbench.data import load_dataset, registry
from deepnetsbench.data.imagenet import ENV_IMAGENET, official_order, scan_val
from deepnetsbench.data.images import RawImages
from deepnetsbench.errors import BenchError

WNIDS = ("n01440764", "n01443537", "n01484850", "n01491361")
SIZES = ((300, 200), (180, 400), (256, 256))  # (width, height): landscape, portrait, square


@pytest.fixture
def four_classes(monkeypatch):
    """ImageNet with 4 classes for the test (the class-count check is ImageNet's 1000)."""
    small = registry.DATASETS["imagenet"].__class__(
        **{**registry.DATASETS["imagenet"].__dict__, "num_classes": len(WNIDS)})
    monkeypatch.setitem(registry.DATASETS, "imagenet", small)
    monkeypatch.delenv(ENV_IMAGENET, raising=False)


def make_val(base, grey: int = 1):
    """``base/val/<wnid>/*.JPEG`` (and an empty ``train/``): noise images of several shapes;
    image ``grey`` of the first class is greyscale, one file is a PNG."""
    rng = np.random.default_rng(0)
    (base / "train").mkdir(parents=True)
    for k, wnid in enumerate(WNIDS):
        d = base / "val" / wnid
        d.mkdir(parents=True)
        for i, (w, h) in enumerate(SIZES):
            pixels = rng.integers(0, 256, size=(h, w, 3), dtype=np.uint8)
            img = Image.fromarray(pixels)
            if k == 0 and i == grey:
                img = img.convert("L")
            ext = ".png" if (k, i) == (3, 2) else ".JPEG"
            img.save(d / f"ILSVRC2012_val_{k * 10 + i:08d}{ext}")
    return base


def official_tensor(path):
    """What the official evaluation feeds for one image: torchvision's public transforms
    (Resize 256, CenterCrop 224, ToTensor, Normalize with the ImageNet statistics)."""
    from torchvision import transforms as T

    t = T.Compose([T.Resize(256), T.CenterCrop(224), T.ToTensor(),
                   T.Normalize(mean=[0.485, 0.456, 0.406], std=[0.229, 0.224, 0.225])])
    with open(path, "rb") as f:
        return t(Image.open(f).convert("RGB"))


def test_official_order_is_the_seeded_shuffling_loader():
    from torch.utils.data import DataLoader

    g = torch.Generator()
    g.manual_seed(1111)
    loader = DataLoader(list(range(50)), batch_size=7, shuffle=True, generator=g)
    g.manual_seed(1111)  # as the official evaluation does before every network
    drawn = [int(i) for batch in loader for i in batch]
    assert official_order(50).tolist() == drawn
    assert sorted(drawn) == list(range(50))


def test_val_folder_is_decoded_officially_in_the_official_order(tmp_path, four_classes):
    folder = make_val(tmp_path / "imagenet")
    ds = load_dataset("imagenet", root=tmp_path / "root", source=folder, progress=False)
    classes, files, labels = scan_val(folder / "val")
    n = len(files)
    assert ds.mapped and ds.name == "imagenet" and ds.classes == list(WNIDS)
    assert ds.test_x.shape == (n, 224, 224, 3) and len(ds.train_x) == 0
    order = official_order(n)
    assert ds.test_y.tolist() == labels[order].tolist()
    assert ds.mean == (0.485, 0.456, 0.406) and ds.std == (0.229, 0.224, 0.225)
    raw, y = ds.raw_test()
    assert isinstance(raw, RawImages) and raw.shape == (n, 3, 224, 224)
    batch = raw.batch(0, n, "cpu")
    for j, i in enumerate(order):  # every image as the official transform gives it
        assert torch.equal(batch[j], official_tensor(files[i])), files[i].name
    assert torch.equal(y, torch.from_numpy(labels[order]))


def test_cache_is_reused_until_the_folder_changes(tmp_path, four_classes, monkeypatch):
    folder = make_val(tmp_path / "imagenet")
    root = tmp_path / "root"
    monkeypatch.setenv(ENV_IMAGENET, str(folder))  # found without --from
    first = load_dataset("imagenet", root=root, progress=False)
    cache = root / "images" / "imagenet.h5"
    stamp = cache.stat().st_mtime_ns
    again = load_dataset("imagenet", root=root, progress=False, verify=True)
    assert cache.stat().st_mtime_ns == stamp and again.content_sha256 == first.content_sha256
    extra = folder / "val" / WNIDS[1] / "ILSVRC2012_val_00000099.JPEG"
    Image.new("RGB", (230, 240), (9, 9, 9)).save(extra)
    changed = load_dataset("imagenet", root=root, progress=False)
    assert len(changed.test_y) == len(first.test_y) + 1
    assert changed.content_sha256 != first.content_sha256
    monkeypatch.delenv(ENV_IMAGENET)  # the cache alone is enough now
    assert load_dataset("imagenet", root=root).content_sha256 == changed.content_sha256


def test_layouts_that_are_not_class_folders_are_one_line_errors(tmp_path, four_classes):
    flat = tmp_path / "flat" / "val"
    flat.mkdir(parents=True)
    Image.new("RGB", (8, 8)).save(flat / "ILSVRC2012_val_00000001.JPEG")
    with pytest.raises(BenchError, match=r"no class folders \(the devkit's flat layout\)") as err:
        load_dataset("imagenet", root=tmp_path / "r", source=tmp_path / "flat")
    assert "torchvision.datasets.ImageNet" in err.value.fix
    tar = tmp_path / "ILSVRC2012_img_val.tar"
    tar.write_bytes(b"x")
    with pytest.raises(BenchError, match="unpack it first"):
        load_dataset("imagenet", root=tmp_path / "r", source=tar)
    empty = make_val(tmp_path / "e")
    os.makedirs(empty / "val" / "n09999999")
    with pytest.raises(BenchError, match="holds no images"):
        load_dataset("imagenet", root=tmp_path / "r", source=empty)
    with pytest.raises(BenchError, match="cannot be downloaded automatically"):
        load_dataset("imagenet", root=tmp_path / "nothing")


def test_raw_images_score_like_float_tensors(tmp_path, four_classes):
    from deepnetsbench.eval.accuracy import evaluate_accuracy

    ds = load_dataset("imagenet", root=tmp_path / "root", source=make_val(tmp_path / "i"),
                      progress=False)
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Conv2d(3, 8, 7, stride=8), torch.nn.BatchNorm2d(8),
                                torch.nn.ReLU(), torch.nn.AdaptiveAvgPool2d(1),
                                torch.nn.Flatten(), torch.nn.Linear(8, 4))
    raw, y = ds.raw_test()
    full, y2 = ds.test_tensors()  # fine for 12 images, 30 GB for the real set
    assert evaluate_accuracy(model, raw, y, batch_size=5) == evaluate_accuracy(
        model, full, y2, batch_size=5)


def test_eval_on_imagenet_reports_top5_at_224px(tmp_path, four_classes):
    from deepnetsbench.cli import main
    from deepnetsbench.eval.inputs import EvalImages
    from deepnetsbench.splits.build import build_split

    folder = make_val(tmp_path / "imagenet")
    root = tmp_path / "root"
    res = CliRunner().invoke(main, ["download", "--dataset", "imagenet", "--from", str(folder),
                                    "--no-splits", "--root", str(root)])
    assert res.exit_code == 0, res.output
    ds = load_dataset("imagenet", root=root)
    images = EvalImages(ds, 224, torch.device("cpu"))
    x, _ = images.tensors()
    assert isinstance(x, RawImages)  # never one float tensor of the whole set
    build_split("test", 2, root=root, progress=False)
    out = tmp_path / "res.json"
    res = CliRunner().invoke(main, ["eval", "--method", "kaiming", "--split", "test",
                                    "--dataset", "imagenet", "--arch", "1", "--root", str(root),
                                    "--out", str(out), "--quiet", "--no-flops"])
    assert res.exit_code == 0, res.output
    results = json.loads(out.read_text())
    p, rec = results["protocol"], results["records"][0]
    assert (p["image_size"], p["num_classes"], p["eval_images"]) == (224, 4, 12)
    assert rec["status"] == "ok" and rec["top5"] is not None
    assert results["dataset"]["content_sha256"] == ds.content_sha256
