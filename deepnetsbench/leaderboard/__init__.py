"""Leaderboard: validate and submit results files, rank them, render README and static site.

``<dir>/entries/*.json`` is the source of truth; ``render`` rebuilds everything else.
"""

from deepnetsbench.leaderboard.board import Row, Table, build_tables
from deepnetsbench.leaderboard.entries import (
    Entry,
    check_results,
    content_sha256,
    load_entries,
    submit,
    validate,
)
from deepnetsbench.leaderboard.frame import BOARD_COLUMNS, load_board
from deepnetsbench.leaderboard.ranking import paired_diff_ci, significance_ranks
from deepnetsbench.leaderboard.render import render

__all__ = [
    "BOARD_COLUMNS", "Entry", "Row", "Table", "build_tables", "check_results", "content_sha256",
    "load_board", "load_entries", "paired_diff_ci", "render", "significance_ranks", "submit",
    "validate",
]
