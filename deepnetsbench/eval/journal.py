"""The run journal and the journaled run loop, shared by the architecture and episode suites.

Every finished record is appended to a JSON-lines journal beside ``--out``
(``results.json.journal``, fsync'd) whose header pins the run's identity; re-running the same
command skips what the journal holds, and the results JSON is rebuilt from the journal at the
end (also on Ctrl-C, SIGTERM or a crash, marked incomplete).
"""

from __future__ import annotations

import json
import os
import signal
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any

from deepnetsbench.errors import BenchError
from deepnetsbench.eval.progress import RunProgress
from deepnetsbench.results import Record, Results, save_results, utc_now

__all__ = ["JOURNAL_KIND", "JOURNAL_VERSION", "Journal", "Terminated", "check_out",
           "journal_path", "run_journaled"]

JOURNAL_KIND = "deepnets-bench-eval-journal"
JOURNAL_VERSION = 1


def journal_path(out: str | os.PathLike) -> Path:
    out = Path(out)
    return out.with_name(out.name + ".journal")


class Journal:
    """Append-only JSON lines: a header with the run identity, then one finished record per
    line, each flushed and fsync'd, so a killed run loses at most the architecture in flight.

    ``discard_if(old_identity)`` may accept a journal of another run as disposable (the mock
    run restarts itself when the method file changed); ``note(difference)`` reports it. Lines
    ``{"method": {...}}`` keep what the method's worker reported about itself."""

    def __init__(self, path: str | os.PathLike, identity: dict[str, Any], restart: bool = False,
                 discard_if: Callable[[Any], bool] | None = None,
                 note: Callable[[str], None] | None = None):
        self.path = Path(path)
        self.identity = json.loads(json.dumps(identity))  # normalized, JSON-comparable
        self.records: dict[int, Record] = {}
        self.method: dict[str, Any] | None = None
        self.started_at: datetime = utc_now()
        self._f = None
        self._discard_if, self._note = discard_if, note
        if restart and self.path.exists():
            self.path.unlink()
        if self.path.exists():
            self._read()
        else:
            self._create()

    def _create(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        header = {"kind": JOURNAL_KIND, "version": JOURNAL_VERSION,
                  "started_at": self.started_at.isoformat(), "identity": self.identity}
        tmp = self.path.with_name(self.path.name + ".tmp")
        with open(tmp, "w", encoding="utf-8") as f:
            f.write(json.dumps(header, sort_keys=True) + "\n")
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, self.path)

    def _read(self) -> None:
        fix = "use another --out, or --restart to discard it"
        data = self.path.read_bytes()
        lines = data.split(b"\n")
        complete = lines[:-1]  # the part after the last newline is a torn write (or empty)
        if lines[-1].strip():
            with open(self.path, "r+b") as f:  # drop the torn tail before appending
                f.truncate(len(data) - len(lines[-1]))
        try:
            header = json.loads(complete[0]) if complete else None
        except (json.JSONDecodeError, UnicodeDecodeError):
            header = None
        if not isinstance(header, dict) or header.get("kind") != JOURNAL_KIND:
            raise BenchError(f"{self.path} is not an evaluation journal", fix)
        if header.get("version") != JOURNAL_VERSION:
            raise BenchError(f"{self.path} has journal version {header.get('version')}", fix)
        diff = _first_difference(header.get("identity"), self.identity)
        empty = not any(line.strip() and b'"record"' in line for line in complete[1:])
        disposable = self._discard_if is not None and self._discard_if(header.get("identity"))
        if diff and (empty or disposable):
            # A journal without records holds nothing to lose (e.g. setup failed, the file
            # was fixed), and a disposable one (mock runs) is replaced: start afresh.
            if not empty and self._note is not None:
                self._note(diff)
            self.path.unlink()
            self._create()
            return
        if diff:
            raise BenchError(f"{self.path} belongs to a different run ({diff})", fix)
        self.started_at = datetime.fromisoformat(header["started_at"])
        for lineno, line in enumerate(complete[1:], start=2):
            if not line.strip():
                continue
            try:
                item = json.loads(line)
                if "method" in item and "record" not in item:
                    self.method = dict(item["method"])
                    continue
                rec = Record.model_validate(item["record"])
            except (json.JSONDecodeError, UnicodeDecodeError, KeyError, TypeError,
                    ValueError) as err:
                raise BenchError(f"{self.path} line {lineno} is corrupt ({type(err).__name__})",
                                 fix) from None
            self.records[rec.index] = rec

    def _write(self, item: dict[str, Any]) -> None:
        if self._f is None:
            self._f = open(self.path, "a", encoding="utf-8")
        self._f.write(json.dumps(item, allow_nan=False) + "\n")
        self._f.flush()
        os.fsync(self._f.fileno())

    def append(self, record: Record) -> None:
        self._write({"record": record.model_dump(mode="json")})
        self.records[record.index] = record

    def note_method(self, method: dict[str, Any]) -> None:
        """Keep what the method reported about itself (its meta), once per change."""
        if method != self.method:
            self._write({"method": method})
            self.method = dict(method)

    def close(self) -> None:
        if self._f is not None:
            self._f.close()
            self._f = None


def _first_difference(a: Any, b: Any, where: str = "") -> str | None:
    if isinstance(a, dict) and isinstance(b, dict):
        for key in sorted(set(a) | set(b), key=str):
            d = _first_difference(a.get(key), b.get(key), f"{where}.{key}" if where else key)
            if d:
                return d
        return None
    if a != b:
        return f"{where or 'identity'}: journal has {_short(a)}, this run has {_short(b)}"
    return None


def _short(v: Any) -> str:
    s = json.dumps(v)
    return s if len(s) <= 24 else s[:21] + "..."


def check_out(out: Path, restart: bool) -> Path:
    """The journal path of ``out``; refuses to overwrite a results file that is not a run."""
    jpath = journal_path(out)
    if out.exists() and not jpath.exists() and not restart:
        raise BenchError(f"{out} exists but has no journal ({jpath.name}), so it is not a run "
                         "to resume", "use another --out, or --restart to overwrite it")
    return jpath


class Terminated(KeyboardInterrupt):
    """SIGTERM during a run: handled like Ctrl-C (results written, resumable)."""


@contextmanager
def _sigterm_as_interrupt() -> Iterator[None]:
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def on_term(signum, frame):
        raise Terminated()

    previous = signal.signal(signal.SIGTERM, on_term)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def run_journaled(journal: Journal, todo: Sequence[Any], total: int, out: Path, *,
                  describe: Callable[[Any], str], evaluate_one: Callable[[Any], Record],
                  finish: Callable[[str], Results], setup: Callable[[], None],
                  progress: bool = True, console: Any = None,
                  teardown: Callable[[], None] | None = None,
                  bar: RunProgress | None = None) -> Results | None:
    """Evaluate ``todo`` one item at a time, journaling each record as it finishes.

    Whatever ends the loop (done, Ctrl-C, SIGTERM, a crash), the results JSON is written from
    the journal once anything was done, so no finished work is lost; a run that failed before
    its first item leaves no results file behind. ``teardown`` (e.g. stopping the method's
    worker) runs in every case. Shared by the architecture and episode suites. ``bar``
    draws the progress (default: one counting items alike; ``progress=False``: none).
    """
    status = "complete"
    results = None
    console = console or _console()
    bar = bar or RunProgress(progress, console, total, total - len(todo))
    try:
        with _sigterm_as_interrupt():
            if todo:
                setup()
                with bar:
                    for item in todo:
                        name = describe(item)
                        bar.start(item, name)
                        record = evaluate_one(item)
                        journal.append(record)
                        if record.status == "failed":
                            bar.log(f"[yellow]{_escape(name)} failed:[/] "
                                    f"{_escape(record.error or '')}")
                        bar.advance(record.status == "ok")
    except KeyboardInterrupt:
        status = "interrupted"
        raise
    except BaseException:
        status = "crashed"
        raise
    finally:
        try:
            if teardown is not None:
                teardown()
        finally:
            journal.close()
            if journal.records or status == "complete":
                results = finish(status)
                save_results(results, out)
    return results


# ----------------------------------------------------------------------------- display


def _console():
    from rich.console import Console

    return Console(stderr=True)


def _escape(text: str) -> str:
    from rich.markup import escape

    return escape(text)  # a method's error message is not console markup
