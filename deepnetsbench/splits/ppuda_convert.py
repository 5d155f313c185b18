"""Convert the official DeepNets-1M files into the ``ppuda`` release of our split files.

The official files are read as they are (``deepnets1m_eval.hdf5`` with the
``deepnets1m_eval_meta.json`` of the unpacked meta tarball; ``deepnets1m_train.hdf5`` with
``--train``). Every architecture keeps its stored graph (as the official loader reads it) and
is checked three ways: its parameter count against the published per-architecture counts
(and the meta's own counts), its rows against the spec's §7 alignment test, and its graph
against the one we derive from the spec. The checks go to ``ppuda_report.json`` beside the
converted files; a parameter mismatch refuses the conversion unless ``allow_mismatch``, which
marks the release unverified (generator version ``ppuda-unverified``).

Work is cut into shards saved in ``.convert-<split>-<md5>/`` folders, so an interrupted TRAIN
conversion resumes at the first missing shard; the source is streamed (one shard of records
in memory) and the split file is packed field by field, so memory stays bounded. The output
depends only on the source files: the same official files give the same sha256.
"""

from __future__ import annotations

import contextlib
import hashlib
import itertools
import json
import multiprocessing as mp
import os
import shutil
import tarfile
import tempfile
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import h5py
import numpy as np

from deepnetsbench.errors import BenchError
from deepnetsbench.splits.codec import Columns
from deepnetsbench.splits.format import split_path, write_split
from deepnetsbench.splits.ppuda import (
    compare,
    is_aligned,
    read_stored,
    to_graph,
    virtual_consistent,
)
from deepnetsbench.splits.ppuda_meta import Tables, iter_meta, spec_from_record
from deepnetsbench.splits.ppuda_report import (
    CHECKS,
    REPORT,
    mismatch_lines,
    summarize,
    unverified,
    write_report,
)

RELEASE = "ppuda"
CONVERTER_VERSION = "2"
EVAL_SPLITS = ("val", "test", "wide", "deep", "dense", "bnfree")
PUBLISHED_PARAMS = Path(__file__).with_name("ppuda_params.json")
SHARD = 10_000
_DIFFS_PER_SHARD = 20  # detailed structure differences kept per shard


class ParamMismatch(BenchError):
    """Converted parameter counts differ from the published ones; ``lines`` lists them all."""

    def __init__(self, what: str, fix: str, lines: list[str]):
        super().__init__(what, fix)
        self.lines = lines


# ----------------------------------------------------------------------------- sources


@dataclass
class Source:
    """One official HDF5 file and its meta JSON (a file, or a member of the meta tarball)."""

    kind: str  # "eval" or "train"
    h5: Path
    meta: Path
    member: str | None = None
    tarball: Path | None = None

    @contextlib.contextmanager
    def open_meta(self) -> Iterator:
        if self.member is None:
            with open(self.meta, "rb") as f:
                yield f
            return
        with tarfile.open(self.meta) as tar, tar.extractfile(self.member) as f:
            yield f

    def md5s(self) -> dict[str, str]:
        """md5 of the HDF5 and of the meta JSON's bytes (wherever it lives)."""
        with self.open_meta() as f:
            meta_md5 = _md5(f)
        with open(self.h5, "rb") as f:
            h5_md5 = _md5(f)
        return {self.h5.name: h5_md5, f"deepnets1m_{self.kind}_meta.json": meta_md5}


def _md5(f) -> str:
    h = hashlib.md5()
    while block := f.read(1 << 22):
        h.update(block)
    return h.hexdigest()


def locate(folder: str | os.PathLike, kind: str = "eval") -> Source:
    """Find ``deepnets1m_<kind>.hdf5`` and its meta JSON: beside it, in the unpacked
    ``deepnets1m_meta`` folder, one folder down, or inside ``deepnets1m_meta.tar.gz``."""
    folder = Path(folder)
    h5 = folder / f"deepnets1m_{kind}.hdf5"
    name = f"deepnets1m_{kind}_meta.json"
    if not h5.exists():
        raise BenchError(f"no deepnets1m_{kind}.hdf5 (with {name}) in {folder}",
                         "pass the folder holding the official download (deepnets1m_eval.hdf5 "
                         "and the unpacked deepnets1m_meta.tar.gz)")
    tarball = folder / "deepnets1m_meta.tar.gz"
    tarball = tarball if tarball.exists() else None
    found = [folder / name] + sorted((folder / "deepnets1m_meta").rglob(name)) \
        + sorted(folder.glob(f"*/{name}"))
    for path in found:
        if path.is_file():
            return Source(kind, h5, path, tarball=tarball)
    if tarball is not None:
        try:
            with tarfile.open(tarball) as tar:
                members = [m.name for m in tar.getmembers()
                           if m.isfile() and Path(m.name).name == name]
        except (tarfile.TarError, OSError) as err:
            raise BenchError(f"{tarball} is corrupt ({err})",
                             "download deepnets1m_meta.tar.gz again") from None
        if members:
            return Source(kind, h5, tarball, sorted(members)[0], tarball)
    raise BenchError(f"no {name} next to {h5.name}, in deepnets1m_meta/ or in the meta tarball",
                     f"unpack deepnets1m_meta.tar.gz in {folder} (tar -xf deepnets1m_meta.tar.gz)")


def read_eval_meta(source: Source) -> dict[str, tuple[list, Tables]]:
    """``{split: (records, tables)}`` of an eval meta file, for the six eval splits."""
    records: dict[str, list] = {}
    tables: dict[str, Tables] = {}
    with source.open_meta() as f:
        for event, split, value in iter_meta(f, source.meta.name):
            if event == "net":
                records.setdefault(split, []).append(value)
            else:
                tables[split] = Tables.from_json(value, split)
    out = {}
    for split in EVAL_SPLITS:
        if split in records or split in tables:
            if split not in tables:
                raise BenchError(f"split {split!r} of {source.meta.name} has no meta tables",
                                 "pass the official meta file, unmodified")
            out[split] = (records.get(split, []), tables[split])
    if not out:
        raise BenchError(f"{source.meta.name} holds none of the splits {', '.join(EVAL_SPLITS)}",
                         "pass deepnets1m_eval_meta.json from deepnets1m_meta.tar.gz")
    return out


def published_params(path: str | os.PathLike | None = None) -> dict[str, list[int]]:
    """The published per-architecture counts (``{split: [params by index]}``)."""
    p = Path(path) if path else PUBLISHED_PARAMS
    try:
        data = json.loads(p.read_text())
        return {k: [int(x) for x in v] for k, v in data["params"].items()}
    except (OSError, ValueError, KeyError, TypeError) as err:
        raise BenchError(f"cannot read published parameter counts {p} ({err})",
                         'pass a JSON file {"params": {split: [count, ...]}}') from None


# ----------------------------------------------------------------------------- one shard


def convert_net(split: str, index: int, rec: dict, group, tables: Tables) -> tuple:
    """(spec, our Graph of the stored graph, checks) of one official architecture."""
    from deepnetsbench.graph.derive import count_params, graph_from_spec

    spec = spec_from_record(rec, split, index)
    where = f"{split}[{index}]"
    stored = read_stored(group, tables, where)
    edges = stored.edges()
    spec32 = spec.with_args(C=32)
    try:
        ours = graph_from_spec(spec, 10, 32)  # its num_params counts dead layers too
        shapes = {n: ours.param_shape(k) for k, n in enumerate(ours.param_names) if n}
        graph, missing = to_graph(stored.types, stored.names, edges, spec, ours.num_params,
                                  shapes=shapes)
        derived = graph_from_spec(spec32, 10, 32)
        counts = {"ours_c10": derived.num_params, "ours_in": count_params(spec32, 10, 224)}
    except (ValueError, KeyError, AssertionError, RuntimeError) as err:
        raise BenchError(f"{where}: our builder cannot build this official architecture ({err})",
                         "report it with the record (see docs/format.md)") from None
    meta_counts = rec.get("num_params") or {}
    checks = {"aligned": is_aligned(stored.types, stored.names, edges),
              "virtual": virtual_consistent(stored), **compare(stored, derived),
              "ours": ours.num_params, **counts, "meta_c10": int(meta_counts.get("cifar10", -1)),
              "meta_in": int(meta_counts.get("imagenet", -1)), "nodes": stored.num_nodes,
              "meta_nodes": int(rec.get("num_nodes", -1)), "missing": len(missing),
              "missing_names": missing[:8]}
    return spec, graph, checks


def _convert_shard(job: tuple) -> int:
    # The file is opened per shard: HDF5 keeps metadata of every group visited while open
    # (~9 KB each), which over a million groups would not stay bounded.
    split, h5_path, start, records, tables, out = job
    with h5py.File(h5_path, "r") as f:
        if split not in f:
            raise BenchError(f"{Path(h5_path).name} has no group {split!r}",
                             "the HDF5 and the meta file must come from the same release")
        return _convert_records(f[split], split, h5_path, start, records, tables, out)


def _convert_records(group, split: str, h5_path: str, start: int, records: list,
                     tables: Tables, out: str) -> int:
    specs, graphs, rows, diffs = [], [], {k: [] for k in CHECKS}, {}
    names: dict[str, int] = {}
    node_name = []
    for k, rec in enumerate(records):
        i = start + k
        if str(i) not in group:
            raise BenchError(f"{Path(h5_path).name} has no architecture {split}/{i} "
                             f"(the meta file lists {start + len(records)} or more)",
                             "the HDF5 and the meta file must come from the same release")
        spec, graph, checks = convert_net(split, i, rec, group[str(i)], tables)
        specs.append(spec)
        graphs.append(graph)
        node_name.extend(-1 if n is None else names.setdefault(n, len(names))
                         for n in graph.param_names)
        for key in rows:
            rows[key].append(int(checks[key]))
        detail = {k: v for k, v in checks.items()
                  if k.startswith(("type_", "names_", "missing_")) and v}
        if detail and len(diffs) < _DIFFS_PER_SHARD:
            diffs[str(i)] = detail
    cols = Columns.from_items(specs, graphs)
    fd, tmp = tempfile.mkstemp(suffix=".npz", dir=os.path.dirname(out))
    os.close(fd)
    np.savez(tmp, **{f: getattr(cols, f) for f in Columns.FIELDS},
             node_name=np.asarray(node_name, np.int32),
             names=np.array(json.dumps(list(names))), diffs=np.array(json.dumps(diffs)),
             **{f"chk_{k}": np.asarray(v, np.int64) for k, v in rows.items()})
    os.replace(tmp, out)
    return len(records)


class _Shard:
    """A saved shard, loaded field by field (what :func:`write_split` streams)."""

    def __init__(self, path: Path):
        self.path = path

    def __getattr__(self, field: str) -> np.ndarray:
        if field.startswith("_") or field == "path":
            raise AttributeError(field)
        with np.load(self.path) as z:
            return z[field]


# ----------------------------------------------------------------------------- one split


@dataclass
class SplitWork:
    split: str
    source: Source
    shards: list[Path]
    work: Path
    n: int


def _work_dir(out_dir: Path, split: str, md5s: dict) -> Path:
    key = hashlib.sha1(json.dumps([CONVERTER_VERSION, md5s], sort_keys=True).encode())
    return out_dir / f".convert-{split}-{key.hexdigest()[:12]}"


def convert_shards(split: str, source: Source, records, tables: Tables, n: int, out_dir: Path,
                   md5s: dict, workers: int = 1, progress: bool = False) -> SplitWork:
    """Convert ``records`` (an iterable of ``n`` records, in order) into saved shards,
    skipping shards already saved by an interrupted run; ``workers`` processes at most,
    with at most two shards each in flight."""
    from deepnetsbench.splits.build import _progress

    work = _work_dir(out_dir, split, md5s)
    work.mkdir(parents=True, exist_ok=True)
    bounds = [(s, min(n, s + SHARD)) for s in range(0, n, SHARD)]
    shards = [work / f"shard-{k:05d}.npz" for k in range(len(bounds))]
    done = sum(e - s for (s, e), f in zip(bounds, shards) if f.exists())
    bar = _progress(progress, f"convert {split}", n, done)

    def jobs():
        it = iter(records)
        for (s, e), f in zip(bounds, shards):
            chunk = list(itertools.islice(it, e - s))
            if len(chunk) < e - s:
                raise BenchError(f"the meta file lists {s + len(chunk)} {split} architectures, "
                                 f"fewer than the {n} expected",
                                 "the meta file is truncated: unpack deepnets1m_meta.tar.gz again")
            if not f.exists():
                yield split, str(source.h5), s, chunk, tables, str(f)

    try:
        if workers > 1 and len(bounds) > 1:
            ctx = mp.get_context("spawn" if os.name == "nt" else "fork")
            with ctx.Pool(workers, initializer=_one_thread) as pool:
                pending: deque = deque()
                for job in jobs():
                    pending.append(pool.apply_async(_convert_shard, (job,)))
                    while len(pending) >= 2 * workers:
                        bar.advance(pending.popleft().get())
                while pending:
                    bar.advance(pending.popleft().get())
        else:
            for job in jobs():
                bar.advance(_convert_shard(job))
    finally:
        bar.close()
    return SplitWork(split, source, shards, work, n)


def _one_thread() -> None:
    import torch

    torch.set_num_threads(1)


def pack(work: SplitWork, out_dir: Path, attrs: dict, manifest_extra: dict) -> Path:
    """Write the split file from the saved shards (field by field) and drop the shards.
    Parameter names go to ``node_name`` (int32 per node, -1 = none) indexing ``name_table``
    (in order of first appearance)."""
    shards = [_Shard(p) for p in work.shards]
    table: dict[str, int] = {}
    maps = []
    for shard in shards:
        local = json.loads(str(shard.names))
        maps.append(np.asarray([table.setdefault(n, len(table)) for n in local] + [-1], np.int32))
    extra = {"node_name": [lambda s=s, m=m: m[s.node_name] for s, m in zip(shards, maps)],
             "name_table": np.array(list(table), dtype=object)}
    path = split_path(out_dir, work.split)
    write_split(path, shards, {**attrs, "split": work.split, "num_items": work.n},
                extra=extra, manifest_extra=manifest_extra)
    shutil.rmtree(work.work, ignore_errors=True)
    return path


# ----------------------------------------------------------------------------- the release


def _train_meta(source: Source) -> tuple[Tables, int]:
    """First pass over the (large) TRAIN meta: its tables and record count."""
    n, tables = 0, None
    with source.open_meta() as f:
        for event, split, value in iter_meta(f, source.meta.name):
            if split == "train":
                if event == "net":
                    n += 1
                else:
                    tables = Tables.from_json(value, "train")
    if tables is None:
        raise BenchError(f"{source.meta.name} has no train split with its tables",
                         "pass deepnets1m_train_meta.json from deepnets1m_meta.tar.gz")
    return tables, n


def _train_records(source: Source) -> Iterator[dict]:
    with source.open_meta() as f:
        for event, split, value in iter_meta(f, source.meta.name):
            if event == "net" and split == "train":
                yield value


def _sources_record(source: Source, md5s: dict, registered: dict) -> dict:
    files = dict(md5s)
    if source.tarball is not None:
        with open(source.tarball, "rb") as f:
            files[source.tarball.name] = _md5(f)
    return {"files": files, "registered": {k: registered.get(k) == v for k, v in files.items()
                                           if k in registered}}


def _old_report(out_dir: Path) -> dict:
    try:
        return json.loads((out_dir / REPORT).read_text())
    except (OSError, ValueError):
        return {}


def convert_release(folder: str | os.PathLike, out_dir: str | os.PathLike, train: bool = False,
                    allow_mismatch: bool = False, workers: int = 1,
                    published: str | os.PathLike | None = None,
                    progress: bool = False) -> list[Path]:
    """Convert the official files in ``folder`` into split files in ``out_dir`` (the
    ``ppuda`` release folder); returns their paths (the official PREDEFINED pair is written
    beside them, :func:`write_predefined`). Refuses (:class:`ParamMismatch`, with
    the report written) when a parameter count differs, unless ``allow_mismatch``."""
    from deepnetsbench.releases import ppuda_release

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    registered = ppuda_release()["files"]
    pub = published_params(published)
    old = _old_report(out_dir)
    report: dict = {"release": RELEASE, "converter_version": CONVERTER_VERSION,
                    "published_params": str(Path(published).name if published else
                                            PUBLISHED_PARAMS.name),
                    "sources": {}, "splits": {}}
    works = []

    def check(stage: str) -> None:
        report["verified"] = all(unverified(s) == 0 for s in report["splits"].values())
        write_report(out_dir, report)
        if not report["verified"] and not allow_mismatch:
            lines = mismatch_lines(report)
            raise ParamMismatch(
                f"{len(lines)} finding(s) in {stage}: parameter counts of the converted "
                f"architectures differ from the published or meta counts (first: {lines[0]}; "
                f"all in {out_dir / REPORT})",
                "re-run with --allow-mismatch to convert anyway (the release is then marked "
                "unverified), and please send us the report (docs/format.md)", lines)

    src = locate(folder, "eval")
    md5s = src.md5s()
    report["sources"]["eval"] = _sources_record(src, md5s, registered)
    for split, (records, tables) in read_eval_meta(src).items():
        work = convert_shards(split, src, records, tables, len(records), out_dir, md5s,
                              progress=progress)
        report["splits"][split] = summarize(split, work.shards, pub.get(split))
        works.append((work, md5s))
    check("the evaluation splits")
    write_predefined(out_dir, pub.get("predefined"))
    if not train:  # keep what an earlier --train run found about the TRAIN file still there
        if split_path(out_dir, "train").exists() and "train" in old.get("splits", {}):
            report["sources"]["train"] = old["sources"].get("train")
            report["splits"]["train"] = old["splits"]["train"]
            check("the train split")
    if train:
        tsrc = locate(folder, "train")
        tmd5 = tsrc.md5s()
        report["sources"]["train"] = _sources_record(tsrc, tmd5, registered)
        tables, n = _train_meta(tsrc)
        work = convert_shards("train", tsrc, _train_records(tsrc), tables, n, out_dir, tmd5,
                              workers=workers, progress=progress)
        report["splits"]["train"] = summarize("train", work.shards, None)
        works.append((work, tmd5))
        check("the train split")
    paths = []
    for work, md5 in works:
        summary = report["splits"][work.split]
        ok = unverified(summary) == 0
        attrs = {"generator_version": RELEASE if ok else f"{RELEASE}-unverified", "seed": -1,
                 "num_classes": 10, "image_size": 32, "source": RELEASE, "release": RELEASE,
                 "converter_version": CONVERTER_VERSION, "params_verified": int(ok),
                 "source_md5": json.dumps(md5, sort_keys=True)}
        checks = {k: v for k, v in summary.items() if isinstance(v, int)}
        checks.update({k: v for k, v in summary["params"].items() if k.endswith("mismatches")})
        extra = {"source_files": report["sources"][work.source.kind], "checks": checks}
        paths.append(pack(work, out_dir, attrs, extra))
    return paths


def write_predefined(out_dir: Path, published: list[int] | None) -> Path:
    """The official PREDEFINED split (the CIFAR-adjusted ResNet-50 and the 12-cell ViT, the
    first two of our PREDEFINED) in the release folder, so that ``--release ppuda --split
    predefined`` evaluates exactly the published pair. The official loader builds them
    from code (no stored graph), and so does this; their counts are checked against the
    published ones."""
    from deepnetsbench.splits.build import build_predefined_split
    from deepnetsbench.splits.dataset import DeepNets1M
    from deepnetsbench.splits.predefined import predefined_names

    names = predefined_names()[:2]
    attrs = {"generator_version": RELEASE, "source": RELEASE, "release": RELEASE,
             "converter_version": CONVERTER_VERSION}
    path = build_predefined_split(split_path(out_dir, "predefined"), progress=False,
                                  names=names, attrs=attrs)
    counts = [int(c) for c in DeepNets1M("predefined", path=path).num_params]
    if published is not None and counts != [int(c) for c in published]:
        raise BenchError(f"the PREDEFINED nets have {counts} parameters, the published ones "
                         f"{list(published)}", "report it (docs/format.md)")
    return path
