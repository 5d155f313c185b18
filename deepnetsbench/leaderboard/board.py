"""The leaderboard as tables: entries grouped by suite/release/split/dataset, ordered, ranked.

README, static site, ``leaderboard show`` and :func:`~deepnetsbench.leaderboard.frame.load_board`
all build from :func:`build_tables`, so every view agrees. The DeepNets-1M overview (methods
x splits) is assembled from these tables in :mod:`deepnetsbench.leaderboard.overview`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from deepnetsbench.leaderboard.entries import Entry, board_key
from deepnetsbench.leaderboard.ranking import order_and_rank
from deepnetsbench.results import SUITES, Results, Stat

#: The paper's table first (TEST, the OOD splits, PREDEFINED), then VAL.
SPLIT_ORDER = ["test", "wide", "deep", "dense", "bnfree", "predefined", "val"]

#: How an entry's numbers came about, as the board labels them.
STATUSES = {
    "published": "copied from the method's paper (not run by the evaluator)",
    "reproduced": "a maintainer re-ran the submitted method and got these numbers",
    "self-reported": "run by the submitter; validated, not re-run",
}

#: PREDEFINED records shown as their own overview columns (index in the split: label).
PREDEFINED_PICKS = {0: "ResNet-50", 1: "ViT"}


def is_architecture_suite(suite: str) -> bool:
    """DeepNets-1M suites (full and lite): unseen architectures, one dataset."""
    return suite.startswith("deepnets1m")


def entry_status(entry: Entry) -> str:
    """``published``, ``reproduced`` or ``self-reported`` (see :data:`STATUSES`)."""
    if entry.status == "published":
        return "published"
    return "reproduced" if entry.reproduced else "self-reported"


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
    status: str = "self-reported"
    training_budget: str | None = None
    paper: str = ""
    builtin: bool = False
    #: PREDEFINED tables: {index: (record name, top-1 or None if failed)} of PREDEFINED_PICKS
    picks: dict[int, tuple[str, float | None]] = field(default_factory=dict)

    @property
    def label(self) -> str:
        return self.method + (f" {self.version}" if self.version else "")


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
    ambiguous: bool = False  # another table has the same names but other content
    target: str = ""  # dataset-episode suites: the fixed target network
    num_classes: int = 0  # classes of the evaluated networks (chance = 100 / num_classes)
    show_release: bool = True  # architecture suites always; others when several are shown

    @property
    def release(self) -> str:
        return self.split_version

    @property
    def unit(self) -> str:
        """What one record is: an architecture, or an episode of a fixed target."""
        return "architectures" if is_architecture_suite(self.suite) else "episodes"

    @property
    def chance(self) -> float | None:
        return 100.0 / self.num_classes if self.num_classes else None

    @property
    def id(self) -> str:
        base = f"{self.suite}@{self.release}/{self.split}/{self.dataset}" + (
            f"/{self.target}" if self.target else "")
        return f"{base}@{self.dataset_sha256[:8]}" if self.ambiguous else base

    @property
    def anchor(self) -> str:
        """An HTML id for the table's README section (letters, digits, '-')."""
        return "".join(c if c.isalnum() else "-" for c in self.id.lower())

    @property
    def title(self) -> str:
        head = f"{self.suite} {self.release}" if self.show_release else self.suite
        t = f"{head} · {self.split} · {self.dataset}" + (f" · {self.target}" if self.target else "")
        return t + f" (data {self.dataset_sha256[:8]})" if self.ambiguous else t


def _table_order(t: Table) -> tuple:
    suite = SUITES.index(t.suite) if t.suite in SUITES else len(SUITES)
    split = SPLIT_ORDER.index(t.split) if t.split in SPLIT_ORDER else len(SPLIT_ORDER)
    return (suite, t.suite, t.release, t.dataset, t.dataset_sha256, split, t.split, t.target,
            t.split_sha256)


def _picks(res: Results) -> dict[int, tuple[str, float | None]]:
    if not (is_architecture_suite(res.suite) and res.split.name == "predefined"):
        return {}
    return {r.index: (r.name, r.top1 if r.status == "ok" else None)
            for r in res.records if r.index in PREDEFINED_PICKS}


def _row(rank: int, path: Path, e: Entry) -> Row:
    r, agg = e.results, e.results.aggregates
    return Row(
        rank=rank, method=r.method.name, version=r.method.version, url=r.method.url,
        top1=agg.top1, top5=agg.top5, predict_time_s=agg.predict_time_s,
        speedup=agg.speedup_gmean, speedup_lower_bound=bool(agg.speedup_gmean_lower_bound),
        finetune_top1=agg.finetune_top1, method_params=r.method.num_params,
        trained_on=r.method.trained_on, date=e.submitted_at.date().isoformat(),
        reproduced=e.reproduced, n=agg.n, n_failed=agg.n_failed,
        device=r.environment.device, gpu=r.environment.gpu, entry=path.name,
        points=[(x.num_params, x.top1) for x in r.records
                if x.status == "ok" and x.num_params is not None],
        status=entry_status(e), training_budget=r.method.training_budget,
        paper=r.method.paper, builtin=r.method.builtin, picks=_picks(r),
    )


def build_tables(entries: list[tuple[Path, Entry]]) -> list[Table]:
    """Group entries into ranked tables (deterministic for the same entries)."""
    groups: dict[tuple, list[tuple[Path, Entry]]] = {}
    for path, e in entries:
        key = board_key(e.results) + (e.results.split.generator_version,)
        groups.setdefault(key, []).append((path, e))
    # (suite, split, dataset, target, release) shared by tables of other content
    names: dict[tuple, int] = {}
    for key in groups:
        short = key[:3] + key[5:]
        names[short] = names.get(short, 0) + 1

    tables = []
    for key, items in groups.items():
        results = [e.results for _, e in items]
        dates = [e.submitted_at.isoformat() + p.name for p, e in items]
        rows = [_row(rank, *items[pos]) for pos, rank in order_and_rank(results, dates)]
        first = results[0]
        tables.append(Table(
            suite=first.suite, split=first.split.name, dataset=first.dataset.name,
            split_version=first.split.generator_version, split_sha256=first.split.sha256,
            dataset_sha256=first.dataset.content_sha256, num_items=first.split.num_items,
            rows=rows, ambiguous=names[key[:3] + key[5:]] > 1, target=key[5],
            num_classes=first.protocol.num_classes,
        ))
    releases: dict[str, set[str]] = {}
    for t in tables:
        releases.setdefault(t.suite, set()).add(t.release)
    for t in tables:
        t.show_release = is_architecture_suite(t.suite) or len(releases[t.suite]) > 1
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
