"""Load image datasets from archives or folders of ``train/<class>/*`` and ``test/<class>/*``.

The archive is streamed member by member (nothing is extracted to disk), images are decoded
with Pillow in a small process pool, and the result is cached as uint8 HDF5 keyed by the
archive's sha256, so only the first call pays for decoding.

Order is made independent of the archive: classes are the sorted folder names (numerically
when all are integers), images are sorted by (class, file name) and then shuffled with a
fixed seed, so any prefix of a split is a random sample of it and the same images give the
same ``content_sha256`` whatever the archive format.
"""

from __future__ import annotations

import hashlib
import io
import json
import multiprocessing as mp
import os
import re
import tarfile
import zipfile
import zlib
from collections import deque
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from deepnetsbench.data.cache import cache_attrs, cache_path, read_cache, write_cache
from deepnetsbench.data.images import ImageDataset, compute_stats
from deepnetsbench.data.registry import DATASETS, canonical_name
from deepnetsbench.download import file_hash
from deepnetsbench.errors import BenchError

ARCHIVE_SUFFIXES = (".tar.gz", ".tgz", ".tar.bz2", ".tbz2", ".tar.xz", ".txz", ".tar", ".zip")
IMAGE_EXTS = (".jpg", ".jpeg", ".png", ".bmp")
ORDER_SEED = 0  # the fixed shuffle of each split (see module docstring)
BATCH = 1024  # images per decoding task
_GREY_MODES = {"1", "L", "LA", "I", "I;16", "I;16B", "I;16L", "F"}


def archive_stem(path: str | os.PathLike) -> str:
    """``cifar10`` for ``.../cifar10.tar.gz`` (or a folder ``.../cifar10``)."""
    name = Path(path).name
    for suffix in ARCHIVE_SUFFIXES:
        if name.lower().endswith(suffix):
            return name[: -len(suffix)]
    return name


def load_archive(
    path: str | os.PathLike,
    name: str | None = None,
    root: str | os.PathLike | None = None,
    progress: bool = True,
    *,
    image_size: int | None = None,
    crop: float | None = None,
    train_per_class: int | None = None,
    workers: int | None = None,
    force: bool = False,
) -> ImageDataset:
    """Decode the archive (or folder) at ``path`` into the cache and return the dataset.

    ``name`` defaults to the archive's stem (registry aliases resolved, so
    ``tinyimagenet32.tar.gz`` becomes ``tinyimagenet``). A cache built from the same bytes
    with the same options is loaded directly. ``image_size`` resizes every image to a square
    (shorter side to ``image_size / crop``, then a centre crop); it defaults to the native
    size, except for ImageNet (224, crop 0.875). ``train_per_class`` caps the train images
    kept per class (ImageNet default 0: evaluation only needs the validation images).
    ``workers`` decoding processes (default 2; 0 or 1 decode in this process).
    """
    path = Path(path).expanduser()
    if not path.exists():
        raise BenchError(f"archive {path} does not exist", "check the path given to --from")
    name = canonical_name(name or archive_stem(path))
    info = DATASETS.get(name)
    if info is not None and info.image_size is None:
        image_size = image_size or info.eval_size
        crop = crop if crop is not None else 0.875
        train_per_class = 0 if train_per_class is None else train_per_class
    crop = 1.0 if crop is None else float(crop)
    if not 0 < crop <= 1:
        raise BenchError(f"crop must lie in (0, 1], got {crop}", "pass e.g. crop=0.875")
    mode = None if info is None else ("L" if info.channels == 1 else "RGB")
    options = json.dumps(
        {"image_size": image_size, "crop": crop, "train_per_class": train_per_class, "mode": mode,
         "order_seed": ORDER_SEED},
        sort_keys=True,
    )
    target = cache_path(name, root)
    fingerprint = _fingerprint(path)
    attrs = None if force else cache_attrs(target)
    if attrs and attrs.get("source_sha256") == fingerprint and attrs.get("options") == options:
        ds = read_cache(target)
    else:
        ds = _decode(path, name, mode, image_size, crop, train_per_class, workers, progress)
        write_cache(ds, target, source_sha256=fingerprint, options=options)
    names = _read_class_names(path, name, ds.classes)
    if names is not None:
        ds.class_names = names
    return ds


# -- reading members -------------------------------------------------------------------------
def _classify(member: str) -> tuple[str, str, str] | None:
    """(split, class, file) for ``[prefix/]{train,test,val}/<class>/<file>.<image ext>``."""
    parts = member.replace("\\", "/").split("/")
    if len(parts) < 3:
        return None
    split, cls, fname = parts[-3].lower(), parts[-2], parts[-1]
    if split not in ("train", "test", "val") or not fname.lower().endswith(IMAGE_EXTS):
        return None
    if fname.startswith(".") or cls.startswith(".") or "__MACOSX" in parts:  # macOS debris
        return None
    return split, cls, fname


class _TarStream:
    """Minimal sequential reader of tar members (ustar, GNU and pax headers).

    ``tarfile`` spends ~30 us of Python per member parsing headers, which made reading
    the archive, not decoding, the bottleneck for 60,000 tiny images; this reader parses
    only what is needed (name, size, type) and still checks each header's checksum.
    """

    def __init__(self, fileobj):
        self.f = fileobj
        self.buf = b""
        self.pos = 0

    def _take(self, n: int) -> bytes:
        if self.pos + n > len(self.buf):
            chunks, have = [self.buf[self.pos :]], len(self.buf) - self.pos
            while have < n:
                chunk = self.f.read(max(1 << 20, n - have))
                if not chunk:
                    raise EOFError("unexpected end of tar data (truncated archive)")
                chunks.append(chunk)
                have += len(chunk)
            self.buf, self.pos = b"".join(chunks), 0
        out = self.buf[self.pos : self.pos + n]
        self.pos += n
        return out

    def _data(self, size: int) -> bytes:
        data = self._take(size)
        if size % 512:
            self._take(512 - size % 512)
        return data

    def files(self, want) -> Iterator[tuple[str, bytes]]:
        """Yield (name, bytes) of the regular files whose name ``want(name)`` accepts."""
        long_name: str | None = None
        pax: dict[str, str] = {}
        while True:
            if self.pos == len(self.buf):
                self.buf, self.pos = self.f.read(1 << 20), 0
                if not self.buf:
                    return  # clean end without the two zero blocks some writers omit
            header = self._take(512)  # a partial header raises EOFError (truncated)
            if header.count(0) == 512:
                return
            if _tar_number(header[148:156]) != sum(header) - sum(header[148:156]) + 256:
                raise tarfile.ReadError("bad tar header checksum")
            kind = header[156:157]
            size = max(0, _tar_number(header[124:136]))
            if "size" in pax:
                size = int(pax["size"])
            if kind in (b"L", b"x", b"g"):
                data = self._data(size)
                if kind == b"L":
                    long_name = data.split(b"\0", 1)[0].decode("utf-8", "surrogateescape")
                elif kind == b"x":
                    pax = _pax_records(data)
                continue
            name = header[:100].split(b"\0", 1)[0]
            if header[257:263] == b"ustar\x00":  # POSIX: a prefix extends the name
                prefix = header[345:500].split(b"\0", 1)[0]
                if prefix:
                    name = prefix + b"/" + name
            name = pax.get("path") or long_name or name.decode("utf-8", "surrogateescape")
            long_name, pax = None, {}
            if kind in (b"0", b"\0", b"7") and want(name):
                yield name, self._data(size)
            elif kind not in (b"1", b"2", b"3", b"4", b"5", b"6"):  # links/devices have no data
                self._data(size)


def _tar_number(field: bytes) -> int:
    if field[0] & 0x80:  # GNU base-256 for sizes over 8 GB
        return int.from_bytes(field[1:], "big")
    text = field.split(b"\0", 1)[0].strip()
    try:
        return int(text, 8) if text else -1
    except ValueError:
        raise tarfile.ReadError("not a tar header") from None


def _pax_records(data: bytes) -> dict[str, str]:
    out, pos = {}, 0
    try:
        while pos < len(data) and data[pos]:
            space = data.index(b" ", pos)
            length = int(data[pos:space])
            if length <= 0:
                break
            key, _, value = data[space + 1 : pos + length - 1].partition(b"=")
            out[key.decode("utf-8", "replace")] = value.decode("utf-8", "surrogateescape")
            pos += length
    except ValueError:
        raise tarfile.ReadError("bad pax header") from None
    return out


def _open_stream(path: Path):
    """The decompressed byte stream of a (possibly gzip/bz2/xz compressed) tar file."""
    import bz2
    import gzip
    import lzma

    with open(path, "rb") as f:
        magic = f.read(6)
    if magic[:2] == b"\x1f\x8b":
        return gzip.open(path, "rb")
    if magic[:3] == b"BZh":
        return bz2.open(path, "rb")
    if magic == b"\xfd7zXZ\x00":
        return lzma.open(path, "rb")
    return open(path, "rb")


def _dir_files(path: Path) -> list[tuple[Path, str]]:
    out = []
    for split in ("train", "test", "val"):
        base = path / split
        if base.is_dir():
            for dirpath, dirnames, filenames in os.walk(base):
                dirnames.sort()
                for fname in sorted(filenames):
                    full = Path(dirpath) / fname
                    out.append((full, full.relative_to(path).as_posix()))
    return out


def _members(path: Path, counter: list[int]) -> Iterator[tuple[str, bytes]]:
    """Yield (member name, bytes) in archive order; ``counter[0]`` tracks source bytes read."""
    if path.is_dir():
        for full, rel in _dir_files(path):
            if _classify(rel):
                data = full.read_bytes()
                counter[0] += len(data)
                yield rel, data
    elif zipfile.is_zipfile(path):
        with zipfile.ZipFile(path) as zf:
            for info in zf.infolist():
                if not info.is_dir() and _classify(info.filename):
                    counter[0] += info.compress_size
                    yield info.filename, zf.read(info)
    else:
        total = path.stat().st_size
        with _open_stream(path) as stream:
            for i, (member, data) in enumerate(_TarStream(stream).files(_classify)):
                if i % 256 == 0:
                    counter[0] = min(total, _compressed_pos(stream))
                yield member, data
        counter[0] = total


def _compressed_pos(stream) -> int:
    raw = getattr(stream, "fileobj", None) or getattr(stream, "_fp", None) or stream
    try:
        return raw.tell()
    except (OSError, ValueError, AttributeError):
        return 0


def _fingerprint(path: Path) -> str:
    """sha256 of an archive file; for a folder, sha256 of its image listing (names, sizes,
    modification times), which changes whenever a file is added, removed or rewritten."""
    if not path.is_dir():
        return file_hash(path)
    h = hashlib.sha256(b"dir\n")
    for full, rel in _dir_files(path):
        st = full.stat()
        h.update(f"{rel}\t{st.st_size}\t{st.st_mtime_ns}\n".encode())
    return "dir:" + h.hexdigest()


def _source_size(path: Path) -> int:
    if path.is_dir():
        return sum(full.stat().st_size for full, rel in _dir_files(path) if _classify(rel))
    return path.stat().st_size


# -- decoding --------------------------------------------------------------------------------
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


def _decode_batch(args: tuple) -> tuple[bytes, list[tuple[int, int]], str | None]:
    """Decode a batch to raw bytes; returns (pixels, sizes, error or None)."""
    from PIL import Image

    items, mode, size, crop = args
    out, sizes = [], []
    for member, data in items:
        try:
            with Image.open(io.BytesIO(data)) as im:
                img = im if im.mode == mode else im.convert(mode)
                if size and img.size != (size, size):
                    img = _fit(img, size, crop)
                out.append(img.tobytes())
                sizes.append(img.size)
        except Exception as err:  # Pillow raises many types for bad bytes
            return b"", [], f"{member}: {type(err).__name__}: {err}"
    return b"".join(out), sizes, None


def _peek_mode(data: bytes) -> str:
    from PIL import Image

    with Image.open(io.BytesIO(data)) as im:
        return "L" if im.mode in _GREY_MODES else "RGB"


def _natural_key(text: str) -> tuple:
    return tuple((0, int(t), "") if t.isdigit() else (1, 0, t) for t in re.split(r"(\d+)", text) if t)


def _sorted_classes(names: set[str]) -> list[str]:
    if names and all(n.isdigit() for n in names):
        return sorted(names, key=int)
    return sorted(names)


def _corrupt(path: Path, err: Exception) -> BenchError:
    return BenchError(
        f"{path} is not a readable archive or is truncated ({type(err).__name__}: {err})",
        "download it again and compare its sha256 with the published one, "
        "or pass the right file with --from",
    )


def _decode(
    path: Path,
    name: str,
    mode: str | None,
    image_size: int | None,
    crop: float,
    train_per_class: int | None,
    workers: int | None,
    progress: bool,
) -> ImageDataset:
    workers = min(2, os.cpu_count() or 1) if workers is None else workers
    keys: list[tuple[str, str, str]] = []  # (split, class, file) of every decoded image, in order
    pixels = bytearray()
    shape: tuple[int, int] | None = (image_size, image_size) if image_size else None
    per_class: dict[str, int] = {}
    counter = [0]
    pending: deque[tuple[object, list[tuple[str, str, str]]]] = deque()
    batch: list[tuple[str, bytes]] = []
    batch_keys: list[tuple[str, str, str]] = []
    pool = None
    if workers > 1:
        # Pool before the progress bar starts its thread; fork is cheap and needs no imports.
        ctx = mp.get_context("fork" if "fork" in mp.get_all_start_methods() else "spawn")
        pool = ctx.Pool(workers)
    bar = _Progress(f"decoding {name}", _source_size(path)) if progress else None

    def finish() -> None:
        nonlocal shape
        job, job_keys = pending.popleft()
        raw, sizes, error = job.get() if pool else job
        if error:
            raise BenchError(
                f"{path}: cannot decode image {error}",
                "the archive is corrupt: download it again, or remove the bad file",
            )
        shape = shape or sizes[0]
        for size, key in zip(sizes, job_keys):
            if size != shape:
                raise BenchError(
                    f"{path}: image {'/'.join(key)} is {size[0]}x{size[1]}, "
                    f"others are {shape[0]}x{shape[1]}",
                    "pass an image size to resize every image (--image-size N)",
                )
        keys.extend(job_keys)
        pixels.extend(raw)
        if bar:
            bar.update(counter[0], len(keys))

    def submit() -> None:
        nonlocal mode
        mode = mode or _peek_mode(batch[0][1])
        args = (list(batch), mode, image_size, crop)
        job = pool.apply_async(_decode_batch, (args,)) if pool else _decode_batch(args)
        pending.append((job, list(batch_keys)))
        batch.clear()
        batch_keys.clear()
        # Results are taken in order; at most two batches per worker wait, bounding memory.
        while pending and (pool is None or len(pending) > 2 * workers):
            finish()

    try:
        for member, data in _members(path, counter):
            key = _classify(member)  # not None: _members only yields image members
            if train_per_class is not None and key[0] == "train":
                seen = per_class.get(key[1], 0)
                if seen >= train_per_class:
                    continue
                per_class[key[1]] = seen + 1
            batch.append((member, data))
            batch_keys.append(key)
            if len(batch) >= BATCH:
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
    return _assemble(path, name, keys, pixels, shape, mode or "RGB", train_per_class)


def _assemble(
    path: Path,
    name: str,
    keys: list[tuple[str, str, str]],
    pixels: bytearray,
    shape: tuple[int, int] | None,
    mode: str,
    train_per_class: int | None,
) -> ImageDataset:
    found = {s: sum(1 for k in keys if k[0] == s) for s in ("train", "test", "val")}
    test_split = "test" if found["test"] else "val"
    missing = [s for s, n in (("train", found["train"]), ("test", found[test_split])) if n == 0]
    if missing == ["train"] and train_per_class == 0:
        missing = []
    if missing:
        raise BenchError(
            f"{path} has no images under {' or '.join(m + '/<class>/' for m in missing)} "
            f"(found train={found['train']}, test={found['test']}, val={found['val']})",
            "the archive must hold train/<class>/<image> and test/<class>/<image> "
            "(jpg, jpeg, png or bmp)",
        )
    channels = 1 if mode == "L" else 3
    w, h = shape if shape else (0, 0)
    x_all = np.frombuffer(pixels, dtype=np.uint8).reshape(len(keys), h, w, channels)
    classes = _sorted_classes({k[1] for k in keys if k[0] in ("train", test_split)})
    label = {c: i for i, c in enumerate(classes)}
    rng = np.random.default_rng(ORDER_SEED)
    arrays = {}
    for split, src in (("train", "train"), ("test", test_split)):
        idx = [i for i, k in enumerate(keys) if k[0] == src]
        idx.sort(key=lambda i: (label[keys[i][1]], _natural_key(keys[i][2])))
        idx = np.asarray(idx, dtype=np.int64)[rng.permutation(len(idx))]
        arrays[f"{split}_x"] = x_all[idx] if len(idx) else np.zeros((0, h, w, channels), np.uint8)
        arrays[f"{split}_y"] = np.asarray([label[keys[i][1]] for i in idx], dtype=np.int64)
    info = DATASETS.get(name)
    if info is not None and info.channels == channels:
        mean, std = info.mean, info.std
    else:
        mean, std = compute_stats(arrays["train_x"] if len(arrays["train_x"]) else arrays["test_x"])
    return ImageDataset(
        name=name, classes=classes, mean=mean, std=std, source=str(path),
        extra={"archive": path.name}, **arrays,
    )


def _read_class_names(path: Path, name: str, classes: list[str]) -> list[str] | None:
    """Human-readable names from ``<name>-classes.txt`` / ``classes.txt`` beside the archive
    (or inside a folder): ``<id><TAB><name>`` lines, or one name per line in class order."""
    stem = archive_stem(path)
    where = [path] if path.is_dir() else []
    where.append(path.parent)
    candidates = [d / f for d in where for f in (f"{stem}-classes.txt", f"{name}-classes.txt", "classes.txt")]
    for file in candidates:
        if not file.is_file():
            continue
        lines = [ln.rstrip("\r\n") for ln in file.read_text(encoding="utf-8").splitlines() if ln.strip()]
        mapping = {}
        for ln in lines:
            parts = ln.split("\t", 1) if "\t" in ln else ln.split(None, 1)
            if len(parts) == 2:
                mapping[parts[0].strip()] = parts[1].strip()
        if classes and all(c in mapping for c in classes):
            return [mapping[c] for c in classes]
        if len(lines) == len(classes) and not any(c in mapping for c in classes):
            return [ln.strip() for ln in lines]
    return None


class _Progress:
    """Decoding progress over the source's bytes, with the image count."""

    def __init__(self, label: str, total: int):
        from rich.progress import (
            BarColumn,
            Progress,
            TextColumn,
            TimeElapsedColumn,
            TimeRemainingColumn,
        )

        self._p = Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            TextColumn("{task.fields[images]} images"),
            TimeElapsedColumn(),
            TimeRemainingColumn(),
        )
        self._task = self._p.add_task(label, total=max(total, 1), images=0)
        self._p.start()

    def update(self, done: int, images: int) -> None:
        self._p.update(self._task, completed=done, images=images)

    def close(self) -> None:
        self._p.stop()
