"""The decoded-image cache: one uncompressed HDF5 file per dataset.

Decoding JPEG/PNG takes seconds to minutes; reading back uint8 arrays takes a fraction of a
second, so every source (archive, torchvision, HF) ends up in this one format under
``images_dir(root)/<name>.h5``. Files are written to a temporary name and renamed, so a
crash never leaves a half-written cache. See docs/data.md for the layout.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

import h5py
import numpy as np

from deepnetsbench import __version__
from deepnetsbench.data.images import ImageDataset
from deepnetsbench.errors import BenchError
from deepnetsbench.paths import images_dir

FORMAT = "deepnets-bench/images"
FORMAT_VERSION = 1
_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")


def check_name(name: str) -> str:
    """A dataset name is also a file name: letters, digits, ``.``, ``_``, ``-``."""
    if not _NAME_RE.match(name or ""):
        raise BenchError(
            f"invalid dataset name {name!r}",
            "use letters, digits, '.', '_' or '-' (e.g. --dataset my-data)",
        )
    return name


def cache_path(name: str, root: str | os.PathLike | None = None) -> Path:
    """Where the decoded dataset ``name`` lives."""
    return images_dir(root) / f"{check_name(name)}.h5"


def write_cache(
    ds: ImageDataset, path: str | os.PathLike, source_sha256: str = "", options: str = ""
) -> Path:
    """Write ``ds`` to ``path`` atomically; ``source_sha256`` identifies what it was decoded
    from and ``options`` the decoding options, so that a change of either is detected."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        with h5py.File(tmp, "w") as f:
            a = f.attrs
            a["format"] = FORMAT
            a["format_version"] = FORMAT_VERSION
            a["name"] = ds.name
            a["classes"] = json.dumps(ds.classes)
            a["class_names"] = json.dumps(ds.class_names)
            a["mean"] = np.asarray(ds.mean, dtype=np.float64)
            a["std"] = np.asarray(ds.std, dtype=np.float64)
            a["source"] = ds.source
            a["source_sha256"] = source_sha256
            a["options"] = options
            a["content_sha256"] = ds.content_sha256
            a["extra"] = json.dumps(ds.extra, sort_keys=True, default=str)
            a["created"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
            a["deepnets_bench_version"] = __version__
            for split in ("train", "test"):
                x, y = ds.split_arrays(split)
                g = f.create_group(split)
                g.create_dataset("x", data=x, dtype=np.uint8)
                g.create_dataset("y", data=y.astype(np.int64))
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return path


_LEVELS = np.arange(256, dtype=np.int64)
_LEVELS_SQ = _LEVELS * _LEVELS


class CacheWriter:
    """Write a cache file split by split, in blocks, without holding a dataset in memory.

    Splits must be written test first, then train (the order of ``content_sha256``); the
    hash and the per-channel statistics are accumulated from the blocks as they pass, and
    :meth:`close` stores them and moves the file into place (nothing half-written is ever
    visible under ``path``). Integer sums make the statistics exact whatever the block size.
    """

    def __init__(self, path: str | os.PathLike, shape: tuple[int, int, int],
                 sizes: dict[str, int]):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd, self.tmp = tempfile.mkstemp(prefix=f".{self.path.name}.", suffix=".tmp",
                                        dir=self.path.parent)
        os.close(fd)
        self.f = h5py.File(self.tmp, "w")
        self.shape, self.sizes = tuple(int(s) for s in shape), dict(sizes)
        self.hash = hashlib.sha256(b"deepnets-bench/images/v1\n")
        c = self.shape[2]
        self._sum = {s: np.zeros(c, np.int64) for s in sizes}
        self._sq = {s: np.zeros(c, np.int64) for s in sizes}
        self._order: list[str] = []

    def write_split(self, split: str, blocks, labels: np.ndarray) -> None:
        """``blocks`` yields uint8 ``[k, H, W, C]`` arrays in final order; ``labels`` int64."""
        n = self.sizes[split]
        x = self.f.create_dataset(f"{split}/x", shape=(n, *self.shape), dtype=np.uint8)
        shape = [n, *self.shape]
        self.hash.update(f"{split}_x:|u1:{shape}\n".encode())
        i = 0
        for block in blocks:
            block = np.ascontiguousarray(block, dtype=np.uint8)
            x[i:i + len(block)] = block
            i += len(block)
            self.hash.update(block.reshape(-1).data)
            flat = block.reshape(-1, self.shape[2])
            for ch in range(self.shape[2]):  # a histogram per channel: exact, no float copy
                hist = np.bincount(flat[:, ch], minlength=256).astype(np.int64)
                self._sum[split][ch] += int(hist @ _LEVELS)
                self._sq[split][ch] += int(hist @ _LEVELS_SQ)
        if i != n:
            raise ValueError(f"{split}: wrote {i} images, expected {n}")
        y = np.ascontiguousarray(labels, dtype="<i8")
        self.f.create_dataset(f"{split}/y", data=y)
        self.hash.update(f"{split}_y:{y.dtype.str}:{[len(y)]}\n".encode())
        self.hash.update(y.data)
        self._order.append(split)

    def stats(self, split: str) -> tuple[tuple[float, ...], tuple[float, ...]]:
        """Per-channel mean/std (0..1 scale) of the images written for ``split``."""
        count = self.sizes[split] * self.shape[0] * self.shape[1]
        return stats_from_sums(self._sum[split], self._sq[split], count)

    @property
    def content_sha256(self) -> str:
        if self._order != ["test", "train"]:
            raise ValueError("write the test split, then the train split")
        return self.hash.hexdigest()

    def close(self, attrs: dict) -> Path:
        """Store ``attrs`` (plus format and hash) and move the file into place."""
        try:
            a = self.f.attrs
            a["format"] = FORMAT
            a["format_version"] = FORMAT_VERSION
            a["content_sha256"] = self.content_sha256
            a["created"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
            a["deepnets_bench_version"] = __version__
            for key, value in attrs.items():
                a[key] = value
            self.f.close()
            os.replace(self.tmp, self.path)
        finally:
            self.abort()
        return self.path

    def abort(self) -> None:
        try:
            self.f.close()
        except Exception:  # noqa: BLE001 - closing a file that failed mid-write
            pass
        if os.path.exists(self.tmp):
            os.unlink(self.tmp)


def stats_from_sums(total: np.ndarray, total_sq: np.ndarray, count: int
                    ) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """mean/std (0..1 scale) from per-channel sums of uint8 values and of their squares."""
    if count == 0:
        c = len(total)
        return (0.5,) * c, (0.25,) * c
    mean = total / (count * 255.0)
    mean_sq = total_sq / (count * 255.0 ** 2)
    std = np.sqrt(np.maximum(mean_sq - mean * mean, 1e-12))
    return tuple(float(m) for m in mean), tuple(float(s) for s in std)


def cache_attrs(path: str | os.PathLike) -> dict | None:
    """The attributes of a cache file plus split sizes, or None when it is missing,
    unreadable or of another format version (callers then rebuild it)."""
    try:
        with h5py.File(path, "r") as f:
            attrs = {k: _plain(v) for k, v in f.attrs.items()}
            if attrs.get("format") != FORMAT or attrs.get("format_version") != FORMAT_VERSION:
                return None
            attrs["n_train"] = int(f["train/x"].shape[0])
            attrs["n_test"] = int(f["test/x"].shape[0])
            attrs["shape"] = tuple(int(s) for s in f["test/x"].shape[1:])
            return attrs
    except (OSError, KeyError, ValueError):
        return None


def _mapped(path: str | os.PathLike, dset) -> np.ndarray:
    """A read-only (copy-on-write) memory map of an uncompressed, contiguous uint8 dataset:
    pages are read when touched, so a 7.5 GB split costs no resident memory up front."""
    if dset.size == 0:
        return np.zeros(dset.shape, np.uint8)
    offset = dset.id.get_offset()
    if dset.chunks is not None or dset.compression or offset is None or dset.dtype != np.uint8:
        return dset[()]  # not mappable (another writer's layout): read it
    return np.memmap(path, dtype=np.uint8, mode="c", offset=offset, shape=dset.shape)


def read_cache(path: str | os.PathLike, verify: bool = False,
               mapped: bool = False) -> ImageDataset:
    """Load a cache file written by :func:`write_cache`. With ``verify`` the content hash
    is computed from the pixels and labels read (and must match the one recorded), so the
    dataset's ``content_sha256`` is what the file holds, not what it claims. ``mapped``
    memory-maps the images instead of reading them (ImageNet: 7.5 GB of validation images);
    the dataset then says so (:attr:`ImageDataset.mapped`) and is converted batch by batch."""
    try:
        with h5py.File(path, "r") as f:
            a = {k: _plain(v) for k, v in f.attrs.items()}
            if a.get("format") != FORMAT or a.get("format_version") != FORMAT_VERSION:
                raise BenchError(
                    f"{path} is not a deepnets-bench image cache of format version {FORMAT_VERSION}",
                    "delete it and run `deepnets-bench download` again",
                )
            arrays = {f"{s}_{k}": (_mapped(path, f[f"{s}/x"]) if mapped and k == "x"
                                   else f[f"{s}/{k}"][()])
                      for s in ("train", "test") for k in ("x", "y")}
    except (OSError, KeyError) as err:
        raise BenchError(
            f"cannot read image cache {path} ({err})",
            "delete it and run `deepnets-bench download` again",
        ) from None
    ds = ImageDataset(
        name=a["name"],
        classes=json.loads(a["classes"]),
        class_names=json.loads(a["class_names"]),
        mean=tuple(a["mean"]),
        std=tuple(a["std"]),
        source=a.get("source", ""),
        extra=json.loads(a.get("extra", "{}")),
        mapped=mapped,
        **arrays,
    )
    if verify:
        if ds.content_sha256 != a["content_sha256"]:
            raise BenchError(
                f"image cache {path} is corrupt or was modified (its content hashes to "
                f"{ds.content_sha256[:12]}..., the file records {str(a['content_sha256'])[:12]}...)",
                "delete it and run `deepnets-bench download` again")
        return ds
    # Trusted: written from these very arrays; saves hashing hundreds of MB on every load.
    ds.__dict__["content_sha256"] = a["content_sha256"]
    return ds


def json_list(value: str | None, default: Sequence[str] = ()) -> list[str]:
    """A JSON list of strings stored in an attribute (classes, class names)."""
    try:
        out = json.loads(value) if value else list(default)
    except (TypeError, ValueError):
        return list(default)
    return [str(v) for v in out] if isinstance(out, list) else list(default)


def list_cache(root: str | os.PathLike | None = None) -> list[tuple[Path, dict | None]]:
    """Every ``*.h5`` in the image cache with its attributes (None: unreadable)."""
    return [(p, cache_attrs(p)) for p in sorted(images_dir(root).glob("*.h5"))]


def _plain(value):
    if isinstance(value, bytes):
        return value.decode()
    if isinstance(value, np.generic):
        return value.item()
    return value
