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

Entries of status ``published`` hold a paper's figures instead of a run (``leaderboard
import-published``; :mod:`deepnetsbench.leaderboard.ppuda` says how they and the runs on
the official files are pinned); they are never ``reproduced``.
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
from typing import Literal

from pydantic import BaseModel, ConfigDict, ValidationError, model_validator

from deepnetsbench.errors import BenchError
from deepnetsbench.leaderboard.ppuda import (
    board_split_id,
    check_ppuda_params,
    is_ppuda,
    ppuda_split_pins,
)
from deepnetsbench.leaderboard.text import check_text_fields, check_url
from deepnetsbench.releases import dataset_release, names_sha256, split_release, split_versions
from deepnetsbench.results import (
    DEFAULT_BOOT_SEED,
    DEFAULT_N_BOOT,
    MAX_RESULTS_BYTES,
    Results,
    aggregate_mismatch,
    atomic_write_text,
    is_published,
    load_results,
    loads_strict,
    one_line_text,
    read_bounded,
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
    #: ``submitted``: a results file of the evaluator; ``published``: figures from a paper,
    #: imported as published and not re-run (never ``reproduced``; see ENTRY_STATUSES).
    status: Literal["submitted", "published"] = "submitted"
    results: Results

    @model_validator(mode="after")
    def _published_not_reproduced(self) -> Entry:
        if self.status == "published" and self.reproduced:
            raise ValueError("a published entry is not reproduced until someone re-runs it "
                             "(submit that run as its own entry)")
        return self


#: What each entry status means (the board labels rows with it).
ENTRY_STATUSES = {
    "submitted": "a results file of deepnets-bench eval, self-reported unless reproduced",
    "published": "figures published with a paper, imported as they are, not re-run here",
}


#: Method fields added after schema 1.0, hashed only when set: an entry submitted before
#: they existed keeps its content hash.
_LATER_METHOD_FIELDS = {"training_budget": None, "paper": ""}


def content_sha256(results: Results) -> str:
    """sha256 of the canonical JSON of ``results`` (sorted keys, no whitespace)."""
    data = results.model_dump(mode="json")
    for key, default in _LATER_METHOD_FIELDS.items():
        if data["method"].get(key, default) == default:
            data["method"].pop(key, None)
    text = json.dumps(data, sort_keys=True, separators=(",", ":"))
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
            board_split_id(results), results.dataset.content_sha256, target_of(results))


# ----------------------------------------------------------------------------- checks


def check_results(res: Results, releases: str | os.PathLike | None = None,
                  source: str = "results", published: bool = False) -> None:
    """Every rule a results file must pass to enter the leaderboard (bar duplicates).
    ``published``: the results are an entry of status ``published`` (a paper's figures)."""
    p = res.protocol
    _check_published(res, source, published)
    if not published:
        _check_origin(res, source)
    if p.split != res.split.name or p.dataset != res.dataset.name:
        raise BenchError(
            f"{source}: protocol names split/dataset {one_line_text(p.split)!r}/"
            f"{one_line_text(p.dataset)!r} but the run records {one_line_text(res.split.name)!r}/"
            f"{one_line_text(res.dataset.name)!r}",
            "re-run the evaluator; do not edit results files by hand")
    check_text_fields(res, source)

    if is_ppuda(res):
        split_pins = ppuda_split_pins(res, releases, source)
    else:
        split_pins = split_release(release_name(res), res.split.sha256, releases,
                                   res.split.generator_version)
    if split_pins is None:
        known = split_versions(release_name(res), releases)
        have = ", ".join(f"v{v}={s[:12]}" for v, s in sorted(known.items())) or "none"
        raise BenchError(
            f"{source}: split {one_line_text(res.split.name)!r} (generator version "
            f"{one_line_text(res.split.generator_version)!r}, sha256 "
            f"{one_line_text(res.split.sha256, 12)}...) is not a released split (known "
            f"releases: {have})",
            "evaluate on the official split file (deepnets-bench download), not a locally "
            "generated or modified one")
    data_pins = dataset_release(res.dataset.name, res.dataset.content_sha256, releases)
    if data_pins is None:
        raise BenchError(
            f"{source}: dataset {one_line_text(res.dataset.name)!r} with content sha256 "
            f"{one_line_text(res.dataset.content_sha256, 12)}... is not a released dataset",
            "evaluate on the official test images (deepnets-bench download) without "
            "resizing or re-encoding them")
    board = _lite_pins(res, split_pins, _board_pins(res, split_pins, data_pins, source), source)
    _check_records(res, board, source)
    _check_pinned_protocol(res, board, source)
    if is_ppuda(res):
        check_ppuda_params(res, releases, source)

    if p.batch_size != OFFICIAL_BATCH_SIZE:
        raise BenchError(f"{source}: protocol batch_size is {p.batch_size}, the official "
                         f"protocol uses {OFFICIAL_BATCH_SIZE}",
                         f"re-run with --batch-size {OFFICIAL_BATCH_SIZE} (the default)")
    if p.bn_mode != OFFICIAL_BN_MODE:
        raise BenchError(f"{source}: protocol bn_mode is {one_line_text(p.bn_mode)!r}, the "
                         f"official protocol uses {OFFICIAL_BN_MODE!r} (BatchNorm with batch "
                         "statistics)", "re-run with the default BatchNorm mode")

    if not res.method.builtin and not check_url(res.method.url, REPO_ROOT):
        raise BenchError(f"{source}: method {one_line_text(res.method.name)!r} has no public "
                         f"code link (method.url = {one_line_text(res.method.url)!r})",
                         "set the method's url to a public http(s) repository with the code "
                         "and weights, then re-run the evaluator")

    agg = res.aggregates
    if (agg.n_boot, agg.bootstrap_seed) != (DEFAULT_N_BOOT, DEFAULT_BOOT_SEED):
        raise BenchError(
            f"{source}: aggregates use n_boot={agg.n_boot}, seed={agg.bootstrap_seed}; the "
            f"leaderboard uses n_boot={DEFAULT_N_BOOT}, seed={DEFAULT_BOOT_SEED}",
            "recompute them with deepnetsbench.results.aggregate(records) defaults")
    diff = aggregate_mismatch(res)
    if diff:
        raise BenchError(f"{source}: aggregates do not match the records "
                         f"({one_line_text(diff, 200)})",
                         "do not edit numbers by hand; recompute with "
                         "deepnetsbench.results.aggregate(records) or re-run the evaluator")


#: Protocol versions whose evaluator ran ``predict`` in an isolated worker (and says so in
#: ``protocol.extra.isolation``). Earlier versions predate the worker.
ISOLATED_SINCE = 2


def _check_published(res: Results, source: str, published: bool) -> None:
    """Published figures enter only as published entries, and only for the official release."""
    if is_published(res) and not published:
        raise BenchError(f"{source}: these are published figures (protocol.extra.published), "
                         "not a run of the evaluator",
                         "published figures enter through `deepnets-bench leaderboard "
                         "import-published`, as entries of status 'published'")
    if published and not is_published(res):
        raise BenchError(f"{source}: an entry of status 'published' must hold published "
                         "figures (protocol.extra.published)",
                         "restore it from git, or regenerate it with `deepnets-bench "
                         "leaderboard import-published`")
    if published and not is_ppuda(res):
        raise BenchError(f"{source}: published figures are accepted for the ppuda release "
                         "(the official DeepNets-1M files) only",
                         "regenerate them with `deepnets-bench leaderboard import-published`")


def _check_origin(res: Results, source: str) -> None:
    """Runs that are not leaderboard runs by construction: mock and in-process ones."""
    extra = res.protocol.extra or {}
    if extra.get("mock"):
        raise BenchError(f"{source}: these are the results of a --mock run (4 tiny networks, "
                         "synthetic images): a smoke test, not a leaderboard run",
                         "run the evaluator without --mock on the official split and dataset")
    isolation = extra.get("isolation")
    if isolation == "in-process":
        raise BenchError(f"{source}: the method ran inside the evaluator's process "
                         "(--in-process, a debugging mode), so nothing kept it from the test "
                         "images or the scoring code", "re-run without --in-process")
    try:
        version = int(str(res.protocol.version).split(".")[0])
    except ValueError:
        version = 0
    if version >= ISOLATED_SINCE and isolation != "process":
        raise BenchError(f"{source}: protocol {one_line_text(res.protocol.version)} results "
                         f"must say protocol.extra.isolation = 'process' (found "
                         f"{one_line_text(isolation)!r})",
                         "submit the file the evaluator wrote, unedited")


def _board_pins(res: Results, split_pins: dict, data_pins: dict, source: str) -> dict:
    """What the release says a complete run on this board records."""
    fix = ("maintainers: re-register the release from its file (deepnets-bench leaderboard "
           "register-split NAME VERSION --file F / register-dataset NAME --file F)")
    if res.suite == "deepnets1m":
        board = {k: split_pins.get(k) for k in ("num_items", "names_sha256")}
        board.update(num_classes=data_pins.get("num_classes"),
                     image_size=data_pins.get("eval_size"),
                     eval_images=data_pins.get("num_test"))
    else:
        per = (split_pins.get("datasets") or {}).get(res.dataset.name)
        if per is None and split_pins.get("datasets") is not None:
            kind = "episodes" if res.suite.startswith("episodes") else "pins"
            raise BenchError(f"{source}: the release {release_name(res)} has no "
                             f"{one_line_text(res.dataset.name)!r} {kind}",
                             f"use one of its datasets: {', '.join(split_pins['datasets'])}")
        board = dict(per or {})
    board["num_test"] = data_pins.get("num_test")
    missing = sorted(k for k, v in board.items() if v is None)
    if missing:
        raise BenchError(f"{source}: the releases file pins no {', '.join(missing)} for "
                         f"{release_name(res)} / {one_line_text(res.dataset.name)}", fix)
    return board


def _lite_pins(res: Results, split_pins: dict, board: dict, source: str) -> dict:
    """A deepnets1m-lite run: its board adds the subset (split size, architecture indices)
    and the run must record that subset; a full deepnets1m run must record none
    (deepnetsbench/eval/lite.py)."""
    from deepnetsbench.eval.lite import LITE, check_lite, lite_board

    if res.suite != LITE:
        if res.suite == "deepnets1m":
            check_lite(res, None, source)
        return board
    try:
        board = lite_board(split_pins, board, res.split.name)
    except BenchError as err:
        raise BenchError(f"{source}: {err.what}", err.fix) from None
    check_lite(res, board, source)
    return board


def _check_records(res: Results, board: dict, source: str) -> None:
    indices = [r.index for r in res.records]
    seen: set[int] = set()
    dups = sorted({i for i in indices if i in seen or seen.add(i)})
    if dups:
        raise BenchError(
            f"{source}: architecture indices appear more than once: {_few(dups)}",
            "keep one record per architecture (re-run the evaluator to get a clean file)")
    n = int(board["num_items"])
    items = int(board.get("split_items", n))  # a lite board: the subset of a larger file
    expected = set(board.get("indices", range(n)))
    if res.split.num_items != items:
        raise BenchError(f"{source}: split.num_items is {res.split.num_items}, the release has "
                         f"{items} items", "evaluate every item of the released split and "
                         "submit the file the evaluator wrote")
    missing = sorted(expected - seen)
    extra = sorted(seen - expected)
    if missing or extra:
        what = []
        if missing:
            what.append(f"{len(missing)} of {n} architectures missing ({_few(missing)})")
        if extra:
            what.append(f"indices outside 0..{n - 1} ({_few(extra)})" if "indices" not in board
                        else f"indices outside the {res.suite} subset ({_few(extra)})")
        raise BenchError(f"{source}: incomplete run: " + "; ".join(what),
                         "resume the evaluation until every architecture of the split has a "
                         "record (failures are recorded as status 'failed', not left out)")
    names = [r.name for r in sorted(res.records, key=lambda r: r.index)]
    if names_sha256(names) != board["names_sha256"]:
        raise BenchError(f"{source}: the records' names are not those of the release "
                         f"(first record: {one_line_text(names[0] if names else '')!r})",
                         "submit the file the evaluator wrote on the released split")


def _check_pinned_protocol(res: Results, board: dict, source: str) -> None:
    p = res.protocol
    checks = [("protocol.num_classes", p.num_classes, board["num_classes"]),
              ("protocol.image_size", p.image_size, board["image_size"]),
              ("dataset.num_test", res.dataset.num_test, board["num_test"])]
    for what, have, want in checks:
        if have != want:
            raise BenchError(f"{source}: {what} is {have}, the release defines {want}",
                             "evaluate with the official dataset at its evaluation size "
                             "(submit the file the evaluator wrote)")
    if p.eval_images != board["eval_images"]:
        raise BenchError(f"{source}: evaluated on {p.eval_images} images, the official test "
                         f"set of {one_line_text(res.dataset.name)!r} defines "
                         f"{board['eval_images']}",
                         "re-run on the full test set (do not limit the number of images)")


REPO_ROOT = Path(__file__).resolve().parents[2]


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


def is_board(board: str | os.PathLike) -> bool:
    """Whether ``board`` is a leaderboard folder (it has an ``entries/`` folder)."""
    return entries_dir(board).is_dir()


def resolve_board(board: str | os.PathLike | None, create: bool = False) -> Path:
    """The leaderboard folder a command works on. An explicit ``board`` is taken as given
    (``create``: it may be new); without one, ``./leaderboard`` must already be a
    leaderboard, so running outside the repository never creates or reads an empty one."""
    if board is not None:
        path = Path(board)
        if not create and path.exists() and not is_board(path):
            raise BenchError(f"{path} is not a leaderboard (it has no entries/ folder)",
                             "pass the leaderboard folder of the repository with --dir")
        return path
    path = Path(DEFAULT_DIR)
    if not is_board(path):
        where = "there is no ./leaderboard" if not path.exists() else \
            "./leaderboard has no entries/ folder"
        raise BenchError(f"{where}: this is not the repository's root",
                         "run the command in the repository's root, or name the "
                         "leaderboard folder with --dir (a new one is created on submit)")
    return path


def load_entry(path: str | os.PathLike) -> Entry:
    """Read an entry file: bounded size, strict JSON, the schema (no further checks)."""
    path = Path(path)
    fix = "restore it from git or remove it"
    data = loads_strict(read_bounded(path, "leaderboard entry", MAX_RESULTS_BYTES + (1 << 20)),
                        f"leaderboard entry {path}", fix=fix)
    try:
        return Entry.model_validate(data)
    except ValidationError as err:
        first = err.errors()[0]
        loc = ".".join(one_line_text(x, 40) for x in first["loc"]) or "<root>"
        raise BenchError(f"leaderboard entry {path} is invalid: field '{loc}': "
                         f"{one_line_text(first['msg'], 200)}", fix) from None


def check_entry(path: Path, entry: Entry, releases: str | os.PathLike | None = None) -> None:
    """Re-validate a stored entry as if it were submitted again: every results check, its
    content hash and its file name. A hand-edited entry fails here."""
    fix = "restore it from git, or remove it and submit the results again"
    try:
        check_results(entry.results, releases, source=f"leaderboard entry {path.name}",
                      published=entry.status == "published")
    except BenchError as err:
        raise BenchError(err.what, fix) from None
    sha = content_sha256(entry.results)
    if entry.content_sha256 != sha:
        raise BenchError(f"leaderboard entry {path.name} was edited: its results hash to "
                         f"{sha[:12]}..., the entry says {one_line_text(entry.content_sha256, 12)}"
                         "...", fix)
    if path.name != entry_filename(entry.results, sha):
        raise BenchError(f"leaderboard entry {path.name} should be named "
                         f"{entry_filename(entry.results, sha)}", fix)


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

            render_board(board, releases)
    return target
