"""Rebuild the leaderboard views (README.md, static site) from the entries alone.

The output depends only on the entries and the releases file (no clock, no host; the
releases only name boards that have no entries yet), so re-rendering an unchanged board
gives byte-identical files and a pull request shows only real changes.
"""

from __future__ import annotations

import os
from pathlib import Path

from deepnetsbench.leaderboard.board import Table, build_tables
from deepnetsbench.leaderboard.entries import DEFAULT_DIR, check_entry, find_duplicate, load_entries
from deepnetsbench.leaderboard.markdown import readme_markdown as _readme
from deepnetsbench.leaderboard.overview import build_overviews, registered_releases
from deepnetsbench.leaderboard.site import site_data as _site_data
from deepnetsbench.leaderboard.site import site_html as _site_html
from deepnetsbench.results import atomic_write_text


def readme_markdown(tables: list[Table]) -> str:
    """The README for ``tables`` (overviews built from them)."""
    return _readme(tables, build_overviews(tables))


def site_data(tables: list[Table]) -> dict:
    """The JSON blob the page draws from."""
    return _site_data(tables, build_overviews(tables))


def site_html(tables: list[Table]) -> str:
    """The single static page."""
    return _site_html(tables, build_overviews(tables))


def checked_entries(board: str | os.PathLike = DEFAULT_DIR,
                    releases: str | os.PathLike | None = None) -> list:
    """The entries of ``board``, each re-validated as if submitted again (schema, every
    results check against the releases, content hash, file name, no duplicates): a
    hand-edited or no longer valid entry stops the render with its reason."""
    entries = load_entries(board)
    for i, (path, entry) in enumerate(entries):
        check_entry(path, entry, releases)
        why = find_duplicate(entry.results, entry.content_sha256, entries[:i])
        if why:
            from deepnetsbench.errors import BenchError

            raise BenchError(f"leaderboard entry {path.name} duplicates another: {why}",
                             "remove one of the two entries")
    return entries


def render(board: str | os.PathLike = DEFAULT_DIR,
           releases: str | os.PathLike | None = None) -> list[Path]:
    """Rebuild ``<board>/README.md`` and ``<board>/site/index.html`` from the entries, after
    re-validating every one of them (:func:`checked_entries`)."""
    tables = build_tables(checked_entries(board, releases))
    overviews = build_overviews(tables)
    registered = registered_releases(releases)
    board = Path(board)
    readme = board / "README.md"
    index = board / "site" / "index.html"
    atomic_write_text(readme, _readme(tables, overviews, registered))
    atomic_write_text(index, _site_html(tables, overviews, registered))
    return [readme, index]
