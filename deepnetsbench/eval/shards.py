"""Shards: one evaluation run split over processes, GPUs or a job array, then merged.

``eval --shard K/N`` evaluates shard K (1-based) of N of the selected architectures into its
own results file and journal; ``deepnets-bench merge`` checks that a set of shard files is
one run and writes the single results file the leaderboard accepts.

The partition (rule :data:`RULE`) is deterministic and balanced by compute:

1. the cost of an architecture is its multiply-accumulates (MACs) for one image at the
   dataset's evaluation size and class count (registry values; 32 px and 10 classes for an
   unregistered dataset), counted from the spec without building the network
   (:func:`spec_macs`: conv, linear and attention projections, as ``count_macs`` counts
   them); a predefined model (no spec) is built with its weights on the ``meta`` device and
   counted there (its parameter count if it cannot run there);
2. architectures are taken by decreasing cost (ties: lower index first) and each goes to
   the shard with the smallest total so far (ties: lower shard number) -- the greedy
   longest-processing-time rule, whose largest shard is within one architecture's cost of
   the smallest;
3. a shard evaluates its indices in increasing order.

:func:`shard_indices` gives any shard's indices from Python. The shard is written into the
results as ``protocol.extra.shard``; merging needs no split file.
"""

from __future__ import annotations

import hashlib
import heapq
import json
import math
import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from deepnetsbench.errors import BenchError
from deepnetsbench.eval.macs import module_macs, spec_macs

__all__ = ["RULE", "Shard", "arch_costs", "evaluate_shard", "merge_files", "merge_results",
           "partition", "selection_indices", "shard_indices", "shard_out", "spec_macs"]

RULE = "macs-lpt-1"
_SHARD_SUFFIX = re.compile(r"-shard(\d+)of(\d+)$")


@dataclass(frozen=True)
class Shard:
    """Shard ``index`` of ``count`` (1-based, as written on the command line: ``2/4``)."""

    index: int
    count: int

    def __post_init__(self) -> None:
        if self.count < 1 or not 1 <= self.index <= self.count:
            raise BenchError(f"--shard {self.index}/{self.count} does not exist",
                             f"shards are numbered 1..N, e.g. --shard 1/{max(self.count, 2)}")

    @classmethod
    def parse(cls, text: str) -> Shard:
        m = re.fullmatch(r"\s*(\d+)\s*/\s*(\d+)\s*", text or "")
        if not m:
            raise BenchError(f"--shard {text!r} is not K/N", "write e.g. --shard 2/4 (shard 2 of 4)")
        return cls(int(m.group(1)), int(m.group(2)))

    def __str__(self) -> str:
        return f"{self.index}/{self.count}"


# ----------------------------------------------------------------------------- costs


def _module_macs(rec: Any, num_classes: int, image_size: int) -> int:
    """A predefined model's MACs (built on the meta device); its parameter count where the
    model cannot run there (a documented fallback of the cost rule)."""
    try:
        return module_macs(lambda: rec.build_model(num_classes=num_classes,
                                                   image_size=image_size), image_size)
    except Exception:  # noqa: BLE001 - a cost estimate only
        return int(rec.num_params)


def _dataset_shape(dataset: str | None) -> tuple[int, int]:
    from deepnetsbench.data.registry import DATASETS, canonical_name

    info = DATASETS.get(canonical_name(dataset or "cifar10"))
    return (info.num_classes, info.eval_size) if info else (10, 32)


def arch_costs(suite: Any, indices: Sequence[int], dataset: str | None = "cifar10") -> list[int]:
    """The cost (MACs, rule step 1) of each of ``indices`` in ``suite`` (an ArchSuite,
    DeepNets1M or any sequence of architecture records)."""
    classes, size = _dataset_shape(dataset)
    costs = []
    for i in indices:
        rec = suite[i]
        rec_size = max(size, int(getattr(rec, "image_size", 0) or 0))  # as the evaluator builds it
        costs.append(spec_macs(rec.spec, classes, rec_size) if rec.spec is not None
                     else _module_macs(rec, classes, rec_size))
    return costs


def partition(costs: Sequence[float], n: int) -> list[list[int]]:
    """Positions ``0..len(costs)-1`` dealt into ``n`` groups by rule steps 2-3."""
    if n < 1:
        raise BenchError(f"cannot partition into {n} shards", "pass N >= 1")
    order = sorted(range(len(costs)), key=lambda p: (-costs[p], p))
    heap = [(0.0, k) for k in range(n)]  # (total cost, shard): ties go to the lower shard
    groups: list[list[int]] = [[] for _ in range(n)]
    for p in order:
        total, k = heapq.heappop(heap)
        groups[k].append(p)
        heapq.heappush(heap, (total + float(costs[p]), k))
    return [sorted(g) for g in groups]


def selection_indices(n: int, archs: Sequence[int] | None = None,
                      limit: int | None = None) -> list[int]:
    """The indices a run selects (``--arch``, ``--limit``), as the evaluator picks them."""
    from deepnetsbench.eval.runner import select_indices

    return select_indices(n, archs, limit)


def _shard_of(suite: Any, selection: Sequence[int], shard: Shard, dataset: str | None) -> list[int]:
    if shard.count > len(selection):
        raise BenchError(f"--shard {shard}: {shard.count} shards for {len(selection)} "
                         "architectures would leave a shard empty",
                         f"use at most {len(selection)} shards")
    groups = partition(arch_costs(suite, selection, dataset), shard.count)
    return [int(selection[p]) for p in groups[shard.index - 1]]


def shard_indices(split: str, shard: Shard | str, dataset: str | None = "cifar10",
                  root: str | os.PathLike | None = None, archs: Sequence[int] | None = None,
                  limit: int | None = None, mock: bool = False) -> list[int]:
    """The architecture indices ``eval --shard`` evaluates, e.g.
    ``shard_indices("test", "2/4")`` (opens the split, or the mock split with ``mock``)."""
    from deepnetsbench.eval.runner import open_mock, open_split

    shard = Shard.parse(shard) if isinstance(shard, str) else shard
    suite = open_mock(split, dataset or "cifar10", root)[0] if mock else open_split(split, root)
    return _shard_of(suite, selection_indices(len(suite), archs, limit), shard, dataset)


# ----------------------------------------------------------------------------- running


def shard_out(out: str | os.PathLike, shard: Shard) -> Path:
    """``runs/mine.json`` -> ``runs/mine-shard2of4.json``."""
    out = Path(out)
    return out.with_name(f"{out.stem}-shard{shard.index}of{shard.count}{out.suffix or '.json'}")


def _digest(indices: Sequence[int]) -> str:
    return hashlib.sha256(json.dumps(sorted(int(i) for i in indices)).encode()).hexdigest()


def _selection_record(selection: Sequence[int], n: int) -> Any:
    if list(selection) == list(range(n)):
        return "all"
    if list(selection) == list(range(len(selection))):
        return f"first {len(selection)}"
    return [int(i) for i in selection]


def shard_tag(shard: Shard, selection: Sequence[int], suite_size: int) -> dict[str, Any]:
    """What a shard's results record about it (``protocol.extra.shard``)."""
    return {"index": shard.index, "count": shard.count, "rule": RULE,
            "selection": _selection_record(selection, suite_size),
            "selection_size": len(selection), "selection_sha256": _digest(selection)}


def plan_shard(cfg: Any, shard: Shard) -> tuple[list[int], dict[str, Any]]:
    """(indices, tag) of ``shard`` of the run ``cfg`` (an EvalConfig); opens the split."""
    from deepnetsbench.eval.lite import LITE, select_archs
    from deepnetsbench.eval.runner import open_mock, open_split

    if cfg.suite not in ("deepnets1m", LITE):
        raise BenchError("--shard splits the architectures of the deepnets1m suites",
                         "evaluate episode suites without --shard")
    suite = (open_mock(cfg.split, cfg.dataset, cfg.root, cfg.seed)[0] if cfg.mock
             else open_split(cfg.split, cfg.root, release=getattr(cfg, "release", None)))
    archs = select_archs(cfg, len(suite)) if cfg.suite == LITE else cfg.archs
    selection = selection_indices(len(suite), archs, None if cfg.suite == LITE else cfg.limit)
    indices = _shard_of(suite, selection, shard, cfg.dataset)
    return indices, shard_tag(shard, selection, len(suite))


def evaluate_shard(method_spec: str, cfg: Any, shard: Shard,
                   options: Mapping[str, Any] | None = None, hooks: Sequence[Any] = (),
                   console: Any = None, plan: tuple[list[int], dict[str, Any]] | None = None):
    """Evaluate one shard of the run ``cfg`` into ``cfg.out`` (its own journal beside it)
    and record the shard in the results; returns the Results."""
    from deepnetsbench.eval.runner import evaluate
    from deepnetsbench.results import save_results

    indices, tag = plan or plan_shard(cfg, shard)
    results = evaluate(method_spec, replace(cfg, archs=indices, limit=None), options,
                       hooks=hooks, console=console)
    results.protocol.extra = {**results.protocol.extra, "shard": tag}
    save_results(results, cfg.out)
    return results


# ----------------------------------------------------------------------------- merging

#: Fields that may differ between the shards of one run (everything else must be equal).
_PER_SHARD = {"records", "aggregates", "started_at", "finished_at", "notes"}
_PER_SHARD_EXTRA = {"shard", "architectures", "complete"}
_HARDWARE = ("device", "gpu", "cpu", "platform")  # may differ between nodes; listed


def _comparable(res: Any) -> dict[str, Any]:
    data = res.model_dump(mode="json")
    for key in _PER_SHARD:
        data.pop(key, None)
    proto = data["protocol"]
    proto.pop("device", None)
    proto["extra"] = {k: v for k, v in proto["extra"].items() if k not in _PER_SHARD_EXTRA}
    env = data.get("environment") or {}
    for key in _HARDWARE:
        env.pop(key, None)
    return data


def _first_difference(a: Any, b: Any, where: str = "") -> str | None:
    if isinstance(a, dict) and isinstance(b, dict):
        for key in [*a, *(k for k in b if k not in a)]:  # schema order: the method's name first
            d = _first_difference(a.get(key), b.get(key), f"{where}.{key}" if where else key)
            if d:
                return d
        return None
    return None if a == b else where


def _value(data: Any, where: str) -> str:
    for part in where.split("."):
        data = data.get(part) if isinstance(data, dict) else None
    s = json.dumps(data)
    return s if len(s) <= 40 else s[:37] + "..."


def _few(xs: Sequence[int], k: int = 5) -> str:
    head = ", ".join(map(str, xs[:k]))
    return head + (f", ... ({len(xs)} in all)" if len(xs) > k else "")


def _joined(values: Sequence[Any]) -> Any:
    distinct = list(dict.fromkeys(v for v in values if v is not None))
    if not distinct:
        return None
    return distinct[0] if len(distinct) == 1 else ", ".join(map(str, distinct))


def merge_results(shards: Sequence[tuple[str, Any]]):
    """One Results from the shard results ``[(name, Results), ...]`` of one run.

    Refused (BenchError naming the file and the reason): a file that is not a shard or is
    incomplete, shards of different runs (method, options, split or dataset release,
    protocol, software), a shard given twice or missing, records outside their shard's
    selection, overlapping or missing architectures."""
    from deepnetsbench.results import Results, aggregate

    fix_run = "merge the shard files of one run (same eval command, different --shard)"
    if not shards:
        raise BenchError("nothing to merge", "pass the shard results files")
    tags = []
    for name, res in shards:
        tag = res.protocol.extra.get("shard")
        if not res.protocol.extra.get("complete", False):  # an interrupted shard is untagged
            raise BenchError(f"{name} is incomplete: {len(res.records)} architectures "
                             "evaluated", "re-run that shard's command to resume it, then merge")
        if not isinstance(tag, dict) or tag.get("rule") != RULE:
            raise BenchError(f"{name} is not a shard result (no protocol.extra.shard of rule "
                             f"{RULE})", "run it with eval --shard K/N, or drop it")
        tags.append(tag)

    name0, res0 = shards[0]
    base = _comparable(res0)
    for (name, res), tag in zip(shards[1:], tags[1:]):
        where = _first_difference(base, _comparable(res))
        if where:
            raise BenchError(f"{name} belongs to another run than {name0} ({where}: "
                             f"{_value(_comparable(res), where)} vs {_value(base, where)})",
                             fix_run)
        for key in ("count", "selection_sha256"):
            if tag[key] != tags[0][key]:
                raise BenchError(f"{name} is a shard of another partition than {name0} "
                                 f"({key}: {tag[key]} vs {tags[0][key]})", fix_run)

    count = int(tags[0]["count"])
    by_index: dict[int, str] = {}
    for (name, _), tag in zip(shards, tags):
        k = int(tag["index"])
        if k in by_index:
            raise BenchError(f"shard {k}/{count} is given twice ({by_index[k]}, {name})",
                             "pass each shard once")
        by_index[k] = name
    absent = [k for k in range(1, count + 1) if k not in by_index]
    if absent:
        raise BenchError(f"shard{'s' if len(absent) > 1 else ''} "
                         f"{', '.join(f'{k}/{count}' for k in absent)} missing",
                         "evaluate the missing shards (eval --shard K/N) and pass them too")

    owner: dict[int, str] = {}
    for name, res in shards:
        for rec in res.records:
            if rec.index in owner:
                raise BenchError(f"architecture {rec.index} is in two shards ({owner[rec.index]}, "
                                 f"{name}): the shards overlap", fix_run)
            owner[rec.index] = name
    selection = _selection_of(tags[0], res0.split.num_items)
    covered = sorted(owner)
    if selection is not None:
        outside = sorted(set(covered) - set(selection))
        missing = sorted(set(selection) - set(covered))
        if outside:
            raise BenchError(f"architectures {_few(outside)} ({owner[outside[0]]}) are outside "
                             "the run's selection", fix_run)
        if missing:
            raise BenchError(f"{len(missing)} architectures of the run are in no shard "
                             f"({_few(missing)})", "evaluate them (resume the shard runs)")
    if _digest(covered) != tags[0]["selection_sha256"]:
        raise BenchError(f"the shards cover {len(covered)} architectures, not the run's "
                         f"{tags[0]['selection_size']}", fix_run)

    records = sorted((r for _, res in shards for r in res.records), key=lambda r: r.index)
    extra = {k: v for k, v in res0.protocol.extra.items() if k not in _PER_SHARD_EXTRA}
    ordered = _ordered(shards, tags)
    extra.update(complete=True, architectures=tags[0]["selection"],
                 merged={"rule": RULE, "shards": count,
                         "devices": [r.protocol.device for _, r in ordered]})
    data = res0.model_dump(mode="json")
    env = data["environment"]
    for key in _HARDWARE:
        env[key] = _joined([r.environment.model_dump().get(key) for _, r in shards])
    data.update(
        records=[r.model_dump(mode="json") for r in records],
        aggregates=aggregate(records).model_dump(mode="json"),
        started_at=min(r.started_at for _, r in shards).isoformat(),
        finished_at=max(r.finished_at for _, r in shards).isoformat(),
        notes=f"merged from {count} shards (rule {RULE})",
    )
    data["protocol"]["device"] = _joined([r.protocol.device for _, r in ordered])
    data["protocol"]["extra"] = extra
    return Results.model_validate(data)


def _ordered(shards: Sequence[tuple[str, Any]], tags: Sequence[dict]) -> list[tuple[str, Any]]:
    """The shards in shard order (1/N first)."""
    order = sorted(range(len(shards)), key=lambda i: int(tags[i]["index"]))
    return [shards[i] for i in order]


def _selection_of(tag: Mapping[str, Any], suite_size: int) -> list[int] | None:
    sel = tag.get("selection")
    if sel == "all":
        return list(range(suite_size))
    if isinstance(sel, str) and sel.startswith("first "):
        return list(range(int(sel.split()[1])))
    if isinstance(sel, list):
        return [int(i) for i in sel]
    return None


def default_merged_out(paths: Sequence[str | os.PathLike]) -> Path:
    """``mine-shard1of3.json`` -> ``mine.json`` (when every input follows that naming)."""
    stems = {_SHARD_SUFFIX.sub("", Path(p).stem) for p in paths}
    parents = {Path(p).parent for p in paths}
    if len(stems) != 1 or len(parents) != 1 or not all(_SHARD_SUFFIX.search(Path(p).stem)
                                                       for p in paths):
        raise BenchError("cannot name the merged file from these inputs",
                         "pass --out merged.json")
    return parents.pop() / f"{stems.pop()}.json"


def merge_files(paths: Sequence[str | os.PathLike], out: str | os.PathLike | None = None):
    """Merge shard results files into ``out`` (default: the shard name without its
    ``-shardKofN`` suffix); returns (Results, path written)."""
    from deepnetsbench.results import load_results, save_results

    if not paths:
        raise BenchError("nothing to merge", "pass the shard results files")
    target = Path(out) if out is not None else default_merged_out(paths)
    resolved = {Path(p).resolve() for p in paths}
    if len(resolved) != len(paths):
        raise BenchError("the same file is given twice", "pass each shard file once")
    if target.resolve() in resolved:
        raise BenchError(f"--out {target} is one of the inputs", "write the merge elsewhere")
    merged = merge_results([(str(p), load_results(p)) for p in paths])
    save_results(merged, target)
    return merged, target


def balance(groups_costs: Sequence[Sequence[float]]) -> float:
    """max / mean of the shard totals (1.0 is perfect balance); for reports and tests."""
    totals = [float(sum(c)) for c in groups_costs]
    mean = sum(totals) / len(totals)
    return max(totals) / mean if mean > 0 else math.inf
