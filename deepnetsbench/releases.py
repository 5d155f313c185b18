"""Known releases: the split files and image datasets the leaderboard accepts.

A leaderboard entry is comparable to another only when both ran on the same architectures
and the same test images, so results are pinned by hashes: a split by the sha256 of its file
(per generator version), a dataset by the sha256 of its decoded content. The maintainers
register each published release here (``register_split`` / ``register_dataset``); the file
is ``deepnetsbench/releases.json`` unless ``$DEEPNETS_BENCH_RELEASES`` or a ``path``
argument points elsewhere (tests, forks with their own releases).

Format::

    {"splits":   {"<name>": {"<generator_version>": "<sha256>"}},
     "datasets": {"<name>": ["<content_sha256>", ...]},
     "ppuda":    {"url": ..., "files": {"<official file>": "<md5>"},
                  "published_params": {"file": ..., "sha256": ..., "source": ...}}}

The ``ppuda`` entry is the official DeepNets-1M release, which cannot be re-generated (spec
§0.1) and is therefore pinned by its *source*: the md5 sums the official download script
publishes and the published per-architecture parameter counts the conversion is checked
against. Converted split files are registered under ``splits`` as generator version
``ppuda`` once their sha256 is known (the conversion is deterministic).
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

from deepnetsbench.errors import BenchError

ENV_RELEASES = "DEEPNETS_BENCH_RELEASES"
DEFAULT_PATH = Path(__file__).with_name("releases.json")
_SHA256 = re.compile(r"^[0-9a-f]{64}$")


def releases_path(path: str | os.PathLike | None = None) -> Path:
    """The releases file in use: ``path``, else ``$DEEPNETS_BENCH_RELEASES``, else the packaged one."""
    if path is not None:
        return Path(path)
    env = os.environ.get(ENV_RELEASES)
    return Path(env) if env else DEFAULT_PATH


def load_releases(path: str | os.PathLike | None = None) -> dict:
    """Read the releases file; a missing file means no release is known yet."""
    p = releases_path(path)
    if not p.exists():
        return {"splits": {}, "datasets": {}}
    try:
        data = json.loads(p.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as err:
        raise BenchError(f"cannot read releases file {p}: {err}",
                         "restore it from git (git checkout -- deepnetsbench/releases.json)") from None
    if not isinstance(data.get("splits", {}), dict) or not isinstance(data.get("datasets", {}), dict):
        raise BenchError(f"releases file {p} has a bad layout",
                         'it must be {"splits": {name: {version: sha256}}, "datasets": {name: [sha256]}}')
    data.setdefault("splits", {})
    data.setdefault("datasets", {})
    return data


def split_versions(name: str, path: str | os.PathLike | None = None) -> dict[str, str]:
    """``{generator_version: sha256}`` of every registered release of split ``name``."""
    return dict(load_releases(path)["splits"].get(name, {}))


def known_split(name: str, sha256: str, path: str | os.PathLike | None = None,
                generator_version: str | None = None) -> bool:
    """Whether ``(name, sha256)`` is a registered split release (optionally of that version)."""
    versions = split_versions(name, path)
    if generator_version is not None:
        return versions.get(generator_version) == sha256
    return sha256 in versions.values()


def known_dataset(name: str, sha256: str, path: str | os.PathLike | None = None) -> bool:
    """Whether ``sha256`` is a registered content hash of dataset ``name``."""
    return sha256 in load_releases(path)["datasets"].get(name, [])


PPUDA = "ppuda"


def ppuda_release(path: str | os.PathLike | None = None) -> dict:
    """The registered official release: ``{"url", "files": {name: md5}, "published_params"}``."""
    entry = load_releases(path).get(PPUDA)
    if not isinstance(entry, dict) or not isinstance(entry.get("files"), dict):
        raise BenchError(f"the releases file {releases_path(path)} has no valid {PPUDA!r} entry",
                         "restore it from git (git checkout -- deepnetsbench/releases.json)")
    return entry


def _check_sha(sha256: str) -> str:
    sha = sha256.strip().lower()
    if not _SHA256.match(sha):
        raise BenchError(f"{sha256!r} is not a sha256 hex digest",
                         "pass the 64-hex-digit sha256 of the file or content")
    return sha


def _write(data: dict, path: str | os.PathLike | None) -> Path:
    from deepnetsbench.results import atomic_write_text

    p = releases_path(path)
    atomic_write_text(p, json.dumps(data, indent=2, sort_keys=True) + "\n")
    return p


def register_split(name: str, generator_version: str, sha256: str,
                   path: str | os.PathLike | None = None, replace: bool = False) -> Path:
    """Record a published split release. Re-registering the same hash is a no-op; a different
    hash for an existing version is refused unless ``replace`` (a release must not move)."""
    sha = _check_sha(sha256)
    data = load_releases(path)
    versions = data["splits"].setdefault(name, {})
    old = versions.get(generator_version)
    if old is not None and old != sha and not replace:
        raise BenchError(
            f"split {name!r} version {generator_version!r} is already released as {old[:12]}...",
            "publish the new file under a new generator version (or pass replace=True "
            "if the old release was never used)")
    versions[generator_version] = sha
    return _write(data, path)


def register_dataset(name: str, content_sha256: str,
                     path: str | os.PathLike | None = None) -> Path:
    """Record an accepted content hash of an image dataset."""
    sha = _check_sha(content_sha256)
    data = load_releases(path)
    hashes = data["datasets"].setdefault(name, [])
    if sha not in hashes:
        hashes.append(sha)
    return _write(data, path)
