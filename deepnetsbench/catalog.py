"""``deepnets-bench list``: what the suite knows and what this machine's cache holds.

One place to look before a run: the suites, the architecture splits with their registered
releases and the copies in the cache, the image datasets (known, registered, cached), the
built-in methods and the baselines' method files, and the episode suites. Cheap: split and
suite files are described from their manifests (hashes as recorded when they were written;
``deepnets-bench info`` re-verifies them), images from the cache attributes.
"""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path
from typing import Any

import click

from deepnetsbench.options import json_option, root_option

__all__ = ["COMMANDS", "SUITE_DESCRIPTIONS", "catalog", "list_cmd"]

LIST_KIND = "deepnets-bench-list"
LIST_VERSION = 1

SUITE_DESCRIPTIONS = {
    "deepnets1m": "DeepNets-1M architectures, each scored on a dataset's full test set "
                  "(the paper's protocol)",
    "deepnets1m-lite": "a fixed subset of every evaluation split on 1,000 class-balanced "
                       "test images (CPU-sized; ranked on its own boards)",
    "episodes-intra": "episodes of disjoint classes of one source dataset, one fixed target "
                      "network (PudNet setting)",
    "episodes-inter": "source-dataset episodes for training, other whole datasets for "
                      "testing, one fixed target network",
}

#: The baselines' method files, as ``deepnets-bench eval --method`` takes them.
BASELINE_METHODS = {
    "baselines/ghn2/method.py": "GHN-2, GHN-1 or the MLP hypernetwork, whichever the "
                                "checkpoint holds (--method-opt ckpt=PATH; default: the "
                                "committed CPU checkpoint)",
    "baselines/pudnet/method.py": "PudNet on episode suites (--method-opt ckpt=PATH)",
}


def _split_releases(registered: dict[str, Any]) -> dict[str, list[dict[str, Any]]]:
    """``{release key: [{"version", "sha256", "num_items" | "datasets"}]}``."""
    out: dict[str, list[dict[str, Any]]] = {}
    for key, versions in sorted(registered.items()):
        rows = []
        for version, pins in versions.items():
            row = {"version": version, "sha256": pins.get("sha256")}
            if "num_items" in pins:
                row["num_items"] = pins["num_items"]
            if isinstance(pins.get("datasets"), dict):
                row["datasets"] = {d: p.get("num_items") for d, p in pins["datasets"].items()}
            rows.append(row)
        out[key] = rows
    return out


def _cached_splits(root: str | os.PathLike | None, split: str,
                   registered: list[dict[str, Any]]) -> list[dict[str, Any]]:
    from deepnetsbench.releases import PPUDA
    from deepnetsbench.splits.format import read_manifest, release_dir, split_path

    found = []
    for release in (None, PPUDA):
        folder = release_dir(root, release)
        path = split_path(folder, split)
        if not path.exists():
            continue
        entry = read_manifest(folder).get(path.name, {}) if folder.exists() else {}
        sha = entry.get("sha256")
        match = next((r["version"] for r in registered if sha and r["sha256"] == sha), None)
        found.append({"release": release or "default", "path": str(path), "sha256": sha,
                      "generator_version": entry.get("generator_version"),
                      "num_items": entry.get("num_items"), "registered_as": match})
    return found


def _splits(root: str | os.PathLike | None, releases: dict[str, list]) -> list[dict[str, Any]]:
    from deepnetsbench.splits.build import ALL_SPLITS

    rows = []
    for split in ALL_SPLITS:
        registered = releases.get(split, [])
        lite = releases.get(f"deepnets1m-lite/{split}", [])
        rows.append({"split": split, "releases": registered, "lite_releases": lite,
                     "cached": _cached_splits(root, split, registered)})
    return rows


def _datasets(root: str | os.PathLike | None, registered: dict[str, Any]) -> list[dict[str, Any]]:
    from deepnetsbench.data.cache import list_cache
    from deepnetsbench.data.registry import DATASETS

    cached: dict[str, dict[str, Any]] = {}
    for path, attrs in list_cache(root):
        if attrs is None:
            cached[path.stem] = {"path": str(path), "readable": False}
            continue
        h, w, c = attrs.get("shape", (0, 0, 0))
        cached[str(attrs.get("name", path.stem))] = {
            "path": str(path), "readable": True, "n_train": attrs.get("n_train"),
            "n_test": attrs.get("n_test"), "image": [int(h), int(w), int(c)],
            "content_sha256": attrs.get("content_sha256")}
    rows = []
    for name in list(DATASETS) + sorted(set(cached) - set(DATASETS)):
        info = DATASETS.get(name)
        row: dict[str, Any] = {"name": name, "known": info is not None}
        if info is not None:
            row.update(num_classes=info.num_classes, image_size=info.image_size,
                       eval_size=info.eval_size, n_train=info.n_train, n_test=info.n_test,
                       fetch=info.fetch)
        here = cached.get(name)
        row["registered"] = sorted(registered.get(name, {}))
        row["cached"] = here
        if here and here.get("content_sha256"):
            here["registered"] = here["content_sha256"] in registered.get(name, {})
        rows.append(row)
    return rows


def _repo_path(rel: str) -> Path | None:
    """Where the baselines' file ``rel`` is, without importing the baselines."""
    spec = importlib.util.find_spec("baselines")
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(list(spec.submodule_search_locations)[0]).parent / rel
    return path if path.is_file() else None


def _methods() -> list[dict[str, Any]]:
    from deepnetsbench.eval.builtin import BUILTIN_METHODS

    rows = [{"name": name, "kind": "built-in", "path": None,
             "description": cls.meta.description} for name, cls in BUILTIN_METHODS.items()]
    for rel, what in BASELINE_METHODS.items():
        path = _repo_path(rel)
        if path is None:  # an install without the repository's baselines
            continue
        try:
            shown = str(path.relative_to(Path.cwd()))
        except ValueError:
            shown = str(path)
        rows.append({"name": shown, "kind": "baseline", "path": str(path), "description": what})
    return rows


def _episode_suites(root: str | os.PathLike | None, releases: dict[str, list]) -> list[dict]:
    from deepnetsbench.episodes.suite import KINDS, _read_manifest, default_suite_path

    rows = []
    for kind in KINDS:
        path = default_suite_path(kind, root)
        entry = _read_manifest(path.parent).get(path.name, {}) if path.exists() else {}
        registered = releases.get(f"{kind}/test", [])
        sha = entry.get("sha256")
        cached = None
        if path.exists():
            cached = {"path": str(path), "sha256": sha,
                      "registered_as": next((r["version"] for r in registered
                                             if sha and r["sha256"] == sha), None)}
        rows.append({"kind": kind, "releases": registered, "cached": cached})
    return rows


def catalog(root: str | os.PathLike | None = None, releases: str | None = None) -> dict:
    """Everything ``deepnets-bench list`` shows, as one JSON-ready dict (docs/cli.md)."""
    from deepnetsbench.paths import data_root
    from deepnetsbench.releases import load_releases, releases_path
    from deepnetsbench.results import SUITES

    known = load_releases(releases)
    split_releases = _split_releases(known["splits"])
    return {
        "kind": LIST_KIND, "version": LIST_VERSION, "root": str(data_root(root)),
        "releases_file": str(releases_path(releases)),
        "suites": [{"name": s, "description": SUITE_DESCRIPTIONS.get(s, "")} for s in SUITES],
        "splits": _splits(root, split_releases),
        "datasets": _datasets(root, known["datasets"]),
        "methods": _methods(),
        "episode_suites": _episode_suites(root, split_releases),
    }


# ----------------------------------------------------------------------------- display


def _short(sha: str | None) -> str:
    return (sha or "")[:8]


def _releases_text(rows: list[dict[str, Any]], sha: bool = True) -> str:
    parts = []
    for r in rows:
        count = r.get("num_items")
        if count is None and r.get("datasets"):
            count = ", ".join(f"{d} {n}" for d, n in r["datasets"].items())
        parts.append(f"{r['version']}: {count}" + (f" ({_short(r['sha256'])})" if sha else ""))
    return "\n".join(parts) or "-"


def _cached_text(rows: list[dict[str, Any]]) -> str:
    parts = []
    for c in rows:
        state = f"= {c['registered_as']}" if c["registered_as"] else "unregistered"
        parts.append(state if c["release"] == "default" else f"{c['release']}: {state}")
    return "\n".join(parts) or "-"


def render(data: dict) -> list[Any]:
    """The rich tables of :func:`catalog`'s dict."""
    from rich.markup import escape
    from rich.table import Table

    tables = []
    t = Table(title="suites (eval --suite)", title_justify="left")
    t.add_column("suite")
    t.add_column("what")
    for s in data["suites"]:
        t.add_row(s["name"], s["description"])
    tables.append(t)

    t = Table(title=f"DeepNets-1M splits (eval --split): releases, and the files in "
                    f"{data['root']}", title_justify="left")
    for col in ("split", "releases: architectures", "lite: architectures", "in the cache"):
        t.add_column(col, overflow="fold")
    for s in data["splits"]:
        t.add_row(s["split"], _releases_text(s["releases"]),
                  _releases_text(s["lite_releases"], sha=False), _cached_text(s["cached"]))
    tables.append(t)

    t = Table(title="image datasets (eval --dataset)", title_justify="left")
    for col in ("dataset", "classes", "px (eval)", "train / test", "release", "in the cache"):
        t.add_column(col, overflow="fold", no_wrap=col in ("dataset", "train / test"))
    for d in data["datasets"]:
        c = d["cached"]
        if c is None:
            here = "-"
        elif not c.get("readable"):
            here = "unreadable: re-run download"
        else:
            here = "yes" if c.get("registered") else "own content"
        size = f"{d.get('image_size') or 'any'} ({d['eval_size']})" if d["known"] else "-"
        count = f"{d['n_train']:,} / {d['n_test']:,}" if d["known"] else (
            f"{c['n_train']:,} / {c['n_test']:,}" if c and c.get("readable") else "-")
        t.add_row(escape(d["name"]), str(d.get("num_classes", "-")), size, count,
                  "yes" if d["registered"] else "-", escape(here))
    tables.append(t)

    t = Table(title="methods (eval --method)", title_justify="left")
    for col in ("method", "kind", "what"):
        t.add_column(col, overflow="fold")
    for m in data["methods"]:
        t.add_row(escape(m["name"]), m["kind"], escape(m["description"]))
    tables.append(t)

    t = Table(title="episode suites (build-episodes, eval --suite episodes-*)",
              title_justify="left")
    for col in ("suite", "registered", "in the cache"):
        t.add_column(col, overflow="fold")
    for e in data["episode_suites"]:
        c = e["cached"]
        here = "-" if c is None else (f"= {c['registered_as']}" if c["registered_as"]
                                      else "own build (not a registered release)")
        t.add_row(e["kind"], _releases_text(e["releases"]), here)
    tables.append(t)
    return tables


@click.command("list")
@root_option
@click.option("--releases", type=click.Path(dir_okay=False), default=None,
              help="Releases file (default: $DEEPNETS_BENCH_RELEASES or the packaged one).")
@json_option
def list_cmd(root: str | None, releases: str | None, as_json: bool) -> None:
    """List the suites, splits with their releases, datasets, methods and episode suites,
    known and in the cache."""
    data = catalog(root, releases)
    if as_json:
        import json

        click.echo(json.dumps(data, indent=2, sort_keys=True))
        return
    from rich.console import Console

    console = Console()
    for table in render(data):
        console.print(table)


COMMANDS = [list_cmd]
