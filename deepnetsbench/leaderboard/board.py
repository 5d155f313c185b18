"""The leaderboard as tables: entries grouped by suite/split/dataset, ordered and ranked.

README, static site and ``leaderboard show`` all render from :func:`build_tables`, so the
three views always agree.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from deepnetsbench.leaderboard.entries import Entry, board_key
from deepnetsbench.leaderboard.ranking import order_and_rank
from deepnetsbench.results import SUITES, Stat

SPLIT_ORDER = ["val", "test", "wide", "deep", "dense", "bnfree", "predefined"]


@dataclass
class Row:
    rank: int
    method: str
    version: str
    url: str
    top1: Stat
    top5: Stat
    predict_time_s: Stat
    speedup: float | None
    speedup_lower_bound: bool
    finetune_top1: Stat | None
    method_params: int | None
    trained_on: str | None
    date: str
    reproduced: bool
    n: int
    n_failed: int
    device: str
    gpu: str | None
    entry: str
    points: list[tuple[int, float]] = field(default_factory=list)  # (num_params, top1) per arch


@dataclass
class Table:
    suite: str
    split: str
    dataset: str
    split_version: str
    split_sha256: str
    dataset_sha256: str
    num_items: int
    rows: list[Row]
    ambiguous: bool = False  # another release of the same split/dataset names has a table
    target: str = ""  # dataset-episode suites: the fixed target network

    @property
    def id(self) -> str:
        base = f"{self.suite}/{self.split}/{self.dataset}" + (f"/{self.target}" if self.target else "")
        return f"{base}@{self.split_sha256[:8]}" if self.ambiguous else base

    @property
    def title(self) -> str:
        t = f"{self.suite} · {self.split} · {self.dataset}" + (f" · {self.target}" if self.target else "")
        return t + f" (split v{self.split_version})" if self.ambiguous else t


def _table_order(t: Table) -> tuple:
    suite = SUITES.index(t.suite) if t.suite in SUITES else len(SUITES)
    split = SPLIT_ORDER.index(t.split) if t.split in SPLIT_ORDER else len(SPLIT_ORDER)
    return (suite, t.dataset, split, t.split, t.target, t.split_version, t.split_sha256)


def build_tables(entries: list[tuple[Path, Entry]]) -> list[Table]:
    """Group entries into ranked tables (deterministic for the same entries)."""
    groups: dict[tuple, list[tuple[Path, Entry]]] = {}
    for path, e in entries:
        groups.setdefault(board_key(e.results), []).append((path, e))
    names: dict[tuple, int] = {}
    for key in groups:
        names[key[:3] + key[5:]] = names.get(key[:3] + key[5:], 0) + 1

    tables = []
    for key, items in groups.items():
        results = [e.results for _, e in items]
        dates = [e.submitted_at.isoformat() + p.name for p, e in items]
        rows = []
        for pos, rank in order_and_rank(results, dates):
            path, e = items[pos]
            r, agg = e.results, e.results.aggregates
            rows.append(Row(
                rank=rank, method=r.method.name, version=r.method.version, url=r.method.url,
                top1=agg.top1, top5=agg.top5, predict_time_s=agg.predict_time_s,
                speedup=agg.speedup_gmean, speedup_lower_bound=bool(agg.speedup_gmean_lower_bound),
                finetune_top1=agg.finetune_top1, method_params=r.method.num_params,
                trained_on=r.method.trained_on, date=e.submitted_at.date().isoformat(),
                reproduced=e.reproduced, n=agg.n, n_failed=agg.n_failed,
                device=r.environment.device, gpu=r.environment.gpu, entry=path.name,
                points=[(x.num_params, x.top1) for x in r.records
                        if x.status == "ok" and x.num_params is not None],
            ))
        first = results[0]
        tables.append(Table(
            suite=first.suite, split=first.split.name, dataset=first.dataset.name,
            split_version=first.split.generator_version, split_sha256=first.split.sha256,
            dataset_sha256=first.dataset.content_sha256, num_items=first.split.num_items,
            rows=rows, ambiguous=names[key[:3] + key[5:]] > 1, target=key[5] if len(key) > 5 else "",
        ))
    return sorted(tables, key=_table_order)


# ----------------------------------------------------------------------------- formatting


def fmt_pct(x: float | None) -> str:
    return "–" if x is None else f"{x:.2f}"


def fmt_mean_se(s: Stat | None) -> str:
    if s is None or s.mean is None:
        return "–"
    return f"{s.mean:.2f}" if s.se is None else f"{s.mean:.2f} ± {s.se:.2f}"


def fmt_ci(s: Stat | None) -> str:
    if s is None or s.ci95_low is None:
        return "–"
    return f"[{s.ci95_low:.2f}, {s.ci95_high:.2f}]"


def fmt_seconds(x: float | None) -> str:
    if x is None:
        return "–"
    if x < 1e-3:
        return f"{x * 1e6:.0f} µs"
    if x < 1:
        return f"{x * 1e3:.1f} ms"
    return f"{x:.2f} s"


def fmt_speedup(x: float | None, lower_bound: bool) -> str:
    if x is None:
        return "–"
    return f"{'≥' if lower_bound else ''}{x:.2f}×"


def fmt_count(n: int | None) -> str:
    if n is None:
        return "–"
    if n >= 1e9:
        return f"{n / 1e9:.2f} B"
    if n >= 1e6:
        return f"{n / 1e6:.2f} M"
    if n >= 1e3:
        return f"{n / 1e3:.1f} K"
    return str(n)
