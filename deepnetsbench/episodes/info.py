"""What is in an episode-suite file, as a dict (for scripts) or a rich table (for people)."""

from __future__ import annotations

import os
from typing import Any

import numpy as np

from deepnetsbench.episodes.suite import SPLITS, EpisodeSuite

__all__ = ["describe_suite", "suite_summary"]


def suite_summary(path: str | os.PathLike | EpisodeSuite, verify: bool = True) -> dict[str, Any]:
    """Kind, sha256, config, datasets, pools and per-split episode statistics of a suite."""
    suite = path if isinstance(path, EpisodeSuite) else EpisodeSuite(path, verify=verify)
    splits = {}
    for split in SPLITS:
        a = suite._split(split)
        n = len(a["dataset"])
        per = {}
        for field in ("classes", "support", "query"):
            lengths = np.diff(a[f"{field}_offsets"]) if n else np.zeros(0, np.int64)
            per[field] = (int(lengths.min()), int(lengths.max()), float(lengths.mean())) if n \
                else (0, 0, 0.0)
        splits[split] = {
            "episodes": n,
            "datasets": suite.test_datasets(split) if n else [],
            "classes_per_episode": per["classes"],
            "support_per_episode": per["support"],
            "query_per_episode": per["query"],
            "query_from": sorted({"train" if q == 0 else "test" for q in a["query_split"]}),
        }
    return {
        "path": str(suite.path), "sha256": suite.sha256, "size": suite.path.stat().st_size,
        "kind": suite.kind, "format_version": suite.manifest.get("format_version"),
        "generator_version": suite.generator_version, "image_size": suite.image_size,
        "targets": suite.targets, "config": suite.config,
        "datasets": [{k: d[k] for k in ("name", "role", "num_classes", "n_train", "n_test",
                                        "content_sha256")} for d in suite.datasets],
        "pools": {k: len(v) for k, v in suite.pools.items()},
        "splits": splits,
    }


def _range(t: tuple[int, int, float]) -> str:
    lo, hi, _ = t
    return f"{lo}" if lo == hi else f"{lo}-{hi}"


def describe_suite(path: str | os.PathLike | EpisodeSuite, verify: bool = True):
    """A rich ``Table`` describing the suite at ``path`` (verified against its manifest)."""
    from rich.table import Table

    s = suite_summary(path, verify)
    cfg = s["config"]
    table = Table(title=f"{s['kind']}: {os.path.basename(s['path'])}", show_header=True)
    table.add_column("")
    table.add_column("value", overflow="fold")
    table.add_row("sha256", s["sha256"])
    table.add_row("size", f"{s['size'] / 1e6:.2f} MB")
    table.add_row("format / generator", f"{s['format_version']} / {s['generator_version']}")
    table.add_row("targets", ", ".join(s["targets"]))
    table.add_row("image size", f"{s['image_size']}x{s['image_size']}, 3 channels")
    table.add_row("sampling", f"{cfg['ways']}-way, {cfg['shots']} support/class, "
                              f"{cfg['queries']} train queries/class, seed {cfg['seed']}")
    for d in s["datasets"]:
        table.add_row(f"dataset ({d['role']})",
                      f"{d['name']}: {d['num_classes']} classes, {d['n_train']} train / "
                      f"{d['n_test']} test, content {d['content_sha256'][:12]}")
    pools = s["pools"]
    table.add_row("class pools", " / ".join(f"{k} {pools.get(k, 0)}" for k in SPLITS))
    for split, info in s["splits"].items():
        if not info["episodes"]:
            table.add_row(f"{split} episodes", "0")
            continue
        table.add_row(
            f"{split} episodes",
            f"{info['episodes']} from {', '.join(info['datasets'])}; "
            f"{_range(info['classes_per_episode'])} classes, "
            f"{_range(info['support_per_episode'])} support, "
            f"{_range(info['query_per_episode'])} query ({'/'.join(info['query_from'])} split)")
    return table
