"""Leaderboard entries: validation of a results file, and safe submission.

The leaderboard is a directory; ``<dir>/entries/*.json`` (one file per entry) is the only
source of truth, everything else (README table, static site) is rebuilt from it. An entry
is the submitted :class:`~deepnetsbench.results.Results` unchanged, wrapped with the
submission date, whether the maintainers reproduced it, and the sha256 of its content.

A submission is refused unless the run is on a registered split and dataset release,
covers every architecture of the split exactly once, follows the fixed protocol, has a
public code link, carries aggregates that match a recomputation from its records, and is
not already on the board. The duplicate check and the write happen under an exclusive
``flock`` on ``<dir>/.lock``, and the file is written to a temp file then ``os.replace``-d,
so racing submissions neither lose an entry nor leave a torn file.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import re
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

from pydantic import BaseModel, ConfigDict, ValidationError

from deepnetsbench.errors import BenchError
from deepnetsbench.releases import known_dataset, known_split, split_versions
from deepnetsbench.results import (
    DEFAULT_BOOT_SEED,
    DEFAULT_N_BOOT,
    Results,
    aggregate_mismatch,
    atomic_write_text,
    load_results,
)

ENTRY_VERSION = "1"
OFFICIAL_BATCH_SIZE = 64
OFFICIAL_BN_MODE = "batch"
DEFAULT_DIR = "leaderboard"


class Entry(BaseModel):
    """One leaderboard entry: a results file plus submission metadata."""

    model_config = ConfigDict(extra="forbid")

    entry_version: str = ENTRY_VERSION
    content_sha256: str
    submitted_at: datetime
    reproduced: bool = False
    results: Results


def content_sha256(results: Results) -> str:
    """sha256 of the canonical JSON of ``results`` (sorted keys, no whitespace)."""
    text = json.dumps(results.model_dump(mode="json"), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def slug(text: str) -> str:
    """File-name-safe lower-case form: runs of other characters become one '-'."""
    s = re.sub(r"[^a-z0-9.]+", "-", text.lower()).strip("-.")
    return s or "x"


def entry_filename(results: Results, sha: str) -> str:
    return "__".join([slug(results.suite), slug(results.split.name), slug(results.dataset.name),
                      slug(results.method.name), sha[:12]]) + ".json"


def release_name(results: Results) -> str:
    """Name of the split in the releases file: ``test`` for DeepNets-1M, ``<suite>/<split>``
    (e.g. ``episodes-intra/test``) for the other suites."""
    if results.suite == "deepnets1m":
        return results.split.name
    return f"{results.suite}/{results.split.name}"


def target_of(results: Results) -> str:
    """The fixed target network of a dataset-episode run ('' for architecture suites)."""
    return str((results.protocol.extra or {}).get("target") or "")


def board_key(results: Results) -> tuple[str, ...]:
    """Entries with the same key ran on the same architectures and images: one table."""
    return (results.suite, results.split.name, results.dataset.name,
            results.split.sha256, results.dataset.content_sha256, target_of(results))


# ----------------------------------------------------------------------------- checks


def check_results(res: Results, releases: str | os.PathLike | None = None,
                  source: str = "results") -> None:
    """Every rule a results file must pass to enter the leaderboard (bar duplicates)."""
    p = res.protocol
    if p.split != res.split.name or p.dataset != res.dataset.name:
        raise BenchError(
            f"{source}: protocol names split/dataset {p.split!r}/{p.dataset!r} but the run "
            f"records {res.split.name!r}/{res.dataset.name!r}",
            "re-run the evaluator; do not edit results files by hand")

    if not known_split(release_name(res), res.split.sha256, releases,
                       res.split.generator_version):
        known = split_versions(release_name(res), releases)
        have = ", ".join(f"v{v}={s[:12]}" for v, s in sorted(known.items())) or "none"
        raise BenchError(
            f"{source}: split {res.split.name!r} (generator version "
            f"{res.split.generator_version!r}, sha256 {res.split.sha256[:12]}...) is not a "
            f"released split (known releases: {have})",
            "evaluate on the official split file (deepnets-bench download), not a locally "
            "generated or modified one")
    if not known_dataset(res.dataset.name, res.dataset.content_sha256, releases):
        raise BenchError(
            f"{source}: dataset {res.dataset.name!r} with content sha256 "
            f"{res.dataset.content_sha256[:12]}... is not a released dataset",
            "evaluate on the official test images (deepnets-bench download) without "
            "resizing or re-encoding them")

    indices = [r.index for r in res.records]
    seen: set[int] = set()
    dups = sorted({i for i in indices if i in seen or seen.add(i)})
    if dups:
        raise BenchError(
            f"{source}: architecture indices appear more than once: {_few(dups)}",
            "keep one record per architecture (re-run the evaluator to get a clean file)")
    n = res.split.num_items
    missing = sorted(set(range(n)) - seen)
    extra = sorted(seen - set(range(n)))
    if missing or extra:
        what = []
        if missing:
            what.append(f"{len(missing)} of {n} architectures missing ({_few(missing)})")
        if extra:
            what.append(f"indices outside 0..{n - 1} ({_few(extra)})")
        raise BenchError(f"{source}: incomplete run: " + "; ".join(what),
                         "resume the evaluation until every architecture of the split has a "
                         "record (failures are recorded as status 'failed', not left out)")

    if p.batch_size != OFFICIAL_BATCH_SIZE:
        raise BenchError(f"{source}: protocol batch_size is {p.batch_size}, the official "
                         f"protocol uses {OFFICIAL_BATCH_SIZE}",
                         f"re-run with --batch-size {OFFICIAL_BATCH_SIZE} (the default)")
    if p.bn_mode != OFFICIAL_BN_MODE:
        raise BenchError(f"{source}: protocol bn_mode is {p.bn_mode!r}, the official protocol "
                         f"uses {OFFICIAL_BN_MODE!r} (BatchNorm with batch statistics)",
                         "re-run with the default BatchNorm mode")
    if res.suite == "deepnets1m" and p.eval_images != res.dataset.num_test:
        raise BenchError(f"{source}: evaluated on {p.eval_images} images, the official test "
                         f"set of {res.dataset.name!r} has {res.dataset.num_test}",
                         "re-run on the full test set (do not limit the number of images)")

    if not res.method.builtin and not (re.match(r"^https?://\S+$", res.method.url or "")
                                       or _shipped_baseline(res.method.url)):
        raise BenchError(f"{source}: method {res.method.name!r} has no public code link "
                         f"(method.url = {res.method.url!r})",
                         "set the method's url to a public repository with the code and "
                         "weights, then re-run the evaluator")

    agg = res.aggregates
    if (agg.n_boot, agg.bootstrap_seed) != (DEFAULT_N_BOOT, DEFAULT_BOOT_SEED):
        raise BenchError(
            f"{source}: aggregates use n_boot={agg.n_boot}, seed={agg.bootstrap_seed}; the "
            f"leaderboard uses n_boot={DEFAULT_N_BOOT}, seed={DEFAULT_BOOT_SEED}",
            "recompute them with deepnetsbench.results.aggregate(records) defaults")
    diff = aggregate_mismatch(res)
    if diff:
        raise BenchError(f"{source}: aggregates do not match the records ({diff})",
                         "do not edit numbers by hand; recompute with "
                         "deepnetsbench.results.aggregate(records) or re-run the evaluator")


def _shipped_baseline(url: str | None) -> bool:
    """A reference baseline shipped with the suite names its code by repository path."""
    if not url or not url.startswith("baselines/"):
        return False
    repo = Path(__file__).resolve().parents[2]
    return (repo / url).exists()


def _few(xs: list[int], k: int = 5) -> str:
    head = ", ".join(map(str, xs[:k]))
    return head + (f", ... ({len(xs)} in all)" if len(xs) > k else "")


def find_duplicate(res: Results, sha: str, entries: list[tuple[Path, Entry]]) -> str | None:
    """Why ``res`` duplicates an existing entry, or None."""
    for path, e in entries:
        if e.content_sha256 == sha:
            return f"the same results are already entry {path.name}"
        r = e.results
        if (board_key(r) == board_key(res) and r.method.name == res.method.name
                and r.method.version == res.method.version):
            return (f"method {res.method.name!r} version {res.method.version!r} already has "
                    f"an entry on {res.suite}/{res.split.name}/{res.dataset.name}: {path.name}")
    return None


# ----------------------------------------------------------------------------- storage


def entries_dir(board: str | os.PathLike) -> Path:
    return Path(board) / "entries"


def load_entry(path: str | os.PathLike) -> Entry:
    path = Path(path)
    try:
        return Entry.model_validate_json(path.read_bytes())
    except ValidationError as err:
        first = err.errors()[0]
        loc = ".".join(str(x) for x in first["loc"]) or "<root>"
        raise BenchError(f"leaderboard entry {path} is invalid: field '{loc}': {first['msg']}",
                         "restore it from git or remove it") from None


def load_entries(board: str | os.PathLike = DEFAULT_DIR) -> list[tuple[Path, Entry]]:
    """All entries of a leaderboard, sorted by file name (deterministic)."""
    d = entries_dir(board)
    if not d.is_dir():
        return []
    return [(p, load_entry(p)) for p in sorted(d.glob("*.json"))]


@contextlib.contextmanager
def board_lock(board: str | os.PathLike) -> Iterator[None]:
    """Exclusive lock on ``<board>/.lock`` (released by the kernel even if we crash)."""
    Path(board).mkdir(parents=True, exist_ok=True)
    fd = os.open(os.path.join(board, ".lock"), os.O_CREAT | os.O_RDWR, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)


def validate(path: str | os.PathLike, board: str | os.PathLike | None = DEFAULT_DIR,
             releases: str | os.PathLike | None = None) -> Results:
    """Run every submission check on a results file without writing anything."""
    res = load_results(path)
    check_results(res, releases, source=str(path))
    if board is not None:
        why = find_duplicate(res, content_sha256(res), load_entries(board))
        if why:
            raise BenchError(f"{path}: duplicate: {why}", _DUP_FIX)
    return res


_DUP_FIX = ("a new run of the same method needs a new method version (method.version); "
            "to replace an entry, remove the old file in a pull request")


def submit(path: str | os.PathLike, board: str | os.PathLike = DEFAULT_DIR,
           reproduced: bool = False, releases: str | os.PathLike | None = None,
           now: datetime | None = None, render: bool = False) -> Path:
    """Validate ``path`` and add it as a new entry; returns the entry's path.

    With ``render``, the README and site are rebuilt while the lock is still held, so the
    last render of racing submissions always sees every entry.
    """
    res = load_results(path)
    check_results(res, releases, source=str(path))
    sha = content_sha256(res)
    entry = Entry(content_sha256=sha, submitted_at=now or datetime.now(UTC),
                  reproduced=reproduced, results=res)
    text = json.dumps(entry.model_dump(mode="json"), indent=2) + "\n"
    with board_lock(board):
        why = find_duplicate(res, sha, load_entries(board))
        if why:
            raise BenchError(f"{path}: duplicate: {why}", _DUP_FIX)
        target = entries_dir(board) / entry_filename(res, sha)
        atomic_write_text(target, text)
        if render:
            from deepnetsbench.leaderboard.render import render as render_board

            render_board(board)
    return target
