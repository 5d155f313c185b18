"""Known releases: the split files and image datasets the leaderboard accepts, and what
defines each board.

A leaderboard entry is comparable to another only when both ran on the same architectures
and the same test images, so a release pins more than a hash: a split release records the
sha256 of its file *and* its number of items and the names of its records in index order
(for episode suites, per test dataset: episodes, classes per episode, image size, query
images); a dataset release records its content sha256 with its class count, test-set size
and image sizes. Validation compares a results file with these pins, so a partial run with
edited counts cannot pass as a complete one.

The pins are never typed in: :func:`register_split_file` and :func:`register_dataset_file`
compute them from the released file itself (``deepnets-bench leaderboard register-split
NAME VERSION --file F``). The file is ``deepnetsbench/releases.json`` unless
``$DEEPNETS_BENCH_RELEASES`` or a ``path`` argument points elsewhere.

Format (version 2)::

    {"format": 2,
     "splits":   {"<name>": {"<generator_version>": {"sha256": ..., "num_items": N,
                                                     "names_sha256": ...}}},
     "datasets": {"<name>": {"<content_sha256>": {"num_classes": C, "num_test": N, ...}}}}

Episode-suite splits (``episodes-intra/test``) hold ``{"sha256": ..., "datasets": {name:
{"num_items", "num_classes", "image_size", "eval_images", "names_sha256"}}}``.

The ``ppuda`` entry is the official DeepNets-1M release, which cannot be re-generated
(docs/space.md) and is therefore pinned by its *source*: ``{"url", "files": {official file:
md5}, "published_params": {"file", "sha256", "source"}}``, the md5 sums the official
download script publishes and the published per-architecture parameter counts the
conversion is checked against. Converted split files are registered under ``splits`` as
generator version ``ppuda`` once their sha256 is known (the conversion is deterministic).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import statistics
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from deepnetsbench.errors import BenchError

ENV_RELEASES = "DEEPNETS_BENCH_RELEASES"
DEFAULT_PATH = Path(__file__).with_name("releases.json")
FORMAT = 2
_SHA256 = re.compile(r"^[0-9a-f]{64}$")
SPLIT_PINS = ("num_items", "names_sha256")
EPISODE_PINS = ("num_items", "num_classes", "image_size", "eval_images", "names_sha256")
DATASET_PINS = ("num_classes", "num_test", "num_train", "image_size", "eval_size", "channels",
                "classes_sha256")

__all__ = [
    "DATASET_PINS", "ENV_RELEASES", "EPISODE_PINS", "SPLIT_PINS", "dataset_release",
    "describe_dataset", "describe_episode_suite", "describe_split_file", "known_dataset",
    "known_split", "load_releases", "names_sha256", "register_dataset", "register_dataset_file",
    "register_split", "register_split_file", "releases_path", "split_release", "split_versions",
]


#: The converted official DeepNets-1M files (pinned by their source, see the module doc).
PPUDA = "ppuda"

def releases_path(path: str | os.PathLike | None = None) -> Path:
    """The releases file in use: ``path``, else ``$DEEPNETS_BENCH_RELEASES``, else the packaged one."""
    if path is not None:
        return Path(path)
    env = os.environ.get(ENV_RELEASES)
    return Path(env) if env else DEFAULT_PATH


def load_releases(path: str | os.PathLike | None = None) -> dict:
    """Read the releases file; a missing file means no release is known yet. A file of the
    first format (hashes only) reads as releases without pins, which validation refuses."""
    p = releases_path(path)
    if not p.exists():
        return {"format": FORMAT, "splits": {}, "datasets": {}}
    fix = "restore it from git (git checkout -- deepnetsbench/releases.json)"
    try:
        data = json.loads(p.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise BenchError(f"cannot read releases file {p}: {err}", fix) from None
    if not isinstance(data, dict) or not isinstance(data.get("splits", {}), dict) \
            or not isinstance(data.get("datasets", {}), dict):
        raise BenchError(f"releases file {p} has a bad layout",
                         'it must be {"splits": {name: {version: {...}}}, "datasets": {...}}')
    splits = {name: {str(v): ({"sha256": pins} if isinstance(pins, str) else dict(pins))
                     for v, pins in versions.items()}
              for name, versions in data.get("splits", {}).items()}
    datasets = {name: ({sha: {} for sha in hashes} if isinstance(hashes, list) else
                       {sha: dict(pins) for sha, pins in hashes.items()})
                for name, hashes in data.get("datasets", {}).items()}
    out = {"format": FORMAT, "splits": splits, "datasets": datasets}
    if isinstance(data.get(PPUDA), dict):
        out[PPUDA] = data[PPUDA]
    return out


# ----------------------------------------------------------------------------- lookups


def split_versions(name: str, path: str | os.PathLike | None = None) -> dict[str, str]:
    """``{generator_version: sha256}`` of every registered release of split ``name``."""
    return {v: pins["sha256"] for v, pins in load_releases(path)["splits"].get(name, {}).items()}


def split_release(name: str, sha256: str, path: str | os.PathLike | None = None,
                  generator_version: str | None = None) -> dict | None:
    """The pins of the release of split ``name`` with file hash ``sha256`` (of that generator
    version when given), or None when no such release is registered."""
    for version, pins in load_releases(path)["splits"].get(name, {}).items():
        if pins.get("sha256") == sha256 and generator_version in (None, version):
            return {"generator_version": version, **pins}
    return None


def known_split(name: str, sha256: str, path: str | os.PathLike | None = None,
                generator_version: str | None = None) -> bool:
    """Whether ``(name, sha256)`` is a registered split release (optionally of that version)."""
    return split_release(name, sha256, path, generator_version) is not None


def dataset_release(name: str, sha256: str, path: str | os.PathLike | None = None) -> dict | None:
    """The pins of dataset ``name`` with content hash ``sha256``, or None."""
    pins = load_releases(path)["datasets"].get(name, {}).get(sha256)
    return None if pins is None else dict(pins)


def known_dataset(name: str, sha256: str, path: str | os.PathLike | None = None) -> bool:
    """Whether ``sha256`` is a registered content hash of dataset ``name``."""
    return dataset_release(name, sha256, path) is not None


def ppuda_release(path: str | os.PathLike | None = None) -> dict:
    """The registered official release: ``{"url", "files": {name: md5}, "published_params"}``."""
    entry = load_releases(path).get(PPUDA)
    if not isinstance(entry, dict) or not isinstance(entry.get("files"), dict):
        raise BenchError(f"the releases file {releases_path(path)} has no valid {PPUDA!r} entry",
                         "restore it from git (git checkout -- deepnetsbench/releases.json)")
    return entry


# ----------------------------------------------------------------------------- computing pins


def names_sha256(names: Iterable[str]) -> str:
    """sha256 of record names in index order, one per line: pins which item each index is."""
    h = hashlib.sha256()
    for name in names:
        h.update(str(name).encode("utf-8") + b"\n")
    return h.hexdigest()


def describe_split_file(file: str | os.PathLike, name: str) -> tuple[str, dict[str, Any]]:
    """(generator version, pins) of the DeepNets-1M split file ``file`` released as ``name``."""
    from deepnetsbench.splits.dataset import DeepNets1M
    from deepnetsbench.splits.format import file_sha256

    ds = DeepNets1M(split=name, path=file, verify=False)
    pins = {"sha256": file_sha256(Path(file)), "num_items": len(ds),
            "names_sha256": names_sha256(ds.record_names())}
    return str(ds.attrs.get("generator_version") or ""), pins


def describe_episode_suite(file: str | os.PathLike, split: str = "test"
                           ) -> tuple[str, str, dict[str, Any]]:
    """(release name ``<kind>/<split>``, generator version, pins) of an episode-suite file:
    per test dataset, what a complete run over its episodes records."""
    from deepnetsbench.episodes.suite import EpisodeSuite

    suite = EpisodeSuite(file, verify=False)
    datasets = {}
    for dataset in suite.test_datasets(split):
        episodes = [suite.episode(split, i) for i in suite.indices_of(split, dataset)]
        ways = {ep.num_classes for ep in episodes}
        if len(ways) != 1:
            raise BenchError(f"{file}: {dataset} episodes have {sorted(ways)} classes",
                             "rebuild the suite with one --ways")
        datasets[dataset] = {
            "num_items": len(episodes), "num_classes": ways.pop(),
            "image_size": int(suite.image_size),
            "eval_images": int(statistics.median(len(ep.query) for ep in episodes)),
            "names_sha256": names_sha256(ep.name for ep in episodes)}
    from deepnetsbench.episodes.suite import file_sha256

    pins = {"sha256": file_sha256(file), "datasets": datasets}
    return f"{suite.kind}/{split}", suite.generator_version, pins


def describe_dataset(ds: Any) -> tuple[str, dict[str, Any]]:
    """(content sha256, pins) of an :class:`~deepnetsbench.data.ImageDataset`."""
    from deepnetsbench.data.registry import DATASETS, canonical_name

    info = DATASETS.get(canonical_name(ds.name))
    return ds.content_sha256, {
        "num_classes": int(ds.num_classes), "num_test": int(len(ds.test_y)),
        "num_train": int(len(ds.train_y)), "image_size": int(ds.image_size),
        "eval_size": int(info.eval_size) if info is not None else int(ds.image_size),
        "channels": int(ds.channels), "classes_sha256": names_sha256(ds.classes)}


# ----------------------------------------------------------------------------- registering


def _check_sha(sha256: Any) -> str:
    sha = str(sha256).strip().lower()
    if not _SHA256.match(sha):
        raise BenchError(f"{sha256!r} is not a sha256 hex digest",
                         "pass the 64-hex-digit sha256 of the file or content")
    return sha


def _check_pins(pins: Mapping[str, Any], required: Iterable[str], what: str) -> dict:
    missing = [k for k in required if k not in pins]
    if missing:
        raise BenchError(f"{what}: the pins lack {', '.join(missing)}",
                         "register from the released file (register_split_file / "
                         "register-split --file), which computes them")
    return {k: v for k, v in pins.items()}


def _write(data: dict, path: str | os.PathLike | None) -> Path:
    from deepnetsbench.results import atomic_write_text

    p = releases_path(path)
    atomic_write_text(p, json.dumps(data, indent=2, sort_keys=True) + "\n")
    return p


def register_split(name: str, generator_version: str, pins: Mapping[str, Any],
                   path: str | os.PathLike | None = None, replace: bool = False) -> Path:
    """Record a published split release with its pins (``sha256`` plus ``num_items`` and
    ``names_sha256``, or ``datasets`` for an episode suite). Re-registering the same pins is
    a no-op; other pins for an existing version are refused unless ``replace`` (a release
    must not move)."""
    if not isinstance(pins, Mapping):
        raise TypeError("pins must be a mapping: compute them with register_split_file")
    pins = dict(pins)
    pins["sha256"] = _check_sha(pins.get("sha256", ""))
    what = f"split {name!r} version {generator_version!r}"
    if "datasets" in pins:
        pins["datasets"] = {d: _check_pins(p, EPISODE_PINS, f"{what}, dataset {d!r}")
                            for d, p in dict(pins["datasets"]).items()}
    else:
        pins = _check_pins(pins, SPLIT_PINS, what)
    data = load_releases(path)
    versions = data["splits"].setdefault(name, {})
    old = versions.get(generator_version)
    if old is not None and old != pins and not replace:
        raise BenchError(
            f"{what} is already released as {old.get('sha256', '?')[:12]}... with other pins",
            "publish the new file under a new generator version (or pass replace=True "
            "if the old release was never used)")
    versions[generator_version] = pins
    return _write(data, path)


def register_split_file(name: str | None, file: str | os.PathLike,
                        generator_version: str | None = None,
                        path: str | os.PathLike | None = None, replace: bool = False
                        ) -> tuple[str, str, dict]:
    """Register the split (or episode suite) in ``file``, computing every pin from it.
    ``name`` is the split name (``test``); for an episode suite it may be omitted (the
    release is ``<kind>/test``). Returns (release name, version, pins)."""
    from deepnetsbench.splits.format import FORMAT_NAME as SPLIT_FORMAT

    fmt = _file_format(file)
    if fmt == SPLIT_FORMAT:
        if not name:
            raise BenchError("a split file needs its split name", "e.g. register-split test 1.0 "
                             "--file deepnets1m_test.h5")
        version, pins = describe_split_file(file, name)
    else:
        release, version, pins = describe_episode_suite(file)
        if name and name != release:
            raise BenchError(f"{file} is the episode suite {release!r}, not {name!r}",
                             f"register it as {release}")
        name = release
    version = generator_version or version
    if not version:
        raise BenchError(f"{file} records no generator version", "pass the version")
    register_split(name, version, pins, path, replace)
    return name, version, pins


def _file_format(file: str | os.PathLike) -> str:
    import h5py

    try:
        with h5py.File(file, "r") as f:
            return str(f.attrs.get("format", ""))
    except OSError as err:
        raise BenchError(f"{file} is not a readable HDF5 file ({err})",
                         "pass the released split or episode-suite file") from None


def register_dataset(name: str, content_sha256: str, pins: Mapping[str, Any],
                     path: str | os.PathLike | None = None, replace: bool = False) -> Path:
    """Record an accepted content hash of an image dataset with its pins
    (:data:`DATASET_PINS`)."""
    sha = _check_sha(content_sha256)
    if not isinstance(pins, Mapping):
        raise TypeError("pins must be a mapping: compute them with register_dataset_file")
    pins = _check_pins(pins, DATASET_PINS, f"dataset {name!r}")
    data = load_releases(path)
    hashes = data["datasets"].setdefault(name, {})
    old = hashes.get(sha)
    if old and old != pins and not replace:
        raise BenchError(f"dataset {name!r} {sha[:12]}... is already registered with other pins",
                         "pass replace=True if the old registration was wrong")
    hashes[sha] = pins
    return _write(data, path)


def register_dataset_file(name: str, cache_file: str | os.PathLike,
                          path: str | os.PathLike | None = None, replace: bool = False
                          ) -> tuple[str, dict]:
    """Register the decoded dataset in image-cache file ``cache_file`` (computing its content
    hash and pins). Returns (content sha256, pins)."""
    from deepnetsbench.data.cache import read_cache

    ds = read_cache(cache_file, verify=True)
    if ds.name != name:
        raise BenchError(f"{cache_file} holds dataset {ds.name!r}, not {name!r}",
                         f"register it as {ds.name}")
    sha, pins = describe_dataset(ds)
    register_dataset(name, sha, pins, path, replace)
    return sha, pins
