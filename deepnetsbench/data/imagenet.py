"""ImageNet validation images from a local folder, prepared as the official evaluation does.

The paper's ImageNet numbers come from ``torchvision``'s ImageNet validation set read with
its standard evaluation transform (RGB, shorter side resized to 256 with antialiased
bilinear interpolation, a 224 x 224 centre crop, ImageNet mean/std) and in a fixed shuffled
order: BatchNorm uses the statistics of each batch of 64, so the order changes the numbers.
The official loader shuffles with a generator seeded 1111 before every network; we store the
images in that order once, so every network sees the same batches as there.

The folder is the ImageNet validation set in class folders (``val/<wnid>/*.JPEG``, the
layout ``torchvision.datasets.ImageNet`` prepares from the devkit, or any folder of class
folders); a folder holding ``val/`` (and ``train/``, which is not read) works too. Classes
are the sorted folder names and images are listed as ``torchvision``'s ``ImageFolder``
lists them. Decoding runs once, in a small process pool, into the usual uint8 image cache
(``<root>/images/imagenet.h5``, 7.5 GB for 50,000 images); the evaluator memory-maps it and
normalises batch by batch (as float32 the images would need 30 GB). A later run reuses the
cache unless the folder's listing changed.
"""

from __future__ import annotations

import hashlib
import io
import json
import multiprocessing as mp
import os
from collections import deque
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from deepnetsbench.data.cache import CacheWriter, cache_attrs, cache_path, read_cache
from deepnetsbench.data.images import ImageDataset
from deepnetsbench.data.registry import DATASETS
from deepnetsbench.errors import BenchError
from deepnetsbench.paths import data_root

__all__ = ["CROP", "ENV_IMAGENET", "NAME", "OPTIONS", "ORDER_SEED", "RESIZE", "eval_transform",
           "find_val_folder", "import_imagenet", "load_imagenet", "official_order", "scan_val"]

NAME = "imagenet"
RESIZE, CROP = 256, 224
#: The seed the official loader re-seeds its shuffling generator with before every net.
ORDER_SEED = 1111
#: Where the ImageNet folder is when no ``--from``/``source`` names it.
ENV_IMAGENET = "DEEPNETS_BENCH_IMAGENET"
#: torchvision's ImageFolder extensions (case-insensitive).
EXTENSIONS = (".jpg", ".jpeg", ".png", ".ppm", ".bmp", ".pgm", ".tif", ".tiff", ".webp")
OPTIONS = json.dumps({"imagenet_eval": 1, "rgb": True, "resize": RESIZE, "crop": CROP,
                      "interpolation": "bilinear, antialias (torchvision resize of PIL images)",
                      "order": f"official shuffle, generator seed {ORDER_SEED}"}, sort_keys=True)
_BLOCK = 128  # images per decoding task (128 x 150 KB = 19 MB)
_LAYOUT_FIX = ("pass the ImageNet validation set in class folders (val/<wnid>/*.JPEG); "
               "torchvision.datasets.ImageNet(ROOT, split='val') prepares that layout once "
               "from ILSVRC2012_devkit_t12.tar.gz and ILSVRC2012_img_val.tar")


# ----------------------------------------------------------------------------- the folder


def _class_dirs(folder: Path) -> list[str]:
    try:
        return sorted(e.name for e in os.scandir(folder) if e.is_dir() and not e.name.startswith("."))
    except OSError as err:
        raise BenchError(f"cannot read {folder} ({err.strerror})", "check the path") from None


def find_val_folder(path: str | os.PathLike) -> Path:
    """The folder of class folders: ``path/val`` when there is one, else ``path``."""
    path = Path(path).expanduser()
    if not path.is_dir():
        raise BenchError(f"ImageNet folder {path} does not exist or is not a folder"
                         + (" (an archive: unpack it first)" if path.is_file() else ""),
                         _LAYOUT_FIX)
    val = path / "val"
    return val if val.is_dir() else path


def scan_val(folder: Path) -> tuple[list[str], list[Path], np.ndarray]:
    """(classes, image files, labels) in ``ImageFolder``'s order: sorted classes, each
    class folder walked in sorted order (sub-folders included), files sorted by name."""
    classes = _class_dirs(folder)
    files: list[Path] = []
    labels: list[int] = []
    for k, cls in enumerate(classes):
        n = len(files)
        for dirpath, _, names in sorted(os.walk(folder / cls, followlinks=True)):
            for name in sorted(names):
                if name.lower().endswith(EXTENSIONS) and not name.startswith("."):
                    files.append(Path(dirpath) / name)
        if len(files) == n:
            raise BenchError(f"class folder {folder / cls} holds no images",
                             f"remove it, or add its images ({', '.join(EXTENSIONS)})")
        labels.extend([k] * (len(files) - n))
    if not classes:
        flat = [n for n in os.listdir(folder) if n.lower().endswith(EXTENSIONS)]
        what = (f"{len(flat)} images but no class folders (the devkit's flat layout)"
                if flat else "no class folders")
        raise BenchError(f"{folder} has {what}", _LAYOUT_FIX)
    return classes, files, np.asarray(labels, dtype=np.int64)


def listing_sha256(folder: Path, files: list[Path]) -> str:
    """sha256 of the folder's image listing (relative names, sizes, modification times):
    it changes whenever an image is added, removed or rewritten."""
    h = hashlib.sha256(b"imagenet-val\n")
    for f in files:
        st = f.stat()
        h.update(f"{f.relative_to(folder).as_posix()}\t{st.st_size}\t{st.st_mtime_ns}\n".encode())
    return "dir:" + h.hexdigest()


def official_order(n: int, seed: int = ORDER_SEED) -> np.ndarray:
    """The order in which the official evaluation reads ``n`` images: torch's shuffling
    ``DataLoader`` with a generator seeded ``seed``, which draws one 64-bit number for the
    loader's base seed and then ``randperm(n)``."""
    import torch

    g = torch.Generator()
    g.manual_seed(seed)
    torch.empty((), dtype=torch.int64).random_(generator=g)
    return torch.randperm(n, generator=g).numpy().astype(np.int64)


# ----------------------------------------------------------------------------- decoding


def eval_transform(img) -> np.ndarray:
    """The official evaluation transform up to the tensor: RGB, ``Resize(256)``,
    ``CenterCrop(224)`` (torchvision's own functions on the PIL image), uint8 HWC."""
    from torchvision.transforms import functional as F

    img = img.convert("RGB")
    img = F.center_crop(F.resize(img, RESIZE), CROP)
    return np.asarray(img, dtype=np.uint8)


def _decode(paths: list[str]) -> tuple[bytes, str | None]:
    from PIL import Image

    out = []
    for p in paths:
        try:
            with open(p, "rb") as f:
                img = Image.open(io.BytesIO(f.read()))
                out.append(eval_transform(img).tobytes())
        except Exception as err:  # Pillow raises many types for bad bytes
            return b"", f"{p}: {type(err).__name__}: {err}"
    return b"".join(out), None


def _blocks(files: list[Path], pool, workers: int, bar) -> Iterator[np.ndarray]:
    """Decoded images in ``files``' order, ``_BLOCK`` at a time (in ``pool`` when given);
    at most two blocks per worker wait, so memory stays bounded."""
    chunks = [[str(f) for f in files[i:i + _BLOCK]] for i in range(0, len(files), _BLOCK)]
    pending: deque = deque()
    done = 0

    def take() -> np.ndarray:
        nonlocal done
        job, n = pending.popleft()
        raw, error = job.get() if pool else job
        if error:
            raise BenchError(f"cannot decode image {error}", "remove or replace the bad file")
        done += n
        if bar is not None:
            bar.update(done, done)
        return np.frombuffer(raw, np.uint8).reshape(n, CROP, CROP, 3)

    for chunk in chunks:
        pending.append((pool.apply_async(_decode, (chunk,)) if pool else _decode(chunk),
                        len(chunk)))
        while pending and (pool is None or len(pending) > 2 * workers):
            yield take()
    while pending:
        yield take()


def import_imagenet(path: str | os.PathLike, root: str | os.PathLike | None = None,
                    progress: bool = True, workers: int | None = None,
                    force: bool = False) -> Path:
    """Decode the validation images under ``path`` into the image cache (see the module
    doc); returns the cache file. Reused as is when the folder's listing is unchanged."""
    from deepnetsbench.data.importer import _check_known

    folder = find_val_folder(path)
    classes, files, labels = scan_val(folder)
    fingerprint = listing_sha256(folder, files)
    target = cache_path(NAME, root)
    attrs = None if force else cache_attrs(target)
    if attrs and attrs.get("source_sha256") == fingerprint and attrs.get("options") == OPTIONS:
        return target
    order = official_order(len(files))
    ordered = [files[i] for i in order]
    workers = min(8, os.cpu_count() or 1) if workers is None else workers
    pool = None
    if workers > 1 and len(files) > _BLOCK:
        # the pool before the progress bar starts its thread; fork needs no imports
        ctx = mp.get_context("fork" if "fork" in mp.get_all_start_methods() else "spawn")
        pool = ctx.Pool(workers)
    bar = None
    if progress:
        from deepnetsbench.data.archive import _Progress

        bar = _Progress(f"decoding {NAME} val", len(files))
    writer = CacheWriter(target, (CROP, CROP, 3), {"test": len(files), "train": 0})
    try:
        writer.write_split("test", _blocks(ordered, pool, workers, bar), labels[order])
        writer.write_split("train", iter(()), np.zeros(0, np.int64))
        _check_known(folder, NAME, len(classes), (CROP, CROP), CROP, writer.content_sha256)
        import PIL
        import torchvision

        info = DATASETS[NAME]
        return writer.close({
            "name": NAME, "classes": json.dumps(classes), "class_names": json.dumps(classes),
            "mean": np.asarray(info.mean, dtype=np.float64),
            "std": np.asarray(info.std, dtype=np.float64),
            "source": str(folder), "source_sha256": fingerprint, "options": OPTIONS,
            "extra": json.dumps({"split": "val", "images": len(files),
                                 "pillow": PIL.__version__,
                                 "torchvision": torchvision.__version__}, sort_keys=True)})
    except BaseException:
        writer.abort()
        raise
    finally:
        if pool is not None:
            pool.terminate()
            pool.join()
        if bar is not None:
            bar.close()


def load_imagenet(root: str | os.PathLike | None = None,
                  source: str | os.PathLike | None = None, progress: bool = True,
                  verify: bool = False) -> ImageDataset:
    """The memory-mapped ImageNet validation set: from ``source`` (or ``$DEEPNETS_BENCH_
    IMAGENET``, or ``<root>/imagenet``) decoded once, else the cache made earlier."""
    folder = source or os.environ.get(ENV_IMAGENET)
    if folder is None and (data_root(root) / NAME).is_dir():
        folder = data_root(root) / NAME
    target = cache_path(NAME, root)
    if folder is not None:
        target = import_imagenet(folder, root, progress=progress)
    else:
        attrs = cache_attrs(target)
        if attrs is None or attrs.get("options") != OPTIONS:
            raise BenchError(
                f"{NAME} cannot be downloaded automatically and is not in the cache "
                f"({target})", f"`deepnets-bench download --dataset imagenet --from DIR` (or "
                f"${ENV_IMAGENET}=DIR, or the folder <root>/imagenet) with DIR holding "
                "val/<wnid>/*.JPEG")
    return read_cache(target, verify=verify, mapped=True)
