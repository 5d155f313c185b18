"""The static page: one HTML file with the board's data inline, drawn by ``site.js``.

No network at all (no CDN, no fonts): inline CSS, JS and JSON. Submitted strings reach the
page only inside the JSON blob, escaped so that nothing can close the ``<script>`` element,
and the script only ever writes them with ``textContent``.
"""

from __future__ import annotations

import json
from importlib import resources

from deepnetsbench.leaderboard.board import STATUSES, Row, Table, is_architecture_suite
from deepnetsbench.leaderboard.markdown import SUITE_TEXT, training_text
from deepnetsbench.leaderboard.overview import COLUMNS, Cell, Overview
from deepnetsbench.results import Stat


def page_url(url: str) -> str:
    """A code link as the page (``<board>/site/index.html``) reaches it: repository paths
    are relative to the repository root, two folders up."""
    if not url or url.startswith(("http://", "https://")):
        return url
    return f"../../{url}"


def _stat(s: Stat | None) -> dict | None:
    return None if s is None else s.model_dump()


def _row(r: Row) -> dict:
    return {
        "rank": r.rank, "method": r.method, "version": r.version, "label": r.label,
        "url": page_url(r.url), "paper": r.paper,
        "top1": _stat(r.top1), "top5": _stat(r.top5), "predict_time_s": _stat(r.predict_time_s),
        "speedup": r.speedup, "speedup_lower_bound": r.speedup_lower_bound,
        "finetune_top1": _stat(r.finetune_top1), "method_params": r.method_params,
        "trained_on": r.trained_on, "training_budget": r.training_budget,
        "training": training_text(r.training_budget, r.trained_on, r.builtin),
        "budget": training_text(r.training_budget, None, r.builtin and not r.trained_on),
        "date": r.date, "status": r.status, "reproduced": r.reproduced,
        "n": r.n, "n_failed": r.n_failed, "device": r.device, "gpu": r.gpu,
        "entry": r.entry, "points": [[p, round(a, 4)] for p, a in r.points],
    }


def _table(t: Table) -> dict:
    return {
        "id": t.id, "anchor": t.anchor, "title": t.title, "suite": t.suite,
        "release": t.release, "split": t.split, "dataset": t.dataset, "target": t.target,
        "split_sha256": t.split_sha256, "dataset_sha256": t.dataset_sha256,
        "num_items": t.num_items, "unit": t.unit, "chance": t.chance,
        "architectures": is_architecture_suite(t.suite),
        "rows": [_row(r) for r in t.rows],
    }


def _cell(c: Cell) -> dict:
    return {"mean": c.mean, "se": c.se, "ci95_low": c.ci95_low, "ci95_high": c.ci95_high,
            "table": c.table, "rank": c.rank, "note": c.note}


def _overview(o: Overview) -> dict:
    return {
        "id": o.id, "anchor": o.anchor, "title": o.title, "suite": o.suite,
        "release": o.release, "dataset": o.dataset, "chance": o.chance,
        "columns": [{"key": k, "label": label,
                     "table": (o.column_table(k).id if o.column_table(k) else None)}
                    for k, label in COLUMNS],
        "rows": [{
            "method": r.method, "version": r.version, "label": r.label, "status": r.status,
            "status_text": r.status_text,
            "training": training_text(r.training_budget, r.trained_on, r.builtin),
            "url": page_url(r.url), "paper": r.paper,
            "cells": {k: _cell(c) for k, c in sorted(r.cells.items())},
        } for r in o.rows],
    }


def site_data(tables: list[Table], overviews: list[Overview],
              registered: dict[str, list[str]] | None = None) -> dict:
    """The JSON blob embedded in the page; the page's JS draws everything from it."""
    return {
        "registered": registered or {},
        "methods": sorted({r.method for t in tables for r in t.rows}),
        "statuses": STATUSES,
        "suites": {s: SUITE_TEXT[s] for s in sorted(SUITE_TEXT)},
        "overviews": [_overview(o) for o in overviews],
        "tables": [_table(t) for t in tables],
    }


def embed_json(data: dict) -> str:
    # Escaped so that no submitted string can close the <script> element.
    text = json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False,
                      allow_nan=False)
    for ch, esc in (("&", "\\u0026"), ("<", "\\u003c"), (">", "\\u003e"),
                    ("\u2028", "\\u2028"), ("\u2029", "\\u2029")):
        text = text.replace(ch, esc)
    return text


def site_html(tables: list[Table], overviews: list[Overview],
              registered: dict[str, list[str]] | None = None) -> str:
    """The single static page: inline data, CSS and JS, no network access at all."""
    base = resources.files("deepnetsbench.leaderboard")
    template = (base / "site_template.html").read_text(encoding="utf-8")
    script = (base / "site.js").read_text(encoding="utf-8")
    return (template.replace("/*__SITE_JS__*/", script)
            .replace("__BOARD_DATA__", embed_json(site_data(tables, overviews, registered))))
