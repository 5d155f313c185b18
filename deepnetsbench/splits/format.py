"""The split file: one HDF5 file per split, flat chunked arrays, plus a manifest.

Layout (``FORMAT_VERSION``; documented for readers without this package in docs/format.md):
root attributes describe the split; datasets hold :class:`~deepnetsbench.splits.codec.Columns`
(or, for PREDEFINED, model names and graphs only). Files are written in one pass with
``track_times=False`` so the same content gives byte-identical files, and their sha256 is
recorded in ``manifest.json`` beside them.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path

import h5py
import numpy as np

from deepnetsbench.errors import BenchError
from deepnetsbench.splits.codec import Columns

FORMAT_NAME = "deepnets-bench-split"
FORMAT_VERSION = "1.0"
MANIFEST = "manifest.json"

# Small chunks: a random read decompresses little (0.2 ms per architecture at 1M).
_CHUNK_ROWS = 2048


def split_path(root: Path, split: str) -> Path:
    return Path(root) / f"deepnets1m_{split}.h5"


def release_dir(root=None, release: str | None = None) -> Path:
    """The folder of a split release: the splits folder itself for the default (locally
    built or downloaded) files, ``<splits>/<release>`` for a named one such as ``ppuda``."""
    from deepnetsbench.paths import splits_dir

    base = splits_dir(root)
    if not release:
        return base
    if not release.replace("-", "").replace("_", "").replace(".", "").isalnum():
        raise BenchError(f"bad release name {release!r}", "use a name such as ppuda")
    return base / release


def write_split(path: Path, columns: Columns | Sequence[Columns], attrs: dict,
                names: list[str] | None = None, extra: dict[str, np.ndarray] | None = None,
                manifest_extra: dict | None = None) -> str:
    """Write atomically; returns the file's sha256 (also recorded in the manifest).

    ``columns`` may be a list of parts (e.g. lazily loaded shards): they are written one
    field at a time, part by part, in whole chunks, so memory stays at one part's field and
    the file is byte-identical to writing the concatenation in one go. ``extra`` values
    may be lists of parts too (offsets excepted); string arrays are stored as vlen strings.
    ``manifest_extra`` adds keys to the file's manifest entry only."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    parts = [columns] if isinstance(columns, Columns) else list(columns)
    fd, tmp = tempfile.mkstemp(prefix=path.name, suffix=".tmp", dir=path.parent)
    os.close(fd)
    os.chmod(tmp, 0o644)
    try:
        with h5py.File(tmp, "w", libver=("earliest", "v110"), track_order=False) as f:
            f.attrs["format"] = FORMAT_NAME
            f.attrs["format_version"] = FORMAT_VERSION
            for k, v in attrs.items():
                f.attrs[k] = v
            for name in Columns.FIELDS:
                pieces = [lambda p=p, n=name: getattr(p, n) for p in parts]
                if len(parts) == 1:
                    _dataset(f, name, pieces[0]())
                else:
                    _dataset_parts(f, name, pieces, offsets=name.endswith("_offset"))
            if names is not None:
                f.create_dataset("names", data=np.array(names, dtype=h5py.string_dtype()),
                                 track_times=False)
            for name, arr in (extra or {}).items():
                if isinstance(arr, list | tuple):
                    _dataset_parts(f, name, [lambda a=a: a() if callable(a) else a for a in arr])
                elif arr.dtype.kind in "OUS":
                    f.create_dataset(name, data=np.array([str(s) for s in arr],
                                                         dtype=h5py.string_dtype()),
                                     track_times=False)
                else:
                    _dataset(f, name, arr)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    sha = file_sha256(path)
    record_manifest(path, sha, {**attrs, **(manifest_extra or {})})
    return sha


def _chunk_rows(length: int, inner: tuple[int, ...]) -> int:
    return min(length, max(1, _CHUNK_ROWS // max(1, int(np.prod(inner)))))


def _dataset(f: h5py.File, name: str, arr: np.ndarray) -> None:
    arr = np.ascontiguousarray(arr)
    if arr.size == 0:
        f.create_dataset(name, data=arr, track_times=False)
        return
    f.create_dataset(name, data=arr, chunks=(_chunk_rows(len(arr), arr.shape[1:]), *arr.shape[1:]),
                     compression="gzip", compression_opts=4, shuffle=True, track_times=False)


def _dataset_parts(f: h5py.File, name: str, pieces: list[Callable[[], np.ndarray]],
                   offsets: bool = False) -> None:
    """Like :func:`_dataset` on the concatenation of ``pieces()`` (offset arrays chained),
    loading one piece at a time and writing whole chunks only, so that every chunk is
    compressed once, in order, as in a one-shot write."""
    first = np.asarray(pieces[0]())
    total, inner, dtype = 0, first.shape[1:], first.dtype
    for piece in pieces:
        arr = first if piece is pieces[0] else np.asarray(piece())
        total += len(arr) - (1 if offsets else 0)
    total += 1 if offsets else 0
    if total == 0 or int(np.prod(inner)) == 0:
        _dataset(f, name, np.zeros((total, *inner), dtype))
        return
    rows = _chunk_rows(total, inner)
    ds = f.create_dataset(name, shape=(total, *inner), dtype=dtype, chunks=(rows, *inner),
                          compression="gzip", compression_opts=4, shuffle=True,
                          track_times=False)
    buf, pos, base = [], 0, 0
    for i, piece in enumerate(pieces):
        arr = np.asarray(first if i == 0 else piece(), dtype=dtype)
        if offsets:
            arr = (arr if i == 0 else arr[1:]) + base
            base = int(arr[-1]) if len(arr) else base
        buf.append(arr)
        held = sum(len(b) for b in buf)
        if held >= rows:
            block = np.concatenate(buf)
            cut = (held // rows) * rows
            ds[pos:pos + cut] = block[:cut]
            pos += cut
            buf = [block[cut:]]
    rest = np.concatenate(buf) if buf else np.zeros((0, *inner), dtype)
    if len(rest):
        ds[pos:pos + len(rest)] = rest


def file_sha256(path: Path, chunk: int = 1 << 22) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


def read_manifest(root: Path) -> dict:
    path = Path(root) / MANIFEST
    if not path.exists():
        return {}
    fix = "delete it and re-run `deepnets-bench build` or `deepnets-bench download`"
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise BenchError(f"{path} is not valid JSON ({getattr(err, 'msg', None) or err.reason})",
                         fix) from None
    if not isinstance(data, dict):
        raise BenchError(f"{path} is not a manifest (a JSON object)", fix)
    return data


def _write_manifest(root: Path, manifest: dict) -> None:
    path = Path(root) / MANIFEST
    fd, tmp = tempfile.mkstemp(prefix=MANIFEST, dir=root)
    os.chmod(tmp, 0o644)
    with os.fdopen(fd, "w") as f:
        json.dump(manifest, f, indent=2, sort_keys=True)
    os.replace(tmp, path)


#: Split files up to this size are hashed every time they are opened for evaluation (all
#: evaluation splits are < 1 MB; hashing 256 MB takes well under a second). Larger files
#: (the 1M-architecture TRAIN file) are re-hashed when their stat key changes or on request.
HASH_ALWAYS_BYTES = 256 << 20


def stat_key(path: Path) -> list[int]:
    """What must stay the same for a large file to count as unchanged since it was hashed:
    size, modification time, inode and status-change time. ``touch -d`` or copying a file
    back restores the mtime but not the ctime, which only the kernel sets."""
    st = Path(path).stat()
    return [st.st_size, st.st_mtime_ns, st.st_ino, st.st_ctime_ns]


def record_manifest(path: Path, sha: str, attrs: dict) -> None:
    path = Path(path)
    manifest = read_manifest(path.parent)
    manifest[path.name] = {
        "sha256": sha,
        "size": path.stat().st_size,
        "format_version": FORMAT_VERSION,
        **{k: (v.item() if hasattr(v, "item") else v) for k, v in attrs.items()},
        "verified": stat_key(path),
    }
    _write_manifest(path.parent, manifest)


def verify_content(path: Path, expected: dict, fix: str, full: bool = False,
                   on_verified=None) -> str:
    """The sha256 of ``path`` computed from its bytes, checked against ``expected["sha256"]``.

    Files up to :data:`HASH_ALWAYS_BYTES` are always hashed; a larger one is trusted without
    hashing only when ``expected["verified"]`` holds its current :func:`stat_key` (and not
    with ``full``). ``on_verified(key)`` records a fresh key. The caller uses the returned
    hash, never the manifest's claim."""
    path = Path(path)
    key = stat_key(path)
    if not full and key[0] > HASH_ALWAYS_BYTES and expected.get("verified") == key:
        return str(expected["sha256"])
    if key[0] != expected.get("size"):
        raise BenchError(f"{path} is corrupt or truncated ({key[0]} bytes, the manifest "
                         f"says {expected.get('size')})", f"delete it and {fix}")
    try:
        sha = file_sha256(path)
    except OSError as err:
        raise BenchError(f"cannot read {path} ({err.strerror or err})", f"delete it and {fix}"
                         ) from None
    if sha != expected.get("sha256"):
        raise BenchError(f"{path} is corrupt or was modified (its sha256 {sha[:12]}... does "
                         f"not match the manifest's {str(expected.get('sha256'))[:12]}...)",
                         f"delete it and {fix}")
    if expected.get("verified") != key and on_verified is not None:
        on_verified(key)
    return sha


def verify_split(path: Path, split: str, full: bool = False) -> dict:
    """Check the file against the manifest and its header by content (see
    :func:`verify_content`); returns its manifest entry with ``sha256`` the hash computed
    from the file. Any problem is a one-line BenchError."""
    path = Path(path)
    fix = f"run `deepnets-bench build --split {split}` (or `deepnets-bench download`)"
    if not path.exists():
        raise BenchError(f"split file {path} not found", fix)
    manifest = read_manifest(path.parent)
    entry = manifest.get(path.name)
    if not isinstance(entry, dict) or "sha256" not in entry:
        raise BenchError(f"{path} is not listed in {path.parent / MANIFEST}", fix)

    def remember(key: list[int]) -> None:
        entry["verified"] = key
        manifest[path.name] = entry
        try:
            _write_manifest(path.parent, manifest)
        except OSError:  # a read-only cache still verifies, it just hashes again next time
            pass

    sha = verify_content(path, entry, fix, full=full, on_verified=remember)
    check_header(path, split, fix)
    return {**entry, "sha256": sha}


def check_header(path: Path, split: str, fix: str) -> None:
    try:
        with h5py.File(path, "r") as f:
            fmt, version = f.attrs.get("format"), f.attrs.get("format_version")
    except OSError as err:
        raise BenchError(f"{path} is not a readable HDF5 file ({err})", f"delete it and {fix}")
    if fmt != FORMAT_NAME:
        raise BenchError(f"{path} is not a deepnets-bench split file", fix)
    if str(version).split(".")[0] != FORMAT_VERSION.split(".")[0]:
        raise BenchError(f"{path} has format version {version}, this package reads "
                         f"{FORMAT_VERSION}", f"delete it and {fix}")
