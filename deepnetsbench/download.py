"""Robust HTTP(S) downloads: resume, checksum, atomic rename, configurable URLs.

Downloads land in ``<dest>.part`` and are renamed to ``dest`` only once complete and
verified, so a file at ``dest`` is always whole: an interrupted run leaves a ``.part`` that
the next run resumes with an HTTP ``Range`` request. Only the standard library (urllib)
and rich are used, so downloading works in the smallest install.
"""

from __future__ import annotations

import hashlib
import http.client
import os
import re
import socket
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from pathlib import Path

from deepnetsbench import __version__
from deepnetsbench.errors import BenchError

ENV_URL_PREFIX = "DEEPNETS_BENCH_URL_"
CHUNK = 1 << 20
USER_AGENT = f"deepnets-bench/{__version__}"
# Seconds to wait before retry k (k = 1, 2, ...): BACKOFF * 2 ** (k - 1), capped at 30 s.
BACKOFF = 1.0


class _Incomplete(Exception):
    """The connection ended before the announced number of bytes arrived (retryable)."""


def file_hash(path: str | os.PathLike, algo: str = "sha256", chunk: int = CHUNK) -> str:
    """Hex digest of a file, read in chunks so that large files need little memory."""
    h = hashlib.new(algo)
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


def base_url(kind: str, default: str) -> str:
    """The base URL for ``kind``: ``$DEEPNETS_BENCH_URL_<KIND>`` if set, else ``default``.

    ``kind`` is upper-cased and ``-`` becomes ``_`` (``deepnets1m`` reads
    ``DEEPNETS_BENCH_URL_DEEPNETS1M``). Mirrors and air-gapped setups point this at their
    own server (``file://`` URLs work too); a CLI flag may override it further.
    """
    var = ENV_URL_PREFIX + re.sub(r"[^A-Za-z0-9]", "_", kind).upper()
    value = os.environ.get(var, "").strip() or default
    return value.rstrip("/")


def url_join(base: str, *parts: str) -> str:
    """Join a base URL and path parts with single slashes."""
    return "/".join([base.rstrip("/"), *(p.strip("/") for p in parts)])


def _check(path: Path, md5: str | None, sha256: str | None) -> tuple[str, str, str] | None:
    """None when every given hash matches, else (algo, expected, actual) of the first mismatch."""
    for algo, expected in (("md5", md5), ("sha256", sha256)):
        if expected:
            actual = file_hash(path, algo)
            if actual.lower() != expected.lower():
                return algo, expected.lower(), actual
    return None


def _content_range_start(value: str | None) -> int | None:
    m = re.match(r"bytes\s+(\d+)-", value or "")
    return int(m.group(1)) if m else None


def _content_range_total(value: str | None) -> int | None:
    m = re.match(r"bytes\s+[^/]*/(\d+)", value or "")
    return int(m.group(1)) if m else None


def _fetch_once(url: str, part: Path, timeout: float, on_progress: Callable[[int, int | None], None]) -> None:
    """One attempt: resume ``part`` if the server honours Range, else restart from 0.

    Raises :class:`_Incomplete` (or an OSError) for retryable failures.
    """
    offset = part.stat().st_size if part.exists() else 0
    headers = {"User-Agent": USER_AGENT, "Accept-Encoding": "identity"}
    if offset:
        headers["Range"] = f"bytes={offset}-"
    request = urllib.request.Request(url, headers=headers)
    try:
        response = urllib.request.urlopen(request, timeout=timeout)
    except urllib.error.HTTPError as err:
        if err.code == 416 and offset:
            # Nothing left to send: either .part is already complete, or it is longer than
            # the file now on the server. Checksums (or the size) tell; restart if unsure.
            total = _content_range_total(err.headers.get("Content-Range"))
            err.close()
            if total == offset:
                on_progress(offset, total)
                return
            part.unlink(missing_ok=True)
            raise _Incomplete("partial file does not match the server's file; restarting") from None
        raise
    with response:
        status = getattr(response, "status", None)
        length = response.headers.get("Content-Length")
        length = int(length) if length and length.isdigit() else None
        if status == 206:
            if _content_range_start(response.headers.get("Content-Range")) != offset:
                part.unlink(missing_ok=True)  # not the range asked for: start over cleanly
                raise _Incomplete("server sent an unexpected range; restarting")
            mode, done = "ab", offset
        else:  # 200 or file:// (no status): the server ignored Range, start over
            mode, done = "wb", 0
        total = done + length if length is not None else None
        on_progress(done, total)
        with open(part, mode) as f:
            while block := response.read(CHUNK):
                f.write(block)
                done += len(block)
                on_progress(done, total)
            f.flush()
            os.fsync(f.fileno())
    if total is not None and done < total:
        raise _Incomplete(f"connection closed after {done} of {total} bytes")


def download_file(
    url: str,
    dest: str | os.PathLike,
    md5: str | None = None,
    sha256: str | None = None,
    progress: bool = True,
    timeout: float = 60,
    retries: int = 3,
) -> Path:
    """Download ``url`` to ``dest`` (resuming, verifying, renaming atomically); return ``dest``.

    An existing ``dest`` whose hashes match (or any existing ``dest`` when no hash is
    given) is kept without touching the network. Network failures are retried ``retries``
    times, each retry resuming from the bytes already on disk.
    """
    dest = Path(dest)
    if urllib.parse.urlsplit(url).scheme not in ("http", "https", "file"):
        raise BenchError(
            f"cannot download {url!r}: not an http(s):// or file:// URL",
            "give a full URL such as https://host/path/file",
        )
    dest.parent.mkdir(parents=True, exist_ok=True)
    if dest.exists() and _check(dest, md5, sha256) is None:
        return dest
    part = dest.with_suffix(dest.suffix + ".part")
    bar = _Bar(dest.name) if progress else None
    on_progress = bar.update if bar else (lambda done, total: None)
    restarted = False  # a resumed file with a bad hash gets one clean re-download
    try:
        while True:
            resumed = part.exists() and part.stat().st_size > 0
            _fetch_with_retries(url, part, timeout, retries, on_progress)
            bad = _check(part, md5, sha256)
            if bad is None:
                break
            part.unlink(missing_ok=True)
            if resumed and not restarted:
                restarted = True
                continue
            algo, expected, actual = bad
            raise BenchError(
                f"{dest.name} downloaded from {url} has {algo} {actual}, expected {expected}",
                "the file was corrupted in transit or the server holds a different version: "
                "re-run the command; if it persists, point the URL at a good mirror "
                f"(${ENV_URL_PREFIX}<KIND> or --base-url) or place a verified copy at {dest}",
            )
    finally:
        if bar:
            bar.close()
    os.replace(part, dest)
    return dest


def _fetch_with_retries(
    url: str, part: Path, timeout: float, retries: int, on_progress: Callable[[int, int | None], None]
) -> None:
    attempt = 0
    while True:
        try:
            _fetch_once(url, part, timeout, on_progress)
            return
        except urllib.error.HTTPError as err:
            if err.code < 500 or attempt >= retries:
                raise BenchError(
                    f"download of {url} failed: HTTP {err.code} {err.reason}",
                    "check the URL (set a mirror with $DEEPNETS_BENCH_URL_<KIND> or --base-url), "
                    "or download the file by hand and pass it with --from",
                ) from None
        except (_Incomplete, urllib.error.URLError, http.client.HTTPException, OSError) as err:
            reason = getattr(err, "reason", None) or err
            # An unknown host name will not resolve a second later: fail at once.
            if attempt >= retries or isinstance(reason, socket.gaierror):
                kept = part.stat().st_size if part.exists() else 0
                resume = f" (the {kept} bytes in {part.name} will be resumed)" if kept else ""
                raise BenchError(
                    f"download of {url} failed after {attempt + 1} attempt(s): {reason}",
                    f"check the network and re-run{resume}, use a mirror "
                    "($DEEPNETS_BENCH_URL_<KIND> or --base-url), or pass a local copy with --from",
                ) from None
        attempt += 1
        time.sleep(min(30.0, BACKOFF * 2 ** (attempt - 1)))


class _Bar:
    """A rich progress bar (bytes, speed, time left) that starts on the first update."""

    def __init__(self, label: str):
        from rich.progress import (
            BarColumn,
            DownloadColumn,
            Progress,
            TextColumn,
            TimeRemainingColumn,
            TransferSpeedColumn,
        )

        self._progress = Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            DownloadColumn(),
            TransferSpeedColumn(),
            TimeRemainingColumn(),
            transient=False,
        )
        self._task = self._progress.add_task(label, total=None)
        self._started = False

    def update(self, done: int, total: int | None) -> None:
        if not self._started:
            self._progress.start()
            self._started = True
        self._progress.update(self._task, completed=done, total=total)

    def close(self) -> None:
        if self._started:
            self._progress.stop()
