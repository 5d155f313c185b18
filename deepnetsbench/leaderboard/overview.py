"""The DeepNets-1M overview: one table per suite, release and dataset, methods x splits.

Laid out like the main table of Knyazev et al. (2021): top-1 on the in-distribution TEST
split, on each out-of-distribution split (WIDE, DEEP, DENSE, BN-FREE), on the two official
PREDEFINED networks (ResNet-50 and the ViT: records 0 and 1 of the PREDEFINED split), and
the mean over the four OOD splits. Every cell comes from one split table and links to it;
a cell without an entry is "–". The OOD mean is the plain mean of the four split means and
is only given when all four are there.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

from deepnetsbench.leaderboard.board import (
    PREDEFINED_PICKS,
    Row,
    Table,
    is_architecture_suite,
)

#: (key, column label): the split a key reads, or a PREDEFINED pick, or the OOD mean.
COLUMNS = [("test", "ID-test"), ("wide", "WIDE"), ("deep", "DEEP"), ("dense", "DENSE"),
           ("bnfree", "BN-FREE"), ("resnet50", "ResNet-50"), ("vit", "ViT"),
           ("ood", "OOD mean")]
OOD_SPLITS = ("wide", "deep", "dense", "bnfree")
_PICK_KEYS = dict(zip(("resnet50", "vit"), PREDEFINED_PICKS))  # column key -> record index


@dataclass
class Cell:
    """One method's score in one column (``table``: the id of the split table it is from)."""

    mean: float | None
    se: float | None = None
    ci95_low: float | None = None
    ci95_high: float | None = None
    table: str = ""
    anchor: str = ""
    rank: int | None = None
    note: str = ""  # e.g. the PREDEFINED record's name, or "failed"


@dataclass
class OverviewRow:
    method: str
    version: str
    status: str
    training_budget: str | None
    trained_on: str | None
    url: str
    paper: str
    builtin: bool
    cells: dict[str, Cell] = field(default_factory=dict)
    split_status: dict[str, str] = field(default_factory=dict)  # split -> status of its entry

    @property
    def status_text(self) -> str:
        """The row's status; a row whose splits differ says which were reproduced."""
        if self.status != "partly reproduced":
            return self.status
        done = [s for s, v in self.split_status.items() if v == "reproduced"]
        return f"partly reproduced ({', '.join(done)})"

    @property
    def label(self) -> str:
        return self.method + (f" {self.version}" if self.version else "")

    def value(self, key: str) -> float | None:
        cell = self.cells.get(key)
        return None if cell is None else cell.mean


@dataclass
class Overview:
    suite: str
    release: str
    dataset: str
    dataset_sha256: str
    num_classes: int
    rows: list[OverviewRow]
    tables: dict[str, Table]  # split -> its table (predefined included)
    ambiguous: bool = False

    @property
    def id(self) -> str:
        base = f"{self.suite}@{self.release}/{self.dataset}"
        return f"{base}@{self.dataset_sha256[:8]}" if self.ambiguous else base

    @property
    def anchor(self) -> str:
        return "overview-" + "".join(c if c.isalnum() else "-" for c in self.id.lower())

    @property
    def title(self) -> str:
        t = f"{self.suite} {self.release} · {self.dataset}"
        return t + f" (data {self.dataset_sha256[:8]})" if self.ambiguous else t

    @property
    def chance(self) -> float | None:
        return 100.0 / self.num_classes if self.num_classes else None

    def column_table(self, key: str) -> Table | None:
        """The split table a column reads (PREDEFINED for the two picks, none for OOD)."""
        return self.tables.get("predefined" if key in _PICK_KEYS else key)


def registered_releases(releases: str | os.PathLike | None = None) -> dict[str, list[str]]:
    """The releases each architecture suite's board can have (``{suite: [release]}``): the
    registered versions of its TEST split, plus ``ppuda`` for DeepNets-1M when the official
    release is registered. The board names those without entries instead of omitting them."""
    from deepnetsbench.releases import PPUDA, load_releases

    data = load_releases(releases)
    out: dict[str, list[str]] = {}
    for name, versions in sorted(data.get("splits", {}).items()):
        suite, _, split = name.rpartition("/")
        suite = suite or "deepnets1m"
        if split == "test" and is_architecture_suite(suite):
            out.setdefault(suite, []).extend(sorted(versions))
    if isinstance(data.get(PPUDA), dict):
        out.setdefault("deepnets1m", [])
        if PPUDA not in out["deepnets1m"]:
            out["deepnets1m"].append(PPUDA)
    return out


def _split_cell(t: Table, r: Row) -> Cell:
    s = r.top1
    return Cell(mean=s.mean, se=s.se, ci95_low=s.ci95_low, ci95_high=s.ci95_high, table=t.id,
                anchor=t.anchor, rank=r.rank)


def _pick_cell(t: Table, r: Row, index: int) -> Cell | None:
    if index not in r.picks:
        return None
    name, top1 = r.picks[index]
    return Cell(mean=0.0 if top1 is None else top1, table=t.id, anchor=t.anchor,
                note=f"{name}, failed (counts 0)" if top1 is None else name)


def _ood_cell(cells: dict[str, Cell]) -> Cell | None:
    means = [cells[k].mean for k in OOD_SPLITS if k in cells]
    if len(means) < len(OOD_SPLITS) or any(m is None for m in means):
        return None
    return Cell(mean=sum(means) / len(means), note="mean of " + ", ".join(OOD_SPLITS))


def _sort_key(row: OverviewRow) -> tuple:
    test, ood = row.value("test"), row.value("ood")
    return (test is None, -(test or 0.0), ood is None, -(ood or 0.0), row.label.lower(),
            row.status == "published")


def build_overviews(tables: list[Table]) -> list[Overview]:
    """One overview per architecture suite, release and dataset that has entries."""
    groups: dict[tuple, list[Table]] = {}
    for t in tables:
        if is_architecture_suite(t.suite):
            groups.setdefault((t.suite, t.release, t.dataset, t.dataset_sha256), []).append(t)
    names: dict[tuple, int] = {}
    for key in groups:
        names[key[:3]] = names.get(key[:3], 0) + 1

    out = []
    for (suite, release, dataset, data_sha), group in groups.items():
        by_split = {t.split: t for t in group}
        rows: dict[tuple, OverviewRow] = {}
        for t in group:
            for r in t.rows:
                # a paper's figures and runs are separate rows; reproduced and
                # self-reported splits of one method share a row
                key = (r.method, r.version, r.status == "published", r.training_budget)
                row = rows.get(key)
                if row is None:
                    row = rows[key] = OverviewRow(
                        method=r.method, version=r.version, status=r.status,
                        training_budget=r.training_budget, trained_on=r.trained_on, url=r.url,
                        paper=r.paper, builtin=r.builtin)
                row.split_status[t.split] = r.status
                if r.status != row.status:
                    row.status = "partly reproduced"
                if t.split == "predefined":
                    for col, index in _PICK_KEYS.items():
                        cell = _pick_cell(t, r, index)
                        if cell is not None:
                            row.cells[col] = cell
                elif t.split in ("test", *OOD_SPLITS):
                    row.cells[t.split] = _split_cell(t, r)
        for row in rows.values():
            ood = _ood_cell(row.cells)
            if ood is not None:
                row.cells["ood"] = ood
        out.append(Overview(suite=suite, release=release, dataset=dataset,
                            dataset_sha256=data_sha, num_classes=group[0].num_classes,
                            rows=sorted(rows.values(), key=_sort_key), tables=by_split,
                            ambiguous=names[(suite, release, dataset)] > 1))
    first = {t.suite: i for i, t in reversed(list(enumerate(tables)))}
    return sorted(out, key=lambda o: (first[o.suite], o.release, o.dataset, o.dataset_sha256))
