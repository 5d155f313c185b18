"""Files the suite reads from strangers and writes for keeps: strict, bounded JSON parsing
(no NaN, no duplicate keys, bounded nesting and size, one-line errors) and atomic writes
(a temp file and ``os.replace``: a crash never leaves a torn file)."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

from deepnetsbench.errors import BenchError

__all__ = ["MAX_JSON_DEPTH", "MAX_RESULTS_BYTES", "atomic_write_text", "loads_strict",
           "one_line_text", "read_bounded"]

#: Results files larger than this are refused unread (a full evaluation split is < 2 MB).
MAX_RESULTS_BYTES = 16 << 20
#: Deepest nesting of objects/arrays accepted in a results file (the schema needs ~6).
MAX_JSON_DEPTH = 32


def _file_mode(path: Path) -> int:
    try:
        return path.stat().st_mode & 0o777
    except FileNotFoundError:
        umask = os.umask(0)
        os.umask(umask)
        return 0o666 & ~umask


def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    """Write via a temp file in the same directory and ``os.replace``: never a torn file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        os.fchmod(fd, _file_mode(path))  # mkstemp makes 0600; keep the usual permissions
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def one_line_text(text: Any, limit: int = 80) -> str:
    """``text`` safe to quote in a one-line message: whitespace and control characters
    collapsed, shortened to ``limit`` characters."""
    s = "".join(c if c.isprintable() else " " for c in str(text))
    s = " ".join(s.split())
    return s if len(s) <= limit else s[: limit - 3] + "..."


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise ValueError(f"duplicate key {key!r}")
        out[key] = value
    return out


def _depth(value: Any) -> int:
    deepest, stack = 0, [(value, 1)]
    while stack:
        v, d = stack.pop()
        if isinstance(v, dict | list):
            deepest = max(deepest, d)
            stack.extend((c, d + 1) for c in (v.values() if isinstance(v, dict) else v))
    return deepest


def loads_strict(data: bytes, source: str, max_depth: int = MAX_JSON_DEPTH,
                 fix: str = "re-run the evaluator or restore the file") -> Any:
    """Parse untrusted JSON bytes: UTF-8 only, no NaN/Infinity, no duplicate keys, nesting at
    most ``max_depth``; every problem is a one-line BenchError naming ``source``."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as err:
        raise BenchError(f"{source} is not UTF-8 text (invalid byte at offset {err.start})",
                         fix) from None
    if text.startswith("\ufeff"):
        text = text[1:]
    try:
        value = json.loads(text, parse_constant=_no_constant, object_pairs_hook=_no_duplicates)
    except json.JSONDecodeError as err:
        raise BenchError(f"{source} is not JSON (line {err.lineno}, column {err.colno}: "
                         f"{err.msg})", fix) from None
    except RecursionError:
        raise BenchError(f"{source} nests deeper than {max_depth} levels", fix) from None
    except ValueError as err:
        raise BenchError(f"{source} is not strict JSON ({err})", fix) from None
    if _depth(value) > max_depth:
        raise BenchError(f"{source} nests deeper than {max_depth} levels", fix)
    return value


def read_bounded(path: str | os.PathLike, what: str = "results file",
                 max_bytes: int = MAX_RESULTS_BYTES) -> bytes:
    """The bytes of ``path``, refusing files over ``max_bytes`` before reading them."""
    path = Path(path)
    try:
        with open(path, "rb") as f:
            size = os.fstat(f.fileno()).st_size
            if size > max_bytes:
                raise BenchError(f"{what} {path} is {size / 2**20:.1f} MiB, over the "
                                 f"{max_bytes / 2**20:.0f} MiB limit",
                                 "submit the file the evaluator wrote (a full split is "
                                 "well under the limit); do not pad or merge files")
            data = f.read(max_bytes + 1)
    except FileNotFoundError:
        raise BenchError(f"{what} {path} does not exist",
                         "check the path (deepnets-bench eval prints where it wrote)") from None
    except IsADirectoryError:
        raise BenchError(f"{what} {path} is a folder", "pass the JSON file") from None
    except OSError as err:
        raise BenchError(f"cannot read {what} {path}: {err.strerror}",
                         "check the file's permissions") from None
    if len(data) > max_bytes:  # grew while we read it
        raise BenchError(f"{what} {path} is over the {max_bytes / 2**20:.0f} MiB limit",
                         "submit the file the evaluator wrote")
    return data
