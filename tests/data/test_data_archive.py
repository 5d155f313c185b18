"""load_archive: tar/zip/folder reading, labels, the HDF5 cache and its invalidation, errors."""

from __future__ import annotations

import gzip

import h5py
import numpy as np
import pytest

from deepnetsbench.data import archive as archive_mod
from deepnetsbench.data import load_archive
from deepnetsbench.data.cache import FORMAT_VERSION
from deepnetsbench.errors import BenchError


def _check_labels(ds, h) -> None:
    for x, y in ((ds.train_x, ds.train_y), (ds.test_x, ds.test_y)):
        assert np.array_equal(h.label_from_pixels(x), y)


def test_tar_gz_loads_with_sorted_classes_and_right_labels(archive, root, h):
    ds = load_archive(archive, root=root, progress=False, workers=0)
    assert ds.name == "toy"
    assert ds.classes == ["cat", "dog", "frog"]
    assert ds.train_x.shape == (12, 8, 8, 3) and ds.train_x.dtype == np.uint8
    assert ds.test_x.shape == (6, 8, 8, 3) and ds.test_y.dtype == np.int64
    assert np.bincount(ds.train_y).tolist() == [4, 4, 4]
    _check_labels(ds, h)
    # unknown dataset: statistics come from the train images
    expected = ds.train_x.reshape(-1, 3).mean(0) / 255
    assert np.allclose(ds.mean, expected, atol=1e-9)
    assert (root / "images" / "toy.h5").is_file()


def test_cache_attrs_and_atomic_write(archive, root):
    ds = load_archive(archive, root=root, progress=False, workers=0)
    path = root / "images" / "toy.h5"
    with h5py.File(path) as f:
        assert f.attrs["format_version"] == FORMAT_VERSION
        assert f.attrs["source_sha256"] == archive_mod.file_hash(archive)
        assert f.attrs["content_sha256"] == ds.content_sha256
        assert f["train/x"].dtype == np.uint8 and f["test/y"].dtype == np.int64
    assert sorted(p.name for p in path.parent.iterdir()) == ["toy.h5"]  # no temp files left


def test_second_load_comes_from_cache(archive, root, monkeypatch):
    first = load_archive(archive, root=root, progress=False, workers=0)

    def boom(*args, **kwargs):
        raise AssertionError("decoded again")

    monkeypatch.setattr(archive_mod, "decode_to_cache", boom)
    second = load_archive(archive, root=root, progress=False)
    assert second.content_sha256 == first.content_sha256
    assert np.array_equal(second.train_x, first.train_x)
    assert second.classes == first.classes
    assert second.mean == first.mean


def test_changed_archive_is_detected(archive, root, tmp_path, h):
    load_archive(archive, root=root, progress=False, workers=0)
    tree2 = h.make_tree(tmp_path / "src2", n_train=5)
    h.pack(tree2, archive)  # same path, new bytes
    ds = load_archive(archive, root=root, progress=False, workers=0)
    assert len(ds.train_x) == 15


@pytest.mark.parametrize("fmt", ["zip", "w", "w:gz+gnu", "w:gz+ustar", "w:bz2", "w:xz", "dir"])
def test_every_format_gives_the_same_content(tree, tmp_path, root, fmt, h):
    reference = load_archive(h.pack(tree, tmp_path / "ref.tar.gz"), root=root, progress=False,
                             workers=0)
    if fmt == "dir":
        src = tree
    else:
        src = h.pack(tree, tmp_path / f"toy.{'zip' if fmt == 'zip' else 'tar'}", fmt,
                     prefix="toy-1.0/")
    ds = load_archive(src, name="other", root=root, progress=False, workers=0)
    assert ds.content_sha256 == reference.content_sha256


def test_long_member_names(tmp_path, root, h):
    long_cls = "c" * 120  # > 100 characters: pax (or GNU) long-name headers
    tree = h.make_tree(tmp_path / "src", classes=("a", long_cls))
    for fmt in ("w:gz", "w:gz+gnu"):
        ds = load_archive(h.pack(tree, tmp_path / "long.tar.gz", fmt), root=root, progress=False,
                          workers=0)
        assert ds.classes == ["a", long_cls]
        _check_labels(ds, h)


def test_worker_pool_matches_in_process(tmp_path, root, h, monkeypatch):
    monkeypatch.setattr(archive_mod, "BATCH", 5)  # several tasks per worker
    tree = h.make_tree(tmp_path / "src", n_train=7, n_test=3)
    src = h.pack(tree, tmp_path / "p.tar.gz")
    a = load_archive(src, root=root, progress=False, workers=0)
    b = load_archive(src, root=root, progress=True, workers=2, force=True)
    assert a.content_sha256 == b.content_sha256


def test_order_is_shuffled_deterministically(tmp_path, root, h):
    tree = h.make_tree(tmp_path / "src", n_train=20, n_test=20)
    ds = load_archive(h.pack(tree, tmp_path / "s.tar.gz"), root=root, progress=False, workers=0)
    # a prefix is a mix of classes, not all of the first class
    assert len(set(ds.test_y[:12].tolist())) > 1
    again = load_archive(tree, name="again", root=root, progress=False, workers=0)
    assert np.array_equal(again.test_y, ds.test_y)


def test_numeric_classes_sort_numerically_and_grey_stays_one_channel(tmp_path, root, h):
    classes = [str(i) for i in range(11)]  # "10" must come after "9"
    tree = h.make_tree(tmp_path / "src", classes=classes, n_train=1, n_test=1, mode="L", size=4)
    ds = load_archive(h.pack(tree, tmp_path / "digits.tar.gz"), root=root, progress=False,
                      workers=0)
    assert ds.classes == classes
    assert ds.channels == 1 and ds.train_x.shape == (11, 4, 4, 1)
    _check_labels(ds, h)
    assert np.allclose(ds.mean, ds.train_x.mean() / 255, atol=1e-9)


def test_registered_grey_dataset_uses_registry_stats(tmp_path, root, h, monkeypatch):
    monkeypatch.setenv("DEEPNETS_BENCH_RELEASES", str(tmp_path / "none.json"))  # no content pins
    tree = h.make_tree(tmp_path / "src", classes=[str(i) for i in range(10)], n_train=1,
                       n_test=1, mode="L", size=28)
    ds = load_archive(h.pack(tree, tmp_path / "mnist.tar.gz"), root=root, progress=False,
                      workers=0)
    assert ds.channels == 1 and ds.mean == (0.1307,) and ds.std == (0.3081,)


def test_class_names_file_beside_archive(archive, root):
    (archive.parent / "toy-classes.txt").write_text("cat\tFelis catus\ndog\tdomestic dog\nfrog\tfrog\n")
    ds = load_archive(archive, root=root, progress=False, workers=0)
    assert ds.classes == ["cat", "dog", "frog"]
    assert ds.class_names == ["Felis catus", "domestic dog", "frog"]


def test_plain_classes_txt_in_class_order(archive, root):
    (archive.parent / "classes.txt").write_text("Cat\nDog\nFrog\n")
    ds = load_archive(archive, root=root, progress=False, workers=0)
    assert ds.class_names == ["Cat", "Dog", "Frog"]


def test_val_folder_is_the_test_split_and_train_cap(tmp_path, root, h):
    tree = h.make_tree(tmp_path / "src", test_dir="val", n_train=5)
    ds = load_archive(tree, name="valdata", root=root, progress=False, workers=0, train_per_class=2)
    assert len(ds.test_x) == 6 and len(ds.train_x) == 6
    _check_labels(ds, h)


def test_mixed_sizes_need_image_size(tmp_path, root, h):
    tree = h.make_tree(tmp_path / "src")
    from PIL import Image

    Image.new("RGB", (12, 10), (50, 50, 50)).save(tree / "train" / "cat" / "odd.png")
    with pytest.raises(BenchError, match="odd.png is 12x10") as info:
        load_archive(tree, name="mixed", root=root, progress=False, workers=0)
    assert "--image-size" in info.value.fix
    ds = load_archive(tree, name="mixed", root=root, progress=False, workers=0, image_size=6)
    assert ds.train_x.shape[1:] == (6, 6, 3)


def test_imagenet_folder_is_center_cropped_to_224(tmp_path, root, h, monkeypatch):
    from deepnetsbench.data import registry

    # a 3-class stand-in for the 1000 classes (the name check is tested on its own)
    small = registry.DATASETS["imagenet"].__class__(
        **{**registry.DATASETS["imagenet"].__dict__, "num_classes": 3})
    monkeypatch.setitem(registry.DATASETS, "imagenet", small)
    tree = h.make_tree(tmp_path / "imagenet", size=300, n_train=1, n_test=1, test_dir="val")
    ds = load_archive(tree, root=root, progress=False, workers=0)
    assert ds.name == "imagenet"
    assert ds.test_x.shape == (3, 224, 224, 3) and len(ds.train_x) == 0
    assert ds.mean == (0.485, 0.456, 0.406)


def test_hidden_and_non_image_members_are_ignored(tmp_path, root, h):
    tree = h.make_tree(tmp_path / "src")
    (tree / "train" / "cat" / "._0.png").write_bytes(b"\0\5\26\7 AppleDouble")
    (tree / "train" / "cat" / "notes.txt").write_text("x")
    (tree / "README").write_text("hello")
    ds = load_archive(h.pack(tree, tmp_path / "h.tar.gz"), root=root, progress=False, workers=0)
    assert len(ds.train_x) == 12


def test_truncated_archive_is_a_one_line_error(archive, root, tmp_path):
    data = archive.read_bytes()
    bad = tmp_path / "bad.tar.gz"
    bad.write_bytes(data[: len(data) // 2])
    with pytest.raises(BenchError) as info:
        load_archive(bad, root=root, progress=False, workers=2)
    assert "bad.tar.gz" in str(info.value) and "\n" not in str(info.value)
    assert not (root / "images" / "bad.h5").exists()


def test_uncompressed_tar_truncated_and_garbage(archive, root, tmp_path):
    raw = gzip.decompress(archive.read_bytes())
    bad = tmp_path / "cut.tar"
    bad.write_bytes(raw[: len(raw) // 2 + 100])
    with pytest.raises(BenchError, match="cut.tar"):
        load_archive(bad, root=root, progress=False, workers=0)
    junk = tmp_path / "junk.tar.gz"
    junk.write_bytes(b"this is not an archive at all" * 40)
    with pytest.raises(BenchError, match="junk.tar.gz"):
        load_archive(junk, root=root, progress=False, workers=0)


def test_missing_test_folder(tmp_path, root, h):
    tree = h.make_tree(tmp_path / "src", n_test=0)
    with pytest.raises(BenchError, match="test/<class>/") as info:
        load_archive(h.pack(tree, tmp_path / "notest.tar.gz"), root=root, progress=False, workers=0)
    assert "train/<class>/<image>" in info.value.fix


def test_corrupt_image_names_the_member(tmp_path, root, h):
    import io

    from PIL import Image

    buf = io.BytesIO()
    Image.new("RGB", (8, 8)).save(buf, "PNG")
    good = buf.getvalue()
    src = h.add_bytes_to_tar(tmp_path / "c.tar.gz", {
        "train/a/0.png": good, "train/a/1.png": good[:30], "test/a/0.png": good,
    })
    with pytest.raises(BenchError, match="train/a/1.png"):
        load_archive(src, root=root, progress=False, workers=2)


def test_missing_path_and_bad_name(tmp_path, root, archive):
    with pytest.raises(BenchError, match="does not exist"):
        load_archive(tmp_path / "nope.tar.gz", root=root, progress=False)
    with pytest.raises(BenchError, match="invalid dataset name"):
        load_archive(archive, name="../evil", root=root, progress=False)
