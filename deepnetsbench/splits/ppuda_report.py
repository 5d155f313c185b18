"""The conversion report (``ppuda_report.json``): what the official files agree with.

Per split: how many architectures pass the §7 alignment test, have the same nodes / the same
graph / the same node order as our derived graph, have self-consistent virtual edges; and
every parameter count that differs from the published one (or from the meta's own counts),
by index. The report depends only on the source files, and it is what a user with the real
files sends us (docs/format.md).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np

REPORT = "ppuda_report.json"
#: Per-architecture results each conversion shard saves (``chk_<name>``, int64).
CHECKS = ("aligned", "same_nodes", "same_graph", "same_order", "virtual", "ours", "ours_c10",
          "ours_in", "meta_c10", "meta_in", "nodes", "meta_nodes", "missing")
LIST_CAP = 1000  # indices listed per finding (the counts are always complete)
_FLAGS = ("aligned", "same_nodes", "same_graph", "same_order", "virtual")


def _load_checks(shards: Sequence[Path]) -> tuple[dict[str, np.ndarray], dict]:
    cols: dict[str, list] = {k: [] for k in CHECKS}
    diffs: dict = {}
    for path in shards:
        with np.load(path) as z:
            for k in CHECKS:
                cols[k].append(z[f"chk_{k}"])
            diffs.update(json.loads(str(z["diffs"])))
    return {k: np.concatenate(v) if v else np.zeros(0, np.int64) for k, v in cols.items()}, diffs


def _pairs(idx: np.ndarray, a: np.ndarray, b: np.ndarray) -> list[list[int]]:
    return [[int(i), int(a[i]), int(b[i])] for i in idx[:LIST_CAP]]


def summarize(split: str, shards: Sequence[Path], published: list[int] | None) -> dict:
    """The report of one split from its saved shards."""
    c, diffs = _load_checks(shards)
    n = len(c["ours"])
    out: dict = {"nets": n, **{k: int(c[k].sum()) for k in _FLAGS}}
    params: dict = {}
    if published is not None:  # the evaluated net: our count at the split's own C
        pub = np.full(n, -1, np.int64)
        m = min(n, len(published))
        pub[:m] = published[:m]
        bad = np.flatnonzero(c["ours"] != pub)
        params.update(checked_published=m, published_mismatches=len(bad),
                      published=_pairs(bad, c["ours"], pub))
    for key, meta, ours in (("meta_cifar10", "meta_c10", "ours_c10"),
                            ("meta_imagenet", "meta_in", "ours_in")):
        bad = np.flatnonzero((c[meta] >= 0) & (c[meta] != c[ours]))
        params[f"{key}_mismatches"] = len(bad)
        params[key] = _pairs(bad, c[ours], c[meta])
    out["params"] = params
    bad = np.flatnonzero((c["meta_nodes"] >= 0) & (c["meta_nodes"] != c["nodes"]))
    out["num_nodes_differ_from_meta"] = _pairs(bad, c["nodes"], c["meta_nodes"])
    for k in ("aligned", "same_nodes", "same_graph", "virtual"):
        out[f"not_{k}"] = [int(i) for i in np.flatnonzero(c[k] == 0)[:LIST_CAP]]
    out["missing_names"] = [int(i) for i in np.flatnonzero(c["missing"] > 0)[:LIST_CAP]]
    out["details"] = dict(sorted(diffs.items(), key=lambda kv: int(kv[0])))
    return out


def unverified(summary: dict) -> int:
    """Number of findings that make a split unverified (parameter counts, unknown names)."""
    p = summary["params"]
    return (p.get("published_mismatches", 0) + p["meta_cifar10_mismatches"]
            + p["meta_imagenet_mismatches"] + len(summary["missing_names"]))


def mismatch_lines(report: dict) -> list[str]:
    """One line per finding that makes the release unverified."""
    lines = []
    for split, s in report["splits"].items():
        p = s["params"]
        for i, a, b in p.get("published", []):
            have = f"published {b:,}" if b >= 0 else "no published count"
            lines.append(f"{split}[{i}]: ours {a:,} vs {have}")
        for key, label in (("meta_cifar10", "the meta's num_params.cifar10 (C=32, 32 px)"),
                           ("meta_imagenet", "the meta's num_params.imagenet (C=32, 224 px)")):
            for i, a, b in p.get(key, []):
                lines.append(f"{split}[{i}]: ours {a:,} vs {label} {b:,}")
        for i in s["missing_names"]:
            names = s["details"].get(str(i), {}).get("missing_names", [])
            lines.append(f"{split}[{i}]: stored parameter names our network lacks "
                         f"{', '.join(names) if names else ''}".rstrip())
    return lines


def write_report(folder: Path, report: dict) -> Path:
    from deepnetsbench.results import atomic_write_text

    path = Path(folder) / REPORT
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(path, json.dumps(report, indent=1, sort_keys=True) + "\n")
    return path
