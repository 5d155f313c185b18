"""Decode an archive into the image cache in bounded memory.

Images are decoded in a small process pool, batch by batch, and spooled to a temporary file
in archive order; the cache is then written split by split in its fixed shuffled order,
reading each image back with ``pread`` (no mapping of the spool, so the resident memory
stays at a few blocks whatever the dataset's size: a 13k-image 224 px archive imports in a
few hundred MB). The content hash and the statistics are computed on the way
(:class:`~deepnetsbench.data.cache.CacheWriter`).

Colour is decided per dataset, not by its first image: a dataset with any colour image is
RGB (grey images are expanded, as Pillow's ``convert("RGB")`` would), one whose images are
all grey stays one channel. Registered datasets use their registered channels, and an
archive imported under a registered name must match it: class count, image size and, when
releases pin it, the content hash; otherwise it is refused and asked for a name of its own.
"""

from __future__ import annotations

import io
import json
import multiprocessing as mp
import os
import re
import tarfile
import tempfile
import zipfile
import zlib
from collections import deque
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from deepnetsbench.data.cache import CacheWriter
from deepnetsbench.data.registry import DATASETS
from deepnetsbench.errors import BenchError

__all__ = ["ORDER_SEED", "decode_to_cache"]

ORDER_SEED = 0  # the fixed shuffle of each split (see deepnetsbench.data.archive)
BATCH = 1024  # most images per decoding task
BATCH_BYTES = 16 << 20  # decoded pixels per decoding task and per written block
_GREY_MODES = {"1", "L", "LA", "I", "I;16", "I;16B", "I;16L", "I;16N", "F"}


# -- decoding (worker side) ------------------------------------------------------------------
def _fit(im, size: int, crop: float):
    """Resize so the shorter side is ``size / crop``, then centre-crop ``size x size``."""
    from PIL import Image

    w, h = im.size
    short = max(size, round(size / crop))
    if (w, h) != (short, short) or crop != 1.0 or w != h:
        scale = short / min(w, h)
        nw, nh = max(short, round(w * scale)), max(short, round(h * scale))
        im = im.resize((nw, nh), Image.Resampling.BILINEAR, reducing_gap=None)
        left, top = (nw - size) // 2, (nh - size) // 2
        im = im.crop((left, top, left + size, top + size))
    return im


def _decode_batch(args: tuple) -> tuple[bytes, list[tuple[int, int, int]], str | None]:
    """Decode a batch to raw bytes; returns (pixels, (width, height, channels) per image,
    error or None). ``mode`` None keeps each image grey ("L") or colour ("RGB")."""
    from PIL import Image

    items, mode, size, crop = args
    out, sizes = [], []
    for member, data in items:
        try:
            with Image.open(io.BytesIO(data)) as im:
                target = mode or ("L" if im.mode in _GREY_MODES else "RGB")
                img = im if im.mode == target else im.convert(target)
                if size and img.size != (size, size):
                    img = _fit(img, size, crop)
                out.append(img.tobytes())
                sizes.append((img.size[0], img.size[1], 1 if target == "L" else 3))
        except Exception as err:  # Pillow raises many types for bad bytes
            return b"", [], f"{member}: {type(err).__name__}: {err}"
    return b"".join(out), sizes, None


# -- the spool -------------------------------------------------------------------------------
class _Spool:
    """Decoded images in archive order, in a temporary file beside the cache."""

    def __init__(self, folder: Path):
        folder.mkdir(parents=True, exist_ok=True)
        self.file = tempfile.TemporaryFile(dir=folder, prefix=".decoding-")
        self.offsets: list[int] = []
        self.channels: list[int] = []
        self.size = 0

    def add(self, raw: bytes, sizes: list[tuple[int, int, int]]) -> None:
        self.file.write(raw)
        self.file.flush()  # read back with pread, below the buffer
        for w, h, c in sizes:
            self.offsets.append(self.size)
            self.channels.append(c)
            self.size += w * h * c

    def block(self, idx: np.ndarray, h: int, w: int, channels: int) -> np.ndarray:
        """Images ``idx`` as ``[k, h, w, channels]`` (grey ones expanded to RGB)."""
        out = np.empty((len(idx), h, w, channels), np.uint8)
        fd = self.file.fileno()
        for j, i in enumerate(idx):
            c = self.channels[i]
            raw = os.pread(fd, h * w * c, self.offsets[i])
            img = np.frombuffer(raw, np.uint8).reshape(h, w, c)
            out[j] = img if c == channels else np.repeat(img, channels, axis=2)
        return out

    def close(self) -> None:
        self.file.close()


# -- the pass over the archive ---------------------------------------------------------------
def _corrupt(path: Path, err: Exception) -> BenchError:
    return BenchError(
        f"{path} is not a readable archive or is truncated ({type(err).__name__}: {err})",
        "download it again and compare its sha256 with the published one, "
        "or pass the right file with --from",
    )


def _decode(path: Path, name: str, mode: str | None, image_size: int | None, crop: float,
            train_per_class: int | None, workers: int | None, progress: bool, spool: _Spool
            ) -> tuple[list[tuple[str, str, str]], tuple[int, int] | None, dict[str, int]]:
    """Decode every image of ``path`` into ``spool``; returns (keys in spool order, image
    (width, height), skipped files by extension)."""
    from deepnetsbench.data import archive as arc

    workers = min(2, os.cpu_count() or 1) if workers is None else workers
    keys: list[tuple[str, str, str]] = []
    shape: tuple[int, int] | None = (image_size, image_size) if image_size else None
    per_class: dict[str, int] = {}
    counter = [0]
    skipped: dict[str, int] = {}
    pending: deque[tuple[object, list[tuple[str, str, str]]]] = deque()
    batch: list[tuple[str, bytes]] = []
    batch_keys: list[tuple[str, str, str]] = []
    limit = [min(arc.BATCH, 64)]  # first tasks small: their results size the later ones
    pool = None
    if workers > 1:
        # Pool before the progress bar starts its thread; fork is cheap and needs no imports.
        ctx = mp.get_context("fork" if "fork" in mp.get_all_start_methods() else "spawn")
        pool = ctx.Pool(workers)
    bar = arc._Progress(f"decoding {name}", arc._source_size(path)) if progress else None

    def finish() -> None:
        nonlocal shape
        job, job_keys = pending.popleft()
        raw, sizes, error = job.get() if pool else job
        if error:
            raise BenchError(f"{path}: cannot decode image {error}",
                             "the archive is corrupt: download it again, or remove the bad file")
        shape = shape or sizes[0][:2]
        for (w, h, _), key in zip(sizes, job_keys):
            if (w, h) != shape:
                raise BenchError(
                    f"{path}: image {'/'.join(key)} is {w}x{h}, others are "
                    f"{shape[0]}x{shape[1]}",
                    "pass an image size to resize every image (--image-size N)")
        per_image = max(1, len(raw) // max(1, len(sizes)))
        limit[0] = max(8, min(arc.BATCH, BATCH_BYTES // per_image))
        spool.add(raw, sizes)
        keys.extend(job_keys)
        if bar:
            bar.update(counter[0], len(keys))

    def submit() -> None:
        args = (list(batch), mode, image_size, crop)
        job = pool.apply_async(_decode_batch, (args,)) if pool else _decode_batch(args)
        pending.append((job, list(batch_keys)))
        batch.clear()
        batch_keys.clear()
        # Results are taken in order; at most two batches per worker wait, bounding memory.
        while pending and (pool is None or len(pending) > 2 * workers):
            finish()

    try:
        for member, data in arc._members(path, counter, skipped):
            key = arc._classify(member)  # not None: _members only yields image members
            if train_per_class is not None and key[0] == "train":
                seen = per_class.get(key[1], 0)
                if seen >= train_per_class:
                    continue
                per_class[key[1]] = seen + 1
            batch.append((member, data))
            batch_keys.append(key)
            if len(batch) >= limit[0]:
                submit()
        if batch:
            submit()
        while pending:
            finish()
    except (tarfile.TarError, zipfile.BadZipFile, zlib.error, EOFError, OSError) as err:
        # OSError covers gzip.BadGzipFile, lzma errors and truncated streams
        raise _corrupt(path, err) from None
    finally:
        if pool is not None:
            pool.terminate()
            pool.join()
        if bar:
            bar.close()
    return keys, shape, skipped


# -- writing the cache -----------------------------------------------------------------------
def _natural_key(text: str) -> tuple:
    return tuple((0, int(t), "") if t.isdigit() else (1, 0, t) for t in re.split(r"(\d+)", text) if t)


def _sorted_classes(names: set[str]) -> list[str]:
    if names and all(n.isdigit() for n in names):
        return sorted(names, key=int)
    return sorted(names)


def _check_found(path: Path, keys, train_per_class, skipped: dict[str, int]) -> str:
    from deepnetsbench.data.archive import IMAGE_EXTS

    found = {s: sum(1 for k in keys if k[0] == s) for s in ("train", "test", "val")}
    test_split = "test" if found["test"] else "val"
    missing = [s for s, n in (("train", found["train"]), ("test", found[test_split])) if n == 0]
    if missing == ["train"] and train_per_class == 0:
        missing = []
    if missing:
        other = ", ".join(f"{n} {ext or '(no extension)'}" for ext, n in
                          sorted(skipped.items(), key=lambda kv: -kv[1])[:4])
        raise BenchError(
            f"{path} has no images under {' or '.join(m + '/<class>/' for m in missing)} "
            f"(found train={found['train']}, test={found['test']}, val={found['val']}"
            + (f"; skipped files in class folders: {other}" if other else "") + ")",
            "the archive must hold train/<class>/<image> and test/<class>/<image> "
            f"({', '.join(e.lstrip('.') for e in IMAGE_EXTS)})")
    return test_split


def _order(keys, test_split: str, classes: list[str]) -> dict[str, np.ndarray]:
    """Spool positions of each split in the cache's order: sorted by (class, natural file
    name), then shuffled with the fixed seed, so the same images give the same content
    whatever the archive format."""
    label = {c: i for i, c in enumerate(classes)}
    rng = np.random.default_rng(ORDER_SEED)
    out = {}
    for split, src in (("train", "train"), ("test", test_split)):
        idx = [i for i, k in enumerate(keys) if k[0] == src]
        idx.sort(key=lambda i: (label[keys[i][1]], _natural_key(keys[i][2])))
        out[split] = np.asarray(idx, dtype=np.int64)[rng.permutation(len(idx))]
    return out


def _blocks(spool: _Spool, idx: np.ndarray, h: int, w: int, c: int) -> Iterator[np.ndarray]:
    step = max(1, BATCH_BYTES // max(1, h * w * c))
    for i in range(0, len(idx), step):
        yield spool.block(idx[i:i + step], h, w, c)


def decode_to_cache(path: Path, name: str, target: Path, *, mode: str | None,
                    image_size: int | None, crop: float, train_per_class: int | None,
                    workers: int | None, progress: bool, class_names_for, attrs: dict) -> Path:
    """Decode ``path`` into the cache file ``target`` (see the module docstring).
    ``class_names_for(classes)`` gives human-readable names (or None); ``attrs`` are stored
    with the file (source, options, fingerprint)."""
    spool = _Spool(target.parent)
    try:
        keys, shape, skipped = _decode(path, name, mode, image_size, crop, train_per_class,
                                       workers, progress, spool)
        test_split = _check_found(path, keys, train_per_class, skipped)
        colour = mode == "RGB" or (mode is None and any(c == 3 for c in spool.channels))
        channels = 3 if colour else 1
        w, h = shape if shape else (0, 0)
        classes = _sorted_classes({k[1] for k in keys if k[0] in ("train", test_split)})
        label = {c: i for i, c in enumerate(classes)}
        order = _order(keys, test_split, classes)
        labels = {s: np.asarray([label[keys[i][1]] for i in idx], dtype=np.int64)
                  for s, idx in order.items()}
        writer = CacheWriter(target, (h, w, channels),
                             {s: len(idx) for s, idx in order.items()})
        try:
            for split in ("test", "train"):
                writer.write_split(split, _blocks(spool, order[split], h, w, channels),
                                   labels[split])
            _check_known(path, name, len(classes), (h, w), image_size,
                         writer.content_sha256 if train_per_class is None else None)
            info = DATASETS.get(name)
            if info is not None and info.channels == channels:
                mean, std = info.mean, info.std
            else:
                mean, std = writer.stats("train" if len(order["train"]) else "test")
            names = class_names_for(classes) or classes
            return writer.close({
                "name": name, "classes": json.dumps(classes), "class_names": json.dumps(names),
                "mean": np.asarray(mean, dtype=np.float64),
                "std": np.asarray(std, dtype=np.float64),
                "extra": json.dumps({"archive": path.name,
                                     "grey_images_expanded": int(sum(
                                         1 for c in spool.channels if c == 1)) if colour else 0},
                                    sort_keys=True),
                **attrs})
        except BaseException:
            writer.abort()
            raise
    finally:
        spool.close()


def _check_known(path: Path, name: str, num_classes: int, hw: tuple[int, int],
                 image_size: int | None, content_sha256: str | None) -> None:
    """An archive imported under a registered name must be that dataset. ``content_sha256``
    is None for a deliberate subset (``train_per_class``), which cannot match a release and
    which no leaderboard accepts anyway (its hash is not released)."""
    info = DATASETS.get(name)
    if info is None:
        return
    problems = []
    if num_classes != info.num_classes:
        problems.append(f"{num_classes} classes, {name} has {info.num_classes}")
    if info.image_size is not None and image_size is None and hw != (info.image_size,) * 2:
        problems.append(f"{hw[1]}x{hw[0]} images, {name}'s are "
                        f"{info.image_size}x{info.image_size}")
    if not problems and content_sha256 is not None:
        from deepnetsbench.releases import load_releases

        released = load_releases()["datasets"].get(name) or {}
        if released and content_sha256 not in released:
            problems.append(f"content sha256 {content_sha256[:12]}... is none of the "
                            f"{len(released)} released {name} contents")
    if problems:
        raise BenchError(f"{path} is not the registered {name} ({'; '.join(problems)})",
                         f"import it under a name of its own, e.g. --dataset {name}-custom "
                         "(registered names are reserved for the registered data)")
