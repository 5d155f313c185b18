"""Writing architectures in the official DeepNets-1M layout (docs/format.md, spec §7).

For tools built on the official loader, and for tests: files written here are read by
:mod:`deepnetsbench.splits.ppuda_convert` exactly like the published ones. What the released
generator does, this writer does: one HDF5 group per split with ``str(i)`` subgroups, ``adj``
with virtual-edge distances up to 250, ``nodes`` rows ``[primitive id, cell index, op-name
id]`` with per-split tables in order of first appearance, ``conv`` nodes with 2-D or 1x1
weights named ``conv_1x1``, op names without their ``cells.<k>.`` prefix, parameter-free
nodes named by their type, and (``row_order="cells"``, the default) the rows written cell by
cell, which is how the released generator misaligns ``nodes`` with ``adj``.
"""

from __future__ import annotations

import gzip
import io
import json
import re
import tarfile
from collections.abc import Mapping, Sequence
from pathlib import Path

import h5py
import numpy as np

from deepnetsbench.errors import BenchError
from deepnetsbench.graph.graph import Graph
from deepnetsbench.space.genotype import ArchSpec
from deepnetsbench.space.primitives import NODE_TYPES
from deepnetsbench.splits.ppuda import VE_CUTOFF
from deepnetsbench.splits.ppuda_meta import PARAM_FREE, record_from_spec

EVAL_ORDER = ("val", "test", "wide", "deep", "dense", "bnfree")
ROW_ORDERS = ("cells", "global")
_CELL = re.compile(r"cells\.(\d+)\.")


def cell_of(name: str | None, n_cells: int) -> int | None:
    """The official cell rule for one node name (None: inherit the previous node's cell)."""
    if not name:
        return 0 if n_cells == 1 else None
    m = _CELL.search(name)
    if m:
        return int(m.group(1))
    if name.startswith(("classifier", "auxiliary")):
        return n_cells - 1
    if n_cells == 1 or name.startswith(("stem", "pos_enc")):
        return 0
    return None


def stored_name(name: str | None, type_name: str) -> str:
    """The op-name table entry: the type for parameter-free nodes, else the parameter name
    without its ``cells.<k>.`` prefix."""
    if type_name in PARAM_FREE or not name:
        return type_name
    return _CELL.sub("", name, count=1) if name.startswith("cells.") else name


def primitive_name(type_name: str, shape: tuple[int, ...]) -> str:
    if type_name == "conv" and (len(shape) == 2 or (len(shape) == 4 and shape[2:] == (1, 1))):
        return "conv_1x1"
    return type_name


def official_rows(graph: Graph, n_cells: int) -> list[tuple[str, int, str]]:
    """``(primitive name, cell index, op name)`` per node, in the graph's (global) order."""
    rows, cell = [], 0
    for k, (t, name) in enumerate(zip(graph.node_types.tolist(), graph.param_names)):
        type_name = NODE_TYPES[t]
        c = cell_of(name, n_cells) if type_name not in PARAM_FREE else None
        cell = cell if c is None else c
        rows.append((primitive_name(type_name, graph.param_shape(k)), cell,
                     stored_name(name, type_name)))
    return rows


def official_adjacency(graph: Graph) -> np.ndarray:
    """uint8 N x N: 1 for an edge, the shortest-path length (2..250) for a virtual edge."""
    adj = graph.adjacency()
    ve = graph.virtual_edges(VE_CUTOFF)
    if len(ve):
        adj[ve[:, 0], ve[:, 1]] = ve[:, 2]
    return adj


class _Table(dict):
    """Name -> id in order of first appearance (the generator's tables)."""

    def id(self, name: str) -> int:
        return self.setdefault(name, len(self))

    def to_json(self) -> dict[str, str]:
        return {str(i): name for name, i in self.items()}


def write_official(folder: str | Path, splits: Mapping[str, Sequence[ArchSpec]],
                   kind: str = "eval", row_order: str = "cells",
                   graphs: Mapping[str, Sequence[Graph]] | None = None) -> tuple[Path, Path]:
    """Write ``deepnets1m_<kind>.hdf5`` and ``deepnets1m_<kind>_meta.json`` into ``folder``.

    ``splits`` maps split names to architectures at their evaluation width (WIDE at 4x the
    meta's C, as :func:`~deepnetsbench.splits.ppuda_meta.spec_from_record` reads them back).
    Stored graphs are the graphs at C = 32, 10 classes, 32 px (as the generator builds them),
    derived from the spec unless ``graphs`` gives them (e.g. golden official graphs)."""
    from deepnetsbench.graph.derive import count_params, graph_from_spec

    if row_order not in ROW_ORDERS:
        raise BenchError(f"unknown row order {row_order!r}", f"use one of {ROW_ORDERS}")
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    h5_path = folder / f"deepnets1m_{kind}.hdf5"
    meta_path = folder / f"deepnets1m_{kind}_meta.json"
    order = [s for s in EVAL_ORDER if s in splits] + [s for s in splits if s not in EVAL_ORDER]
    meta: dict = {}
    with h5py.File(h5_path, "w", libver="earliest", track_order=False) as f:
        f.attrs["title"] = "DeepNets-1M"
        for split in order:
            group = f.create_group(split)
            prims, ops, nets = _Table(), _Table(), []
            for i, spec in enumerate(splits[split]):
                spec32 = spec.with_args(C=32)
                g = graphs[split][i] if graphs else graph_from_spec(spec32, 10, 32)
                rows = official_rows(g, spec.args.n_cells)
                perm = list(range(len(rows)))
                if row_order == "cells":
                    perm.sort(key=lambda k: rows[k][1])  # stable: global order within a cell
                nodes = np.array([(prims.id(rows[k][0]), rows[k][1], ops.id(rows[k][2]))
                                  for k in perm], dtype=np.uint16).reshape(-1, 3)
                item = group.create_group(str(i))
                item.create_dataset("adj", data=official_adjacency(g), track_times=False)
                item.create_dataset("nodes", data=nodes, track_times=False)
                counts = {"cifar10": count_params(spec32, 10, 32),
                          "imagenet": count_params(spec32, 10, 224)}
                nets.append(record_from_spec(spec, split, g.num_nodes, counts))
            meta[split] = {"nets": nets, "meta": {"primitives_ext": prims.to_json(),
                                                  "unique_op_names": ops.to_json()}}
    meta_path.write_text(json.dumps(meta))
    return h5_path, meta_path


def pack_meta(folder: str | Path, files: Sequence[str | Path], arc_dir: str = "deepnets1m_meta",
              name: str = "deepnets1m_meta.tar.gz") -> Path:
    """A deterministic ``deepnets1m_meta.tar.gz`` holding ``files`` under ``arc_dir/``
    (``""``: at the top level)."""
    out = Path(folder) / name
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.USTAR_FORMAT) as tar:
        if arc_dir:
            info = tarfile.TarInfo(arc_dir)
            info.type, info.mode, info.mtime = tarfile.DIRTYPE, 0o755, 0
            tar.addfile(info)
        for path in sorted(Path(p) for p in files):
            data = path.read_bytes()
            info = tarfile.TarInfo(f"{arc_dir}/{path.name}" if arc_dir else path.name)
            info.size, info.mode, info.mtime = len(data), 0o644, 0
            tar.addfile(info, io.BytesIO(data))
    with open(out, "wb") as raw, gzip.GzipFile(fileobj=raw, mode="wb", mtime=0) as gz:
        gz.write(buf.getvalue())
    return out
