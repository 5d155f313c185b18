"""Episode-suite files: the HDF5 format, the manifest beside them, and the reader.

An episode is a set of classes (their order is the label order), the indices of its
*support* images (what a method sees) in the train split of a cached image dataset, and the
indices of its *query* images (what it is scored on, or trained on for training episodes).
Images are never copied: the file stores indices and pins each dataset by its
``content_sha256``, so a suite is a few MB and the same indices always mean the same pixels.

Layout (``FORMAT_VERSION``): root attributes ``format``, ``format_version``, ``kind``
(``episodes-intra`` | ``episodes-inter``), ``generator_version``, ``image_size``,
``channels``, and JSON strings ``config``, ``datasets``, ``pools``, ``targets``. Per split
``s`` in train/val/test, flat datasets (no groups, so no object timestamps):
``s_dataset`` int16 [E] (index into ``datasets``), ``s_query_split`` uint8 [E] (0 = the
dataset's train split, 1 = its test split), and ``s_classes``, ``s_support``, ``s_query``
(int32, all episodes concatenated) with ``s_classes_offsets`` etc. (int64 [E + 1]).
Files are written with ``track_times=False`` so a seed gives byte-identical files; their
sha256 is recorded in ``manifest.json`` beside them and checked when they are opened.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import h5py
import numpy as np

from deepnetsbench.errors import BenchError
from deepnetsbench.paths import data_root

if TYPE_CHECKING:
    import torch

    from deepnetsbench.data.images import ImageDataset

__all__ = [
    "FORMAT_NAME", "FORMAT_VERSION", "GENERATOR_VERSION", "KINDS", "MANIFEST", "SPLITS",
    "Episode", "EpisodeSuite", "EpisodeTensors", "SplitEpisodes", "default_suite_path",
    "episodes_dir", "file_sha256", "verify_suite", "write_suite",
]

FORMAT_NAME = "deepnets-bench-episodes"
FORMAT_VERSION = "1.0"
GENERATOR_VERSION = "1"
MANIFEST = "manifest.json"
KINDS = ("episodes-intra", "episodes-inter")
SPLITS = ("train", "val", "test")
QUERY_SPLITS = ("train", "test")
_FIELDS = ("classes", "support", "query")
_CHUNK = 1 << 16


def episodes_dir(root: str | os.PathLike | None = None) -> Path:
    """``<data root>/episodes``: where suites are built by default."""
    path = data_root(root) / "episodes"
    path.mkdir(parents=True, exist_ok=True)
    return path


def default_suite_path(kind: str, root: str | os.PathLike | None = None) -> Path:
    """``<data root>/episodes/episodes_intra.h5`` (or ``episodes_inter.h5``)."""
    _check_kind(kind)
    return episodes_dir(root) / f"{kind.replace('-', '_')}.h5"


def _check_kind(kind: str) -> str:
    if kind not in KINDS:
        raise BenchError(f"unknown episode suite {kind!r}", f"use one of {', '.join(KINDS)}")
    return kind


def _build_fix(path: Path, kind: str | None = None) -> str:
    suite = kind or "episodes-intra|episodes-inter"
    return f"rebuild it with `deepnets-bench build-episodes --suite {suite} --out {path}`"


# ----------------------------------------------------------------------------- writing


@dataclass
class SplitEpisodes:
    """The episodes of one split, as the builder makes them (lists of index arrays)."""

    dataset: list[int]
    query_split: list[int]  # 0: the dataset's train split, 1: its test split
    classes: list[np.ndarray]
    support: list[np.ndarray]
    query: list[np.ndarray]

    @classmethod
    def empty(cls) -> SplitEpisodes:
        return cls([], [], [], [], [])

    def __len__(self) -> int:
        return len(self.dataset)


def file_sha256(path: str | os.PathLike, chunk: int = 1 << 22) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


def _public(fd_or_path: int | str) -> None:
    """mkstemp makes 0600 files; give them the usual umask-based permissions."""
    umask = os.umask(0)
    os.umask(umask)
    if isinstance(fd_or_path, int):
        os.fchmod(fd_or_path, 0o666 & ~umask)
    else:
        os.chmod(fd_or_path, 0o666 & ~umask)


def _put(f: h5py.File, name: str, arr: np.ndarray) -> None:
    arr = np.ascontiguousarray(arr)
    if arr.size == 0:
        f.create_dataset(name, data=arr, track_times=False)
        return
    f.create_dataset(name, data=arr, chunks=(min(len(arr), _CHUNK),), compression="gzip",
                     compression_opts=4, shuffle=True, track_times=False)


def write_suite(path: str | os.PathLike, attrs: Mapping[str, Any],
                splits: Mapping[str, SplitEpisodes]) -> str:
    """Write a suite file atomically and record it in the manifest; returns its sha256.

    ``attrs`` must hold ``kind``, ``config``, ``datasets``, ``pools``, ``targets``,
    ``image_size`` and ``channels`` (dicts/lists are stored as JSON)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        with h5py.File(tmp, "w", libver=("earliest", "v110"), track_order=False) as f:
            f.attrs["format"] = FORMAT_NAME
            f.attrs["format_version"] = FORMAT_VERSION
            f.attrs["generator_version"] = GENERATOR_VERSION
            for key, value in attrs.items():
                if isinstance(value, dict | list | tuple):
                    value = json.dumps(value, sort_keys=True)
                f.attrs[key] = value
            for split in SPLITS:
                eps = splits.get(split) or SplitEpisodes.empty()
                _put(f, f"{split}_dataset", np.asarray(eps.dataset, dtype=np.int16))
                _put(f, f"{split}_query_split", np.asarray(eps.query_split, dtype=np.uint8))
                for field in _FIELDS:
                    parts = [np.asarray(a, dtype=np.int32) for a in getattr(eps, field)]
                    lengths = [len(a) for a in parts]
                    offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
                    flat = np.concatenate(parts) if parts else np.zeros(0, np.int32)
                    _put(f, f"{split}_{field}", flat.astype(np.int32))
                    _put(f, f"{split}_{field}_offsets", offsets)
        _public(tmp)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    sha = file_sha256(path)
    _record_manifest(path, sha, str(attrs.get("kind", "")))
    return sha


# ----------------------------------------------------------------------------- manifest


def _read_manifest(folder: Path) -> dict:
    path = folder / MANIFEST
    if not path.exists():
        return {}
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise BenchError(f"{path} is not valid JSON ({err})",
                         "delete it and rebuild the suites with `deepnets-bench build-episodes`"
                         ) from None
    return data if isinstance(data, dict) else {}


def _write_manifest(folder: Path, manifest: dict) -> None:
    fd, tmp = tempfile.mkstemp(prefix=f".{MANIFEST}.", suffix=".tmp", dir=folder)
    try:
        _public(fd)
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump(manifest, f, indent=2, sort_keys=True)
            f.write("\n")
        os.replace(tmp, folder / MANIFEST)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def _record_manifest(path: Path, sha: str, kind: str) -> None:
    manifest = _read_manifest(path.parent)
    stat = path.stat()
    manifest[path.name] = {
        "sha256": sha, "size": stat.st_size, "format": FORMAT_NAME,
        "format_version": FORMAT_VERSION, "generator_version": GENERATOR_VERSION, "kind": kind,
        "verified": [stat.st_size, stat.st_mtime_ns],
    }
    _write_manifest(path.parent, manifest)


def verify_suite(path: str | os.PathLike) -> dict:
    """Check ``path`` against the manifest beside it (by its content: see
    :func:`deepnetsbench.splits.format.verify_content`) and its header; return its manifest
    entry with the computed sha256. Problems: one-line BenchError."""
    path = Path(path)
    fix = _build_fix(path)
    if not path.is_file():
        raise BenchError(f"episode suite {path} not found", fix.replace("rebuild", "build"))
    manifest = _read_manifest(path.parent)
    entry = manifest.get(path.name)
    if entry is None:
        raise BenchError(f"{path} is not listed in {path.parent / MANIFEST}, so it cannot be "
                         "verified", fix)
    fix = _build_fix(path, entry.get("kind") or None)

    def remember(key: list[int]) -> None:
        entry["verified"] = key
        manifest[path.name] = entry
        try:
            _write_manifest(path.parent, manifest)
        except OSError:
            pass  # read-only folder: verified again next time

    # By content, as split files: suites are small, so they are hashed every time, and the
    # returned entry carries the computed hash, never the manifest's claim.
    from deepnetsbench.splits.format import verify_content

    entry = {**entry, "sha256": verify_content(path, entry, fix, on_verified=remember)}
    _check_header(path, fix)
    return entry


def _check_header(path: Path, fix: str) -> dict:
    try:
        with h5py.File(path, "r") as f:
            attrs = {k: _plain(v) for k, v in f.attrs.items()}
    except OSError as err:
        raise BenchError(f"{path} is not a readable HDF5 file ({err})", f"delete it and {fix}"
                         ) from None
    if attrs.get("format") != FORMAT_NAME:
        raise BenchError(f"{path} is not a deepnets-bench episode suite", fix)
    version = str(attrs.get("format_version"))
    if version.split(".")[0] != FORMAT_VERSION.split(".")[0]:
        raise BenchError(f"{path} has episode format version {version}, this deepnets-bench "
                         f"reads {FORMAT_VERSION}", f"delete it and {fix}")
    return attrs


def _plain(value: Any) -> Any:
    if isinstance(value, bytes):
        return value.decode()
    if isinstance(value, np.generic):
        return value.item()
    return value


# ----------------------------------------------------------------------------- reading


@dataclass(eq=False)
class Episode:
    """One episode: classes in label order, support and query indices into ``dataset``.

    Support indices point into the dataset's train split; query indices into
    ``query_split`` (``"train"`` for training episodes, ``"test"`` for evaluation ones).
    """

    split: str
    index: int
    dataset: str
    class_ids: np.ndarray  # int: class indices of the dataset, in label order
    classes: list[str]  # the dataset's class ids (folder names) in label order
    class_names: list[str]  # human-readable names in label order
    support: np.ndarray
    query: np.ndarray
    query_split: str

    @property
    def name(self) -> str:
        return f"{self.split}/{self.index:05d}"

    @property
    def num_classes(self) -> int:
        return len(self.class_ids)

    def __repr__(self) -> str:
        return (f"Episode({self.name!r}, dataset={self.dataset!r}, classes={self.num_classes}, "
                f"support={len(self.support)}, query={len(self.query)} from {self.query_split})")


@dataclass
class EpisodeTensors:
    """An episode as normalized float tensors ``[N, 3, S, S]`` and int64 episode labels."""

    support_x: torch.Tensor
    support_y: torch.Tensor
    query_x: torch.Tensor
    query_y: torch.Tensor

    def to(self, device: Any) -> EpisodeTensors:
        return EpisodeTensors(*(t.to(device) for t in (self.support_x, self.support_y,
                                                        self.query_x, self.query_y)))


class EpisodeSuite:
    """A verified episode-suite file plus the image datasets its indices point into.

    ``datasets`` overrides the image cache (tests, or datasets loaded elsewhere): a mapping
    or iterable of :class:`ImageDataset`, matched by name. Every dataset is checked against
    the ``content_sha256`` recorded at build time before it is used.
    """

    def __init__(self, path: str | os.PathLike | None = None, *, kind: str | None = None,
                 root: str | os.PathLike | None = None,
                 datasets: Mapping[str, ImageDataset] | Iterable[ImageDataset] | None = None,
                 verify: bool = True):
        if path is None:
            if kind is None:
                raise BenchError("no episode suite given", "pass a suite file or a kind")
            path = default_suite_path(kind, root)
        self.path = Path(path)
        self.root = root
        self.manifest = verify_suite(self.path) if verify else {}
        attrs = _check_header(self.path, _build_fix(self.path, kind))
        self.sha256: str = str(self.manifest.get("sha256") or file_sha256(self.path))  # computed
        try:
            self.kind: str = _check_kind(str(attrs["kind"]))
            self.config: dict[str, Any] = json.loads(attrs["config"])
            self.datasets: list[dict[str, Any]] = json.loads(attrs["datasets"])
            self.pools: dict[str, list[int]] = json.loads(attrs["pools"])
            self.targets: list[str] = json.loads(attrs["targets"])
            self.image_size = int(attrs["image_size"])
            self.channels = int(attrs["channels"])
        except (KeyError, ValueError, TypeError, BenchError) as err:
            raise BenchError(f"{self.path} has a damaged header ({type(err).__name__}: {err})",
                             f"delete it and {_build_fix(self.path, kind)}") from None
        if kind is not None and kind != self.kind:
            raise BenchError(f"{self.path} is an {self.kind} suite, not {kind}",
                             f"pass the {kind} suite file (or --suite {self.kind})")
        self.generator_version = str(attrs.get("generator_version", ""))
        self._arrays: dict[str, dict[str, np.ndarray]] = {}
        self._loaded: dict[str, ImageDataset] = {}
        if datasets is not None:
            items = datasets.values() if isinstance(datasets, Mapping) else datasets
            self._overrides = {ds.name: ds for ds in items}
        else:
            self._overrides = {}

    # -- episodes -------------------------------------------------------------------------
    def _split(self, split: str) -> dict[str, np.ndarray]:
        if split not in SPLITS:
            raise BenchError(f"unknown episode split {split!r}", f"use one of {', '.join(SPLITS)}")
        if split not in self._arrays:
            names = [f"{split}_dataset", f"{split}_query_split"] + [
                f"{split}_{f}{s}" for f in _FIELDS for s in ("", "_offsets")]
            try:
                with h5py.File(self.path, "r") as f:
                    self._arrays[split] = {n[len(split) + 1:]: f[n][()] for n in names}
            except (OSError, KeyError) as err:
                raise BenchError(f"cannot read the {split} episodes of {self.path} ({err})",
                                 f"delete it and {_build_fix(self.path, self.kind)}") from None
        return self._arrays[split]

    def num_episodes(self, split: str) -> int:
        return int(len(self._split(split)["dataset"]))

    def episode(self, split: str, index: int) -> Episode:
        """Episode ``index`` of ``split`` (train, val or test)."""
        a = self._split(split)
        n = len(a["dataset"])
        if not 0 <= index < n:
            raise BenchError(f"episode {index} is outside the {split} split (0..{n - 1})",
                             f"pick an index below {n}")

        def part(field: str) -> np.ndarray:
            off = a[f"{field}_offsets"]
            return a[field][off[index]:off[index + 1]].astype(np.int64)

        meta = self.datasets[int(a["dataset"][index])]
        class_ids = part("classes")
        names = meta.get("class_names") or meta["classes"]
        return Episode(
            split=split, index=int(index), dataset=str(meta["name"]), class_ids=class_ids,
            classes=[meta["classes"][c] for c in class_ids],
            class_names=[names[c] for c in class_ids],
            support=part("support"), query=part("query"),
            query_split=QUERY_SPLITS[int(a["query_split"][index])])

    def episodes(self, split: str) -> Iterator[Episode]:
        for i in range(self.num_episodes(split)):
            yield self.episode(split, i)

    def test_datasets(self, split: str = "test") -> list[str]:
        """Names of the datasets the episodes of ``split`` come from, in file order."""
        a = self._split(split)
        return [self.datasets[i]["name"] for i in sorted(set(int(d) for d in a["dataset"]))]

    def indices_of(self, split: str, dataset: str | None = None) -> list[int]:
        """Episode indices of ``split`` whose images come from ``dataset`` (all: None)."""
        a = self._split(split)
        if dataset is None:
            return list(range(len(a["dataset"])))
        ids = [i for i, d in enumerate(self.datasets) if d["name"] == dataset]
        return [i for i, d in enumerate(a["dataset"]) if int(d) in ids]

    # -- images ---------------------------------------------------------------------------
    def dataset_meta(self, name: str) -> dict[str, Any]:
        for meta in self.datasets:
            if meta["name"] == name:
                return meta
        raise BenchError(f"dataset {name!r} is not part of {self.path}",
                         f"use one of {', '.join(d['name'] for d in self.datasets)}")

    def dataset(self, name: str) -> ImageDataset:
        """The image dataset ``name`` (override or cache), checked against the suite."""
        if name in self._loaded:
            return self._loaded[name]
        meta = self.dataset_meta(name)
        ds = self._overrides.get(name)
        if ds is None:
            from deepnetsbench.data import load_dataset

            ds = load_dataset(name, root=self.root, progress=False)
        if ds.content_sha256 != meta["content_sha256"]:
            raise BenchError(
                f"dataset {name!r} differs from the one {self.path.name} was built from "
                f"(content sha256 {ds.content_sha256[:12]} vs {meta['content_sha256'][:12]})",
                f"load the original images (`deepnets-bench download --dataset {name} --from "
                f"ARCHIVE`) or {_build_fix(self.path, self.kind)}")
        self._loaded[name] = ds
        return ds

    def labels(self, ep: Episode) -> tuple[np.ndarray, np.ndarray]:
        """Episode labels (positions in ``ep.class_ids``) of the support and query images."""
        ds = self.dataset(ep.dataset)
        lut = np.full(ds.num_classes, -1, dtype=np.int64)
        lut[ep.class_ids] = np.arange(len(ep.class_ids))
        sy = lut[ds.train_y[ep.support]]
        qy = lut[ds.split_arrays(ep.query_split)[1][ep.query]]
        if (sy < 0).any() or (qy < 0).any():
            raise BenchError(f"{self.path}: episode {ep.name} holds images of classes it does "
                             "not list", f"delete it and {_build_fix(self.path, self.kind)}")
        return sy, qy

    def tensors(self, ep: Episode, device: Any = None, support_limit: int | None = None,
                query_limit: int | None = None) -> EpisodeTensors:
        """The episode's images at the suite's size as 3-channel normalized tensors.

        ``support_limit``/``query_limit`` keep the first N support/query images (they are
        stored in random order, so a prefix is a random sample)."""
        import torch

        ds = self.dataset(ep.dataset)
        sy, qy = self.labels(ep)
        sidx, qidx = ep.support[:support_limit], ep.query[:query_limit]
        sx, _ = ds.tensors("train", self.image_size, self.channels, indices=sidx)
        qx, _ = ds.tensors(ep.query_split, self.image_size, self.channels, indices=qidx)
        out = EpisodeTensors(sx, torch.from_numpy(sy[:support_limit]), qx,
                             torch.from_numpy(qy[:query_limit]))
        return out.to(device) if device is not None else out

    def support_tensors(self, ep: Episode, device: Any = None,
                        limit: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """Only the support images and labels (what a method sees), optionally on ``device``."""
        import torch

        ds = self.dataset(ep.dataset)
        sy, _ = self.labels(ep)
        x, _ = ds.tensors("train", self.image_size, self.channels, indices=ep.support[:limit])
        y = torch.from_numpy(sy[:limit])
        return (x.to(device), y.to(device)) if device is not None else (x, y)

    def query_view(self, ep: Episode) -> EpisodeImages:
        """The episode's query images as an evaluator-compatible image dataset."""
        return EpisodeImages(self, ep)

    def __repr__(self) -> str:
        counts = ", ".join(f"{s}={self.num_episodes(s)}" for s in SPLITS)
        return f"EpisodeSuite({self.kind!r}, {self.path.name}, {counts})"


class EpisodeImages:
    """The query images of one episode, shaped like an ``ImageDataset`` for the evaluator
    (``name``, ``classes``, ``class_names``, ``test_y``, ``test_tensors``)."""

    def __init__(self, suite: EpisodeSuite, ep: Episode):
        self.suite, self.episode = suite, ep
        self.name = ep.dataset
        self.classes = list(ep.classes)
        self.class_names = list(ep.class_names)
        self.test_y = suite.labels(ep)[1]
        self.image_size = suite.image_size

    @property
    def content_sha256(self) -> str:
        return str(self.suite.dataset_meta(self.name)["content_sha256"])

    def test_tensors(self, image_size: int | None = None, channels: int = 3,
                     limit: int | None = None, indices: Any = None) -> tuple[Any, Any]:
        import torch

        ds = self.suite.dataset(self.name)
        idx = self.episode.query[:limit]
        x, _ = ds.tensors(self.episode.query_split, image_size or self.image_size, channels,
                          indices=idx)
        return x, torch.from_numpy(self.test_y[:limit])
