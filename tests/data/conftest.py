"""Fixtures for the image-data tests: tiny image trees and archives built on the fly."""

from __future__ import annotations

import io
import tarfile
import zipfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image


def pixel_value(label: int, index: int) -> int:
    """The grey level of image ``index`` of class ``label`` (PNG keeps it exact)."""
    return 10 + 20 * label + index  # index < 20, label < 12


def make_tree(
    base: Path,
    classes=("cat", "dog", "frog"),
    n_train: int = 4,
    n_test: int = 2,
    size: int = 8,
    mode: str = "RGB",
    ext: str = ".png",
    test_dir: str = "test",
) -> Path:
    """``base/{train,test}/<class>/<i>.<ext>``; every pixel of image i of class k equals
    ``pixel_value(k, i)`` so that labels can be checked from the pixels."""
    for split, n in (("train", n_train), (test_dir, n_test)):
        for k, cls in enumerate(classes):
            d = base / split / cls
            d.mkdir(parents=True, exist_ok=True)
            for i in range(n):
                value = pixel_value(k, i)
                fill = value if mode == "L" else (value, value, value)
                Image.new(mode, (size, size), fill).save(d / f"{i}{ext}")
    return base


def pack(tree: Path, dest: Path, fmt: str = "w:gz", prefix: str = "") -> Path:
    """Pack ``tree`` into a tar (``fmt`` is a tarfile mode, plus ``zip``); ``prefix`` puts
    everything under one top folder; ``gnu``/``ustar`` pick the tar header format."""
    files = sorted(p for p in tree.rglob("*") if p.is_file())
    if fmt == "zip":
        with zipfile.ZipFile(dest, "w") as zf:
            for p in files:
                zf.write(p, prefix + p.relative_to(tree).as_posix())
        return dest
    tar_format = {"gnu": tarfile.GNU_FORMAT, "ustar": tarfile.USTAR_FORMAT}.get(
        fmt.split("+")[-1], tarfile.PAX_FORMAT
    )
    with tarfile.open(dest, fmt.split("+")[0], format=tar_format) as tf:
        for p in files:
            tf.add(p, prefix + p.relative_to(tree).as_posix())
    return dest


def add_bytes_to_tar(dest: Path, members: dict[str, bytes]) -> Path:
    with tarfile.open(dest, "w:gz") as tf:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
    return dest


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    return make_tree(tmp_path / "src")


@pytest.fixture
def archive(tree: Path, tmp_path: Path) -> Path:
    (tmp_path / "arch").mkdir()
    return pack(tree, tmp_path / "arch" / "toy.tar.gz")


@pytest.fixture
def root(tmp_path: Path) -> Path:
    return tmp_path / "root"


def label_from_pixels(x: np.ndarray) -> np.ndarray:
    """Invert ``pixel_value`` for a batch of uniform images."""
    return (x.reshape(len(x), -1)[:, 0].astype(int) - 10) // 20


@pytest.fixture
def h():
    """The helper functions above, for tests (importing a conftest module by name is fragile)."""
    from types import SimpleNamespace

    return SimpleNamespace(make_tree=make_tree, pack=pack, add_bytes_to_tar=add_bytes_to_tar,
                           pixel_value=pixel_value, label_from_pixels=label_from_pixels)
