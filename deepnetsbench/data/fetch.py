"""Get an image dataset into the cache: from the cache itself, an archive, a mirror of the
suite's archives, torchvision or Hugging Face ``datasets``.

Whatever the source, the result is the same uint8 HDF5 cache (see ``cache.py``), so every
later run loads in well under a second and offline machines only need the cache file or an
archive. The conversions from torchvision/HF objects are separate functions so that they
can be tested without a network.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

import numpy as np

from deepnetsbench.data.archive import archive_stem, load_archive
from deepnetsbench.data.cache import cache_attrs, cache_path, read_cache, write_cache
from deepnetsbench.data.images import ImageDataset
from deepnetsbench.data.registry import DATASETS, DatasetInfo, canonical_name
from deepnetsbench.data.synthetic import synthetic_dataset
from deepnetsbench.download import base_url, download_file, url_join
from deepnetsbench.errors import BenchError
from deepnetsbench.paths import data_root

# $DEEPNETS_BENCH_URL_IMAGES points at a folder of the suite's archives (file names below);
# when set it is used instead of torchvision/HF (e.g. file:///mnt/share/data).
MIRROR_KIND = "images"
MIRROR_FILES = {"tinyimagenet": "tinyimagenet32.tar.gz"}


def load_dataset(
    name: str,
    root: str | os.PathLike | None = None,
    download: bool = False,
    source: str | os.PathLike | None = None,
    progress: bool = True,
    verify: bool = False,
) -> ImageDataset:
    """Load ``name`` from the cache, else from ``source`` (archive or folder), else download.

    ``verify`` recomputes the content hash of a cached dataset from its pixels (the
    evaluator does, so results name what was scored, not what the cache claims).

    ``download=False`` never touches the network and raises a BenchError that says how to
    get the data. ``"synthetic"`` returns :func:`synthetic_dataset` (no cache).
    ImageNet is local only: its validation folder (``val/<wnid>/`` class folders) as
    ``source``, ``$DEEPNETS_BENCH_IMAGENET`` or ``<root>/imagenet``; it is decoded once with
    the official evaluation transform and memory-mapped (:mod:`deepnetsbench.data.imagenet`).
    """
    key = canonical_name(name)
    if key == "synthetic" and source is None:
        return synthetic_dataset()
    if key == "imagenet":  # the validation folder, decoded once, memory-mapped
        from deepnetsbench.data.imagenet import load_imagenet

        return load_imagenet(root, source, progress=progress, verify=verify)
    if source is not None:
        return load_archive(source, name=key, root=root, progress=progress)
    path = cache_path(key, root)
    if cache_attrs(path) is not None:
        return read_cache(path, verify=verify)
    if path.exists() and not download:
        raise BenchError(
            f"the cache file {path} is unreadable or from another version of the suite",
            f"delete it and run `deepnets-bench download --dataset {key}` (or with --from ARCHIVE)",
        )
    from_archive = f"`deepnets-bench download --dataset {key} --from ARCHIVE`"
    info = DATASETS.get(key)
    if info is None:
        raise BenchError(
            f"dataset {name!r} is not in the cache ({path}) and is not a registered dataset",
            f"load it from an archive with {from_archive} "
            f"(registered datasets: {', '.join(DATASETS)})",
        )
    if info.fetch == "local":
        raise BenchError(
            f"{key} cannot be downloaded automatically and is not in the cache ({path})",
            f"`deepnets-bench download --dataset {key} --from DIR` with DIR holding "
            "train/<class>/ and val/<class>/ image folders",
        )
    if not download:
        raise BenchError(
            f"{key} is not in the cache ({path})",
            f"run `deepnets-bench download --dataset {key}` (needs internet), or {from_archive}",
        )
    raw = data_root(root) / "raw" / key
    mirror = base_url(MIRROR_KIND, "")
    if mirror:
        return _from_mirror(info, mirror, raw, root, progress)
    try:
        if info.fetch == "torchvision":
            ds = fetch_torchvision(info, raw)
        else:
            ds = fetch_hf(info, raw, progress=progress)
    except (BenchError, KeyboardInterrupt):
        raise
    except Exception as err:  # network and library errors come in many types
        raise BenchError(
            f"could not download {key} ({type(err).__name__}: {str(err)[:200]})",
            f"check the network and re-run, or get the data elsewhere and use {from_archive}",
        ) from None
    write_cache(ds, path)
    return ds


def _from_mirror(info: DatasetInfo, mirror: str, raw: Path, root, progress: bool) -> ImageDataset:
    fname = MIRROR_FILES.get(info.name, f"{info.name}.tar.gz")
    archive = download_file(url_join(mirror, fname), raw / fname,
                            sha256=info.archive_sha256 or None, progress=progress)
    try:  # human-readable class names are optional
        classes = f"{archive_stem(fname)}-classes.txt"
        download_file(url_join(mirror, classes), raw / classes, progress=False, retries=0)
    except BenchError:
        pass
    return load_archive(archive, name=info.name, root=root, progress=progress)


# -- torchvision -----------------------------------------------------------------------------
def fetch_torchvision(info: DatasetInfo, raw_dir: str | os.PathLike) -> ImageDataset:
    """Download ``info`` with torchvision into ``raw_dir`` and convert it."""
    import torchvision.datasets as tvd

    cls = getattr(tvd, info.source)
    raw_dir = str(raw_dir)
    if info.name == "svhn":
        train, test = (cls(raw_dir, split=s, download=True) for s in ("train", "test"))
    else:
        train, test = (cls(raw_dir, train=t, download=True) for t in (True, False))
    return from_torchvision(info.name, train, test)


def _tv_arrays(ds) -> tuple[np.ndarray, np.ndarray]:
    data = ds.data
    data = data.numpy() if hasattr(data, "numpy") else np.asarray(data)
    targets = getattr(ds, "targets", None)
    if targets is None:
        targets = ds.labels  # SVHN
    targets = targets.numpy() if hasattr(targets, "numpy") else targets
    if data.ndim == 3:  # [N, H, W] grey
        data = data[..., None]
    elif data.ndim == 4 and data.shape[1] in (1, 3) and data.shape[3] not in (1, 3):
        data = data.transpose(0, 2, 3, 1)  # SVHN stores [N, C, H, W]
    return np.ascontiguousarray(data, dtype=np.uint8), np.asarray(targets, dtype=np.int64).reshape(-1)


def from_torchvision(name: str, train, test) -> ImageDataset:
    """Build an :class:`ImageDataset` from torchvision dataset objects (``.data`` plus
    ``.targets`` or ``.labels``), keeping their official order.

    Class ids follow the suite's archives: the class names when they are plain words
    (CIFAR), else the label numbers with torchvision's names as ``class_names`` (MNIST,
    Fashion-MNIST, SVHN), so both sources give the same labels.
    """
    info = DATASETS[canonical_name(name)]
    train_x, train_y = _tv_arrays(train)
    test_x, test_y = _tv_arrays(test)
    names = [str(c) for c in (getattr(train, "classes", None) or [])]
    num = max(info.num_classes, len(names))
    if len(names) == num and all(n and " " not in n and "/" not in n for n in names):
        classes, class_names = names, names
    else:
        classes = [str(i) for i in range(num)]
        class_names = names if len(names) == num else classes
    return ImageDataset(
        name=info.name, classes=classes, class_names=class_names,
        train_x=train_x, train_y=train_y, test_x=test_x, test_y=test_y,
        mean=info.mean, std=info.std, source=f"torchvision:{info.source}",
    )


# -- Hugging Face ----------------------------------------------------------------------------
def fetch_hf(info: DatasetInfo, raw_dir: str | os.PathLike, progress: bool = True) -> ImageDataset:
    """Download ``info.source`` with HF ``datasets`` into ``raw_dir`` and convert it."""
    import datasets

    d = datasets.load_dataset(info.source, cache_dir=str(raw_dir))
    test_key = next(k for k in ("valid", "validation", "test") if k in d)
    names = d["train"].features["label"].names
    return from_hf(info.name, d["train"], d[test_key], names, image_size=info.image_size or 32,
                   progress=progress)


def from_hf(
    name: str,
    train: Iterable[dict],
    test: Iterable[dict],
    label_names: list[str],
    image_size: int = 32,
    progress: bool = False,
) -> ImageDataset:
    """Build an :class:`ImageDataset` from HF-style splits of ``{"image": PIL, "label": int}``.

    Images are resized to ``image_size`` (antialiased bilinear) and labels are renumbered so
    that classes are the sorted ``label_names``, as for the suite's archives.
    """
    from PIL import Image

    info = DATASETS.get(canonical_name(name))
    channels = info.channels if info else 3
    mode = "L" if channels == 1 else "RGB"
    classes = sorted(label_names)
    remap = np.asarray([classes.index(n) for n in label_names], dtype=np.int64)

    def convert(split: Iterable[dict], label: str) -> tuple[np.ndarray, np.ndarray]:
        xs, ys = [], []
        rows = split
        if progress:
            from rich.progress import track

            rows = track(split, description=f"converting {name} {label}", total=len(split))
        for row in rows:
            img = row["image"]
            img = img if img.mode == mode else img.convert(mode)
            if img.size != (image_size, image_size):
                img = img.resize((image_size, image_size), Image.Resampling.BILINEAR)
            xs.append(np.asarray(img, dtype=np.uint8).reshape(image_size, image_size, channels))
            ys.append(int(row["label"]))
        x = np.stack(xs) if xs else np.zeros((0, image_size, image_size, channels), np.uint8)
        return x, remap[np.asarray(ys, dtype=np.int64)]

    train_x, train_y = convert(train, "train")
    test_x, test_y = convert(test, "test")
    if info is not None:
        mean, std = info.mean, info.std
    else:
        from deepnetsbench.data.images import compute_stats

        mean, std = compute_stats(train_x)
    return ImageDataset(
        name=info.name if info else name, classes=classes, train_x=train_x, train_y=train_y,
        test_x=test_x, test_y=test_y, mean=mean, std=std,
        source=f"hf:{info.source}" if info else "hf",
    )
