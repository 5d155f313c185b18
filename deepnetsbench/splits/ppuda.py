"""The graphs of the official DeepNets-1M files, read the way the official loader reads them.

Each architecture is a group ``/<split>/<i>`` with ``adj`` (uint8 N x N: 1 = edge, 2..250 =
virtual edge of that shortest-path length) and ``nodes`` (uint16 N x 3 rows ``[primitive id,
cell index, op-name id]``, ids into the split's tables). The official GHNs were trained and
evaluated on these stored graphs, with row ``k`` of ``nodes`` taken as node ``k`` of ``adj``
even where the released generator wrote the rows cell by cell (spec §7), so the converted
graph keeps exactly that pairing. The checks here say how far the stored graph agrees with
the graph re-derived from the architecture (:func:`~deepnetsbench.graph.derive.graph_from_spec`).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

import numpy as np

from deepnetsbench.errors import BenchError
from deepnetsbench.graph.graph import Graph
from deepnetsbench.space.genotype import ArchSpec
from deepnetsbench.space.primitives import NODE_INDEX, NODE_TYPES
from deepnetsbench.splits.ppuda_meta import Tables

#: Virtual-edge cutoff of the stored adjacency (the generator's ``ve_cutoff``).
VE_CUTOFF = 250
_POOLS = (NODE_INDEX["max_pool"], NODE_INDEX["avg_pool"])


@dataclass
class StoredGraph:
    """One architecture of an official file: decoded rows and the adjacency, as stored."""

    types: np.ndarray  # int16 [N], node type of row k
    names: list[str | None]  # official parameter name of row k (None: parameter-free)
    cells: np.ndarray  # int32 [N], cell index column
    adj: np.ndarray  # uint8 [N, N]

    @property
    def num_nodes(self) -> int:
        return len(self.types)

    def edges(self) -> np.ndarray:
        """1-hop edges ``(src, dst)`` sorted by ``(dst, src)``."""
        src, dst = np.nonzero(self.adj == 1)
        order = np.lexsort((src, dst))
        return np.stack([src[order], dst[order]], axis=1).astype(np.int32)


def read_stored(group, tables: Tables, where: str) -> StoredGraph:
    """Decode ``group`` (an h5py group with ``adj`` and ``nodes``)."""
    try:
        adj, rows = group["adj"][()], group["nodes"][()]
    except KeyError as err:
        raise BenchError(f"{where} has no {err.args[0] if err.args else 'adj/nodes'} dataset",
                         "pass the official deepnets1m_*.hdf5, unmodified") from None
    n = len(rows)
    if adj.ndim != 2 or adj.shape != (n, n) or rows.ndim != 2 or rows.shape[1] != 3:
        raise BenchError(f"{where}: adj {adj.shape} and nodes {rows.shape} do not match",
                         "pass the official deepnets1m_*.hdf5, unmodified")
    if np.any(np.diagonal(adj)):
        raise BenchError(f"{where}: the adjacency has self-loops", "the file is corrupt")
    types, names = tables.rows(rows, where)
    return StoredGraph(types, names, rows[:, 1].astype(np.int32),
                       np.ascontiguousarray(adj, dtype=np.uint8))


def param_shapes(spec: ArchSpec, num_classes: int = 10, image_size: int = 32) -> dict:
    """``{parameter name: shape}`` of the built network (what the loader takes shapes from)."""
    from deepnetsbench.graph.derive import graph_from_spec

    g = graph_from_spec(spec, num_classes, image_size)
    return {name: g.param_shape(i) for i, name in enumerate(g.param_names) if name}


def _torch_shapes(spec: ArchSpec, num_classes: int, image_size: int) -> dict:
    from deepnetsbench.space.network import build_model

    model = build_model(spec, num_classes, image_size)
    return {name: tuple(p.shape) for name, p in model.named_parameters()}


def to_graph(types: np.ndarray, names: list[str | None], edges: np.ndarray, spec: ArchSpec,
             num_params: int, num_classes: int = 10, image_size: int = 32,
             shapes: dict | None = None) -> tuple[Graph, list[str]]:
    """Our :class:`Graph` of a stored graph: shapes come from the network built from
    ``spec`` by parameter name (pools: (1, 1, 3, 3), as the loader assumes). Returns the
    graph and the names the network does not have (their shape stays 0)."""
    shapes = shapes if shapes is not None else param_shapes(spec, num_classes, image_size)
    missing = [n for n in names if n is not None and n not in shapes]
    if missing:  # dead layers are absent from the derived graph; the module has them all
        shapes = {**_torch_shapes(spec, num_classes, image_size), **shapes}
        missing = [n for n in names if n is not None and n not in shapes]
    arr = np.zeros((len(types), 4), np.int32)
    for k, (t, n) in enumerate(zip(types.tolist(), names)):
        shape = (1, 1, 3, 3) if t in _POOLS else (shapes.get(n, ()) if n else ())
        arr[k, :len(shape)] = shape[:4]
    graph = Graph(np.asarray(types, np.int16), list(names), arr,
                  np.asarray(edges, np.int32).reshape(-1, 2), int(num_params))
    return graph, missing


# ----------------------------------------------------------------------------- checks


def is_aligned(types: np.ndarray, names: list[str | None], edges: np.ndarray) -> bool:
    """The spec's §7 test that row k describes adjacency node k: row 0 is ``input`` without
    in-edges; each ``bias`` row has exactly one 1-hop predecessor, a ``conv`` row; each
    ``bn``/``ln`` row has exactly one 1-hop predecessor; the last two rows are the classifier
    weight and bias."""
    n = len(types)
    if n < 3 or types[0] != NODE_INDEX["input"]:
        return False
    preds: list[list[int]] = [[] for _ in range(n)]
    for s, d in edges.tolist():
        preds[d].append(s)
    if preds[0]:
        return False
    conv, bias = NODE_INDEX["conv"], NODE_INDEX["bias"]
    norms = (NODE_INDEX["bn"], NODE_INDEX["ln"])
    for k, t in enumerate(types.tolist()):
        if t == bias and (len(preds[k]) != 1 or types[preds[k][0]] != conv):
            return False
        if t in norms and len(preds[k]) != 1:
            return False
    w, b = names[-2] or "", names[-1] or ""
    return (types[-2] == conv and types[-1] == bias and w.startswith("classifier.")
            and b.startswith("classifier.") and w.endswith(".weight") and b.endswith(".bias"))


def virtual_consistent(stored: StoredGraph) -> bool:
    """Whether the stored virtual edges (2..250) are the shortest-path lengths of the stored
    1-hop edges (what our GHNs recompute from the edges). Checked as Bellman's equation,
    which on a DAG only the true distances satisfy: each row is one plus the element-wise
    minimum of its 1-hop successors' rows (0 on the diagonal, lengths over 250 absent)."""
    n = stored.num_nodes
    far = np.int32(VE_CUTOFF + 1)
    d = np.where(stored.adj > 0, stored.adj.astype(np.int32), far)
    np.fill_diagonal(d, 0)
    src, dst = np.nonzero(stored.adj == 1)  # row-major: grouped by source
    want = np.full((n, n), far, np.int32)
    if len(src):
        starts = np.flatnonzero(np.r_[True, src[1:] != src[:-1]])
        best = np.minimum.reduceat(d[dst], starts, axis=0) + 1
        want[src[starts]] = np.minimum(best, far)
    np.fill_diagonal(want, 0)
    return bool(np.array_equal(want, d))


def _signatures(types, names, edges) -> list[int]:
    """A hash per node of its type, name and (recursively) its ancestors: equal multisets
    mean the same DAG up to node order (nodes are numbered topologically)."""
    preds: list[list[int]] = [[] for _ in range(len(types))]
    for s, d in edges.tolist():
        preds[d].append(s)
    sig: list[int] = []
    for k, (t, n) in enumerate(zip(types, names)):
        sig.append(hash((int(t), n, tuple(sorted(sig[p] for p in preds[k])))))
    return sig


def compare(stored: StoredGraph, derived: Graph) -> dict:
    """How the stored graph compares with the derived one: ``same_nodes`` (the same multiset
    of (type, name) rows, whatever the order), ``same_graph`` (the same DAG up to node
    order), ``same_order`` (identical, node for node) and, where nodes differ, the
    differences (type counts, names on one side only; a few of each)."""
    edges = stored.edges()
    if (np.array_equal(stored.types, derived.node_types) and stored.names == derived.param_names
            and np.array_equal(edges, derived.edges)):
        return {"same_nodes": True, "same_graph": True, "same_order": True}
    rows = Counter(zip(stored.types.tolist(), stored.names))
    ours = Counter(zip(derived.node_types.tolist(), derived.param_names))
    out = {"same_nodes": rows == ours, "same_graph": False, "same_order": False}
    if out["same_nodes"]:
        same = (len(edges) == derived.num_edges
                and Counter(_signatures(stored.types.tolist(), stored.names, edges))
                == Counter(_signatures(derived.node_types.tolist(), derived.param_names,
                                       derived.edges)))
        out["same_graph"] = bool(same)
    else:
        st, dt = Counter(stored.types.tolist()), Counter(derived.node_types.tolist())
        out["type_counts"] = {NODE_TYPES[t]: [st.get(t, 0), dt.get(t, 0)]
                              for t in sorted(set(st) | set(dt)) if st.get(t, 0) != dt.get(t, 0)}
        sn = {n for n in stored.names if n}
        dn = {n for n in derived.param_names if n}
        out["names_only_stored"] = sorted(sn - dn)[:8]
        out["names_only_derived"] = sorted(dn - sn)[:8]
    return out
