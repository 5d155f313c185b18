"""The leaderboard as a pandas DataFrame: one row per entry, as the board ranks it.

Built from :func:`~deepnetsbench.leaderboard.board.build_tables`, so ranks, statuses and
numbers are those of the README and the page. Per-architecture records of entries are one
call away: ``results_to_dataframe(sorted(Path("leaderboard/entries").glob("*.json")))``.
"""

from __future__ import annotations

import os

from deepnetsbench.leaderboard.board import build_tables
from deepnetsbench.leaderboard.entries import DEFAULT_DIR, load_entries

#: Columns of :func:`load_board`, in order.
BOARD_COLUMNS = [
    "suite", "release", "split", "dataset", "target", "method", "version", "status", "rank",
    "top1", "top1_se", "top1_ci95_low", "top1_ci95_high", "top5", "top5_se",
    "method_params", "predict_time_s", "speedup", "n", "n_failed", "training_budget",
    "trained_on", "url", "paper", "date", "entry",
]


def load_board(board: str | os.PathLike = DEFAULT_DIR, releases: str | os.PathLike | None = None,
               check: bool = True):
    """One row per leaderboard entry (columns :data:`BOARD_COLUMNS`), in the board's order:
    tables as the README lists them, rows by rank within a table.

    With ``check`` (the default) every entry is re-validated first, as ``leaderboard render``
    does (a hand-edited entry raises a :class:`~deepnetsbench.errors.BenchError`); ``check=False``
    only reads and parses them.
    """
    import pandas as pd

    if check:
        from deepnetsbench.leaderboard.render import checked_entries

        entries = checked_entries(board, releases)
    else:
        entries = load_entries(board)
    rows = []
    for t in build_tables(entries):
        for r in t.rows:
            rows.append({
                "suite": t.suite, "release": t.release, "split": t.split, "dataset": t.dataset,
                "target": t.target, "method": r.method, "version": r.version,
                "status": r.status, "rank": r.rank, "top1": r.top1.mean, "top1_se": r.top1.se,
                "top1_ci95_low": r.top1.ci95_low, "top1_ci95_high": r.top1.ci95_high,
                "top5": r.top5.mean, "top5_se": r.top5.se, "method_params": r.method_params,
                "predict_time_s": r.predict_time_s.mean, "speedup": r.speedup, "n": r.n,
                "n_failed": r.n_failed, "training_budget": r.training_budget,
                "trained_on": r.trained_on, "url": r.url, "paper": r.paper,
                "date": pd.Timestamp(r.date), "entry": r.entry,
            })
    return pd.DataFrame(rows, columns=BOARD_COLUMNS)
