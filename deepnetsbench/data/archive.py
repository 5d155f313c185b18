"""Load image datasets from archives or folders of ``train/<class>/*`` and ``test/<class>/*``.

The archive is streamed member by member (nothing is extracted to disk), images are decoded
with Pillow in a small process pool and written to the uint8 HDF5 cache in bounded memory
(:mod:`deepnetsbench.data.importer`), keyed by the archive's sha256, the decoding options
and the class-names file, so only the first call pays for decoding. Any format Pillow reads
in the common extensions is accepted (png, jpg, bmp, ppm/pgm/pbm, webp, tiff, gif).

Order is made independent of the archive: classes are the sorted folder names (numerically
when all are integers), images are sorted by (class, file name) and then shuffled with a
fixed seed, so any prefix of a split is a random sample of it and the same images give the
same ``content_sha256`` whatever the archive format.
"""

from __future__ import annotations

import hashlib
import json
import os
import tarfile
import zipfile
from collections.abc import Iterator
from pathlib import Path

from deepnetsbench.data.cache import cache_attrs, cache_path, read_cache
from deepnetsbench.data.images import ImageDataset
from deepnetsbench.data.importer import BATCH, ORDER_SEED, decode_to_cache
from deepnetsbench.data.registry import DATASETS, canonical_name
from deepnetsbench.download import file_hash
from deepnetsbench.errors import BenchError

ARCHIVE_SUFFIXES = (".tar.gz", ".tgz", ".tar.bz2", ".tbz2", ".tar.xz", ".txz", ".tar", ".zip")
IMAGE_EXTS = (".jpg", ".jpeg", ".png", ".bmp", ".ppm", ".pgm", ".pbm", ".pnm", ".webp",
              ".tif", ".tiff", ".gif")
IMPORT_VERSION = 2  # 2: colour decided per dataset, class names stored, streamed import
__all__ = ["ARCHIVE_SUFFIXES", "BATCH", "IMAGE_EXTS", "ORDER_SEED", "archive_stem",
           "import_archive", "load_archive"]


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
    """Decode the archive (or folder) at ``path`` into the cache and return the dataset
    (see :func:`import_archive`; this also reads it into memory, except ImageNet, which is
    memory-mapped)."""
    mapped = canonical_name(name or archive_stem(path)) == "imagenet"
    return read_cache(import_archive(path, name, root, progress, image_size=image_size,
                                     crop=crop, train_per_class=train_per_class,
                                     workers=workers, force=force), mapped=mapped)


def import_archive(
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
) -> Path:
    """Decode the archive (or folder) at ``path`` into the cache; returns the cache file.

    ``name`` defaults to the archive's stem (registry aliases resolved, so
    ``tinyimagenet32.tar.gz`` becomes ``tinyimagenet``); a registered name must hold the
    registered data (class count, image size, released content), else it is refused. A
    cache built from the same bytes, options and class names is reused. ``image_size``
    resizes every image to a square (shorter side to ``image_size / crop``, then a centre
    crop). ImageNet is its validation folder only, prepared as the official evaluation
    does (:func:`deepnetsbench.data.imagenet.import_imagenet`). ``train_per_class`` caps the
    train images kept per class. ``workers`` decoding processes (default
    2; 0 or 1 decode in this process). Memory stays bounded whatever the dataset's size.
    """
    path = Path(path).expanduser()
    if not path.exists():
        raise BenchError(f"archive {path} does not exist", "check the path given to --from")
    name = canonical_name(name or archive_stem(path))
    if name == "imagenet":  # the validation set only, as the official evaluation reads it
        from deepnetsbench.data.imagenet import CROP, import_imagenet

        if image_size not in (None, CROP) or crop not in (None, 0.875):
            raise BenchError("ImageNet is evaluated at 224 px (resize 256, centre crop 224)",
                             "drop --image-size")
        return import_imagenet(path, root, progress=progress, workers=workers, force=force)
    info = DATASETS.get(name)
    if info is not None and info.image_size is None:
        image_size = image_size or info.eval_size
        crop = crop if crop is not None else 0.875
        train_per_class = 0 if train_per_class is None else train_per_class
    crop = 1.0 if crop is None else float(crop)
    if not 0 < crop <= 1:
        raise BenchError(f"crop must lie in (0, 1], got {crop}", "pass e.g. crop=0.875")
    mode = None if info is None else ("L" if info.channels == 1 else "RGB")
    names_file = _class_names_file(path, name)
    options = json.dumps(
        {"image_size": image_size, "crop": crop, "train_per_class": train_per_class, "mode": mode,
         "order_seed": ORDER_SEED, "import": IMPORT_VERSION,
         "class_names": file_hash(names_file) if names_file else None},
        sort_keys=True,
    )
    target = cache_path(name, root)
    fingerprint = _fingerprint(path)
    attrs = None if force else cache_attrs(target)
    if attrs and attrs.get("source_sha256") == fingerprint and attrs.get("options") == options:
        return target
    return decode_to_cache(
        path, name, target, mode=mode, image_size=image_size, crop=crop,
        train_per_class=train_per_class, workers=workers, progress=progress,
        class_names_for=lambda classes: _read_class_names(names_file, classes),
        attrs={"source": str(path), "source_sha256": fingerprint, "options": options})


# -- reading members -------------------------------------------------------------------------
def _classify(member: str, skipped: dict[str, int] | None = None
              ) -> tuple[str, str, str] | None:
    """(split, class, file) for ``[prefix/]{train,test,val}/<class>/<file>.<image ext>``;
    other files inside class folders are counted in ``skipped`` by extension."""
    parts = member.replace("\\", "/").split("/")
    if len(parts) < 3:
        return None
    split, cls, fname = parts[-3].lower(), parts[-2], parts[-1]
    if split not in ("train", "test", "val"):
        return None
    if fname.startswith(".") or cls.startswith(".") or "__MACOSX" in parts:  # macOS debris
        return None
    if not fname.lower().endswith(IMAGE_EXTS):
        if skipped is not None and fname:
            ext = os.path.splitext(fname)[1].lower()
            skipped[ext] = skipped.get(ext, 0) + 1
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


def _members(path: Path, counter: list[int], skipped: dict[str, int] | None = None
             ) -> Iterator[tuple[str, bytes]]:
    """Yield (member name, bytes) in archive order; ``counter[0]`` tracks source bytes read,
    ``skipped`` counts the non-image files of class folders by extension."""
    def want(member: str) -> bool:
        return _classify(member, skipped) is not None

    if path.is_dir():
        for full, rel in _dir_files(path):
            if want(rel):
                data = full.read_bytes()
                counter[0] += len(data)
                yield rel, data
    elif zipfile.is_zipfile(path):
        with zipfile.ZipFile(path) as zf:
            for info in zf.infolist():
                if not info.is_dir() and want(info.filename):
                    counter[0] += info.compress_size
                    yield info.filename, zf.read(info)
    else:
        total = path.stat().st_size
        with _open_stream(path) as stream:
            for i, (member, data) in enumerate(_TarStream(stream).files(want)):
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


def _class_names_file(path: Path, name: str) -> Path | None:
    """``<name>-classes.txt`` / ``classes.txt`` beside the archive (or inside a folder)."""
    stem = archive_stem(path)
    where = [path] if path.is_dir() else []
    where.append(path.parent)
    for d in where:
        for f in (f"{stem}-classes.txt", f"{name}-classes.txt", "classes.txt"):
            if (d / f).is_file():
                return d / f
    return None


def _read_class_names(file: Path | None, classes: list[str]) -> list[str] | None:
    """Human-readable names from a names file: ``<id><TAB><name>`` lines, or one name per
    line in class order; None when the file does not fit the classes."""
    if file is None:
        return None
    try:
        text = file.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return None
    lines = [ln.rstrip("\r\n") for ln in text.splitlines() if ln.strip()]
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
