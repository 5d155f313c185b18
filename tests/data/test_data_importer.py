"""Streaming imports: bounded memory, colour per dataset, class names kept, formats, and
archives refused under a registered name they do not match."""

from __future__ import annotations

import io
import json
import subprocess
import sys
import tarfile
import textwrap

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from deepnetsbench.cli import main
from deepnetsbench.data import load_archive
from deepnetsbench.data.cache import cache_attrs, cache_path, read_cache
from deepnetsbench.errors import BenchError


def _jpeg_tar(path, n: int, size: int, classes: int = 10, grey_first: bool = True):
    """A tar of ``n`` smooth colour JPEGs (every fifth in test/), the first one grey."""
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0:size, 0:size] / size
    with tarfile.open(path, "w") as tf:
        for i in range(n):
            base = np.stack([xx * rng.uniform(0, 255), yy * rng.uniform(0, 255),
                             np.full_like(xx, rng.uniform(0, 255))], -1)
            im = Image.fromarray(np.clip(base + rng.normal(0, 12, base.shape), 0, 255)
                                 .astype(np.uint8))
            if i == 0 and grey_first:
                im = im.convert("L")
            buf = io.BytesIO()
            im.save(buf, "JPEG", quality=90)
            info = tarfile.TarInfo(f"{'test' if i % 5 == 0 else 'train'}/c{i % classes}/{i:05d}.jpg")
            info.size = len(buf.getvalue())
            tf.addfile(info, io.BytesIO(buf.getvalue()))
    return path


def test_224px_import_streams_in_bounded_memory(tmp_path):
    """2,500 images at 224 px are 376 MB of pixels; the old import held them (and a float64
    copy of 8,192-image chunks) in memory. The measured peak is the largest process of the
    import (the CLI and its decoding workers)."""
    n, size = 2500, 224
    archive = _jpeg_tar(tmp_path / "big.tar", n, size)
    script = textwrap.dedent(f"""
        import resource, subprocess, sys
        p = subprocess.run([sys.executable, "-m", "deepnetsbench.cli", "download", "--root",
                            {str(tmp_path / 'root')!r}, "--from", {str(archive)!r},
                            "--dataset", "big224", "--no-splits"], capture_output=True, text=True)
        print(p.returncode, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)
        print(p.stderr[-800:], file=sys.stderr)
    """)
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                         timeout=600)
    code, peak_kb = (int(v) for v in out.stdout.split())
    assert code == 0, out.stderr
    attrs = cache_attrs(cache_path("big224", tmp_path / "root"))
    assert attrs["shape"] == (size, size, 3) and attrs["n_train"] + attrs["n_test"] == n
    pixels_mb = n * size * size * 3 / 2**20
    peak_mb = peak_kb / 1024
    print(f"import of {pixels_mb:.0f} MB of pixels: peak RSS {peak_mb:.0f} MB")
    assert peak_mb < 260 and peak_mb < 0.7 * pixels_mb, peak_mb


def test_any_colour_image_makes_the_dataset_rgb(tmp_path, root, h):
    tree = h.make_tree(tmp_path / "src", mode="RGB")
    grey = tree / "train" / "cat" / "0.png"  # the first image of the archive's order
    Image.new("L", (8, 8), 77).save(grey)
    ds = load_archive(tree, name="mixed-colour", root=root, progress=False, workers=0)
    assert ds.channels == 3
    expanded = [x for x in ds.train_x if (x == 77).all()]
    assert len(expanded) == 1  # the grey image, repeated to R = G = B
    assert read_cache(cache_path("mixed-colour", root)).extra["grey_images_expanded"] == 1
    all_grey = h.make_tree(tmp_path / "grey", mode="L")
    assert load_archive(all_grey, name="grey", root=root, progress=False,
                        workers=0).channels == 1


@pytest.mark.parametrize("ext, kw", [(".png", {}), (".bmp", {}), (".ppm", {}),
                                     (".webp", {"lossless": True}), (".jpg", {"quality": 100})])
def test_common_formats_are_read(tmp_path, root, h, ext, kw):
    tree = tmp_path / "src"
    for split, n in (("train", 3), ("test", 2)):
        for k, cls in enumerate(("a", "b")):
            (tree / split / cls).mkdir(parents=True, exist_ok=True)
            for i in range(n):
                Image.new("RGB", (8, 8), (h.pixel_value(k, i),) * 3).save(
                    tree / split / cls / f"{i}{ext}", **kw)
    ds = load_archive(tree, name="fmt", root=root, progress=False, workers=0)
    assert (len(ds.train_x), len(ds.test_x)) == (6, 4)
    if ext != ".jpg":  # lossless formats keep the exact pixels
        assert np.array_equal(h.label_from_pixels(ds.train_x), ds.train_y)


def test_unreadable_extensions_are_named(tmp_path, root, h):
    tree = h.make_tree(tmp_path / "src", ext=".png")
    for p in list(tree.rglob("*.png")):
        p.rename(p.with_suffix(".xyz"))
    with pytest.raises(BenchError, match=r"skipped files in class folders: 18 \.xyz"):
        load_archive(tree, name="odd", root=root, progress=False, workers=0)


def test_class_names_are_stored_in_the_cache(archive, root):
    names = archive.parent / "toy-classes.txt"
    names.write_text("cat\tFelis catus\ndog\tdomestic dog\nfrog\tfrog\n")
    load_archive(archive, root=root, progress=False, workers=0)
    cached = read_cache(cache_path("toy", root))  # what eval and the episodes read
    assert cached.class_names == ["Felis catus", "domestic dog", "frog"]
    names.write_text("cat\tkitty\ndog\tdoggo\nfrog\ttoad\n")  # a new names file: re-imported
    assert load_archive(archive, root=root, progress=False, workers=0).class_names[0] == "kitty"
    assert read_cache(cache_path("toy", root)).class_names[0] == "kitty"


def _download(root, archive, name):
    return CliRunner().invoke(main, ["download", "--root", str(root), "--from", str(archive),
                                     "--dataset", name, "--no-splits"])


def test_from_checks_a_registered_dataset(tmp_path, h):
    """`download --dataset cifar10 --from mnist.tar.gz` was cached as cifar10 at 28x28x3."""
    root = tmp_path / "root"
    mnist_like = h.pack(h.make_tree(tmp_path / "m", classes=[str(i) for i in range(10)],
                                    n_train=1, n_test=1, mode="L", size=28),
                        tmp_path / "mnist.tar.gz")
    r = _download(root, mnist_like, "cifar10")
    assert r.exit_code == 2
    assert "is not the registered cifar10 (28x28 images, cifar10's are 32x32)" in r.output
    assert "--dataset cifar10-custom" in r.output
    assert not cache_path("cifar10", root).exists()
    three = h.pack(h.make_tree(tmp_path / "t", size=32), tmp_path / "three.tar.gz")
    r = _download(root, three, "cifar10")
    assert r.exit_code == 2 and "3 classes, cifar10 has 10" in r.output
    ten = h.pack(h.make_tree(tmp_path / "ten", classes=[f"c{i}" for i in range(10)],
                             n_train=1, n_test=1, size=32), tmp_path / "ten.tar.gz")
    r = _download(root, ten, "cifar10")  # right shape, not the released images
    assert r.exit_code == 2 and "is none of the 1 released cifar10 contents" in r.output
    r = _download(root, ten, "cifar10-custom")  # under its own name it is welcome
    assert r.exit_code == 0, r.output
    # a deliberate subset cannot have a released content: shape and classes are checked
    subset = load_archive(ten, name="cifar10", root=root, progress=False, workers=0,
                          train_per_class=1)
    assert subset.num_classes == 10 and len(subset.train_x) == 10
    assert not list((root / "images").glob(".*"))  # no temporary file left behind


def test_info_lists_cached_image_datasets(archive, root, monkeypatch):
    monkeypatch.setenv("COLUMNS", "200")  # rich's table width
    (archive.parent / "toy-classes.txt").write_text("cat\tFelis catus\ndog\tdog\nfrog\tfrog\n")
    ds = load_archive(archive, root=root, progress=False, workers=0)
    r = CliRunner().invoke(main, ["info", "--root", str(root)])
    assert r.exit_code == 0, r.output
    row = next(line for line in r.output.splitlines() if "toy" in line)
    assert "3 (Felis catus, dog, frog)" in row and "12" in row and "8x8x3" in row
    assert ds.content_sha256[:12] in row


def test_cache_content_matches_the_in_memory_hash(archive, root):
    ds = load_archive(archive, root=root, progress=False, workers=0)
    fresh = read_cache(cache_path("toy", root), verify=True)  # recomputed from the pixels
    assert fresh.content_sha256 == ds.content_sha256
    attrs = cache_attrs(cache_path("toy", root))
    assert json.loads(attrs["options"])["import"] == 2
