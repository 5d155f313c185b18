"""Where the suite keeps downloaded and generated files.

Precedence: an explicit ``--root`` argument, then ``$DEEPNETS_BENCH_ROOT``, then
``$XDG_CACHE_HOME/deepnets-bench`` (``~/.cache/deepnets-bench``).
"""

from __future__ import annotations

import os
from pathlib import Path

ENV_ROOT = "DEEPNETS_BENCH_ROOT"


def data_root(root: str | os.PathLike | None = None) -> Path:
    """Resolve (and create) the cache root."""
    if root is None:
        root = os.environ.get(ENV_ROOT)
    if root is None:
        cache = os.environ.get("XDG_CACHE_HOME") or os.path.join(Path.home(), ".cache")
        root = os.path.join(cache, "deepnets-bench")
    path = Path(root).expanduser()
    path.mkdir(parents=True, exist_ok=True)
    return path


def splits_dir(root: str | os.PathLike | None = None) -> Path:
    path = data_root(root) / "splits"
    path.mkdir(parents=True, exist_ok=True)
    return path


def images_dir(root: str | os.PathLike | None = None) -> Path:
    path = data_root(root) / "images"
    path.mkdir(parents=True, exist_ok=True)
    return path
