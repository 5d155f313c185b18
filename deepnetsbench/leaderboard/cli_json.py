"""The ``--json`` output of ``leaderboard show`` and ``leaderboard validate``.

A stable, documented shape (docs/cli.md) built field by field from the board's tables and
a validated results file, so that it changes only when its ``version`` does -- not when the
README or the page change how they present a table.
"""

from __future__ import annotations

from typing import Any

__all__ = ["SHOW_KIND", "VALIDATE_KIND", "VERSION", "show_json", "validate_error_json",
           "validate_json"]

SHOW_KIND = "deepnets-bench-leaderboard"
VALIDATE_KIND = "deepnets-bench-validate"
VERSION = 1


def _stat(stat: Any) -> dict[str, float | None] | None:
    if stat is None:
        return None
    return {k: getattr(stat, k, None) for k in ("mean", "se", "ci95_low", "ci95_high")}


def _status(row: Any) -> str:
    status = getattr(row, "status", None)  # published / reproduced / self-reported
    return status or ("reproduced" if row.reproduced else "self-reported")


def _row(r: Any) -> dict[str, Any]:
    return {
        "rank": r.rank, "method": r.method, "version": r.version, "status": _status(r),
        "url": r.url, "training_budget": getattr(r, "training_budget", None),
        "trained_on": r.trained_on, "method_params": r.method_params,
        "top1": _stat(r.top1), "top5": _stat(r.top5), "predict_time_s": _stat(r.predict_time_s),
        "speedup": r.speedup, "speedup_lower_bound": r.speedup_lower_bound,
        "finetune_top1": _stat(r.finetune_top1), "n": r.n, "n_failed": r.n_failed,
        "device": r.device, "gpu": r.gpu, "date": r.date, "entry": r.entry,
    }


def _table(t: Any) -> dict[str, Any]:
    return {
        "id": t.id, "title": t.title, "suite": t.suite, "release": t.split_version,
        "split": t.split, "dataset": t.dataset, "target": t.target or None,
        "split_sha256": t.split_sha256, "dataset_sha256": t.dataset_sha256,
        "num_items": t.num_items, "rows": [_row(r) for r in t.rows],
    }


def show_json(tables: list[Any], board: str) -> dict[str, Any]:
    """``leaderboard show --json``: every (filtered) table with its ranked rows."""
    return {"kind": SHOW_KIND, "version": VERSION, "board": str(board),
            "tables": [_table(t) for t in tables]}


def validate_json(res: Any, path: str, duplicates_checked: bool) -> dict[str, Any]:
    """``leaderboard validate --json`` for a file that passed every check."""
    agg = res.aggregates
    return {
        "kind": VALIDATE_KIND, "version": VERSION, "ok": True, "file": str(path),
        "duplicates_checked": duplicates_checked,
        "method": {"name": res.method.name, "version": res.method.version},
        "suite": res.suite, "split": res.split.name, "release": res.split.generator_version,
        "split_sha256": res.split.sha256, "dataset": res.dataset.name,
        "dataset_sha256": res.dataset.content_sha256,
        "n": agg.n, "n_ok": agg.n_ok, "n_failed": agg.n_failed,
        "top1": _stat(agg.top1), "top5": _stat(agg.top5),
        "predict_time_s": _stat(agg.predict_time_s),
    }


def validate_error_json(path: str, what: str, fix: str | None) -> dict[str, Any]:
    """``leaderboard validate --json`` for a refused file: the first problem and its fix."""
    return {"kind": VALIDATE_KIND, "version": VERSION, "ok": False, "file": str(path),
            "error": what, "fix": fix}
