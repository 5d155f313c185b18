"""The computational graph a graph hypernetwork reads.

Nodes are operations in topological (forward-execution) order; each knows its node type
(index into :data:`~deepnetsbench.space.primitives.NODE_TYPES`), the model parameter it
stands for and that parameter's shape (pools: ``(1, 1, k, k)``, as officially). Edges follow
the data flow. Virtual edges (GHN-2) connect nodes up to ``s_max`` hops apart. The node
semantics are the official DeepNets-1M ones (see :mod:`deepnetsbench.graph.trace`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import NamedTuple

import numpy as np

from deepnetsbench.space.primitives import NODE_TYPES


@dataclass
class Graph:
    node_types: np.ndarray  # int16 [N]
    param_names: list[str | None]
    shapes: np.ndarray  # int32 [N, 4], 0-padded; pools (1, 1, k, k), other parameter-free 0
    edges: np.ndarray  # int32 [E, 2] (src, dst) with src < dst, sorted by (dst, src)
    num_params: int = 0
    _virtual: dict = field(default_factory=dict, repr=False, compare=False)

    @property
    def num_nodes(self) -> int:
        return len(self.node_types)

    @property
    def num_edges(self) -> int:
        return len(self.edges)

    def type_names(self) -> list[str]:
        return [NODE_TYPES[t] for t in self.node_types]

    def param_shape(self, i: int) -> tuple[int, ...]:
        return tuple(int(d) for d in self.shapes[i] if d > 0)

    def adjacency(self) -> np.ndarray:
        """Dense 0/1 adjacency (the ppuda layout): ``adj[src, dst] = 1``."""
        adj = np.zeros((self.num_nodes, self.num_nodes), dtype=np.uint8)
        if len(self.edges):
            adj[self.edges[:, 0], self.edges[:, 1]] = 1
        return adj

    def virtual_edges(self, s_max: int = 50) -> np.ndarray:
        """``(src, dst, hops)`` for every pair whose shortest directed path has
        ``1 < hops <= s_max``, sorted by ``(dst, src)``; GHN-2 weights their messages by
        ``1 / hops``. Cached per ``s_max``.

        A dynamic programme over the DAG: a node's distance row is one plus the element-wise
        minimum of its children's rows; all nodes of one reverse level are done at once
        (``minimum.reduceat`` over uint8 rows), ~20-50x faster than a search per node, which
        matters when every GHN training step brings eight new graphs."""
        if s_max in self._virtual:
            return self._virtual[s_max]
        n = self.num_nodes
        out = np.zeros((0, 3), dtype=np.int32)
        if len(self.edges) and n and s_max > 1:
            if s_max > 254:
                raise ValueError(f"s_max must be at most 254, got {s_max}")
            src = self.edges[:, 0].astype(np.int64)
            dst = self.edges[:, 1].astype(np.int64)
            far = np.uint8(255)
            dist = np.full((n, n), far, dtype=np.uint8)
            dist[np.arange(n), np.arange(n)] = 0
            depth = longest_path_levels(n, dst, src, descending=True)  # longest path to a sink
            srt = np.lexsort((src, depth[src]))  # edges grouped by parent, parents by depth
            src, dst = src[srt], dst[srt]
            bounds = np.searchsorted(depth[src], np.arange(1, int(depth.max()) + 2))
            for lo, hi in zip(bounds[:-1].tolist(), bounds[1:].tolist()):
                if lo == hi:
                    continue
                part = src[lo:hi]  # sorted: parents are runs
                starts = np.flatnonzero(np.concatenate(([True], part[1:] != part[:-1])))
                parents = part[starts]
                best = np.minimum.reduceat(dist[dst[lo:hi]], starts, axis=0)
                best = np.where(best < s_max, best + 1, far).astype(np.uint8)
                dist[parents] = np.minimum(dist[parents], best)
            r, c = np.nonzero((dist >= 2) & (dist <= s_max))
            out = np.stack([r, c, dist[r, c]], axis=1).astype(np.int32)
            out = out[np.lexsort((out[:, 0], out[:, 1]))]
        self._virtual[s_max] = out
        return out

    def dead_nodes(self) -> np.ndarray:
        """Nodes from which the output (the last node) cannot be reached."""
        n = self.num_nodes
        alive = np.zeros(n, dtype=bool)
        if n:
            alive[n - 1] = True
        # edges are sorted by destination; walk them from the end (reverse topological)
        for s, d in self.edges[::-1]:
            if alive[d]:
                alive[s] = True
        return np.flatnonzero(~alive)

    def equals(self, other: Graph) -> bool:
        return (
            np.array_equal(self.node_types, other.node_types)
            and self.param_names == other.param_names
            and np.array_equal(self.shapes, other.shapes)
            and np.array_equal(self.edges, other.edges)
            and self.num_params == other.num_params
        )

    def summary(self) -> dict:
        counts = np.bincount(self.node_types, minlength=len(NODE_TYPES))
        return {
            "num_nodes": self.num_nodes,
            "num_edges": self.num_edges,
            "num_params": self.num_params,
            "node_type_counts": {NODE_TYPES[i]: int(c) for i, c in enumerate(counts) if c},
        }


def longest_path_levels(n: int, src: np.ndarray, dst: np.ndarray,
                        descending: bool = False) -> np.ndarray:
    """Longest-path depth of each node for edges ``src -> dst``.

    Node numbers are a topological order of the forward graph (``descending=False``) or of
    the reversed graph (``descending=True``); processing edges by their source in that order
    sees every source's final depth. A plain loop: a few thousand edges take ~1 ms."""
    level = [0] * n
    key = -src if descending else src
    for i in np.argsort(key, kind="stable").tolist():
        s, d = int(src[i]), int(dst[i])
        if level[s] + 1 > level[d]:
            level[d] = level[s] + 1
    return np.asarray(level, dtype=np.int64)


def make_graph(types: list[int], names: list[str | None], shapes: list[tuple[int, ...]],
               edges: set[tuple[int, int]] | list[tuple[int, int]], num_params: int) -> Graph:
    """Assemble a :class:`Graph` in canonical form (edges sorted by destination)."""
    shape_arr = np.zeros((len(types), 4), dtype=np.int32)
    for i, shape in enumerate(shapes):
        if shape:
            dims = list(shape)
            if len(dims) > 4:  # fold trailing dims (rare: e.g. 5-D tables)
                dims = dims[:3] + [int(np.prod(dims[3:]))]
            shape_arr[i, : len(dims)] = dims
    edge_arr = np.asarray(sorted(edges, key=lambda e: (e[1], e[0])), dtype=np.int32).reshape(-1, 2)
    return Graph(np.asarray(types, dtype=np.int16), list(names), shape_arr, edge_arr,
                 int(num_params))


class Value(NamedTuple):
    """A tensor as the official graph filter sees it.

    ``nodes``: the graph nodes it comes from (its in-edges for a consumer). The official
    filter removes parameter-free functions pass by pass, and decides whether an Add (a Cat)
    is a ``sum`` (``concat``) node by counting its in-edges *during* its pass, when removed
    Adds (Cats) of the same pass still count as in-edges along with what they were rewired
    to, and in the Add pass every Cat still counts as one in-edge. ``adds``/``cats`` are
    those in-edge sets: usually equal to ``nodes``; an addition of a tensor to itself, or a
    concat of one tensor, differ and make the next one a node."""

    nodes: frozenset
    adds: frozenset
    cats: frozenset


def node_value(index: int) -> Value:
    s = frozenset([index])
    return Value(s, s, s)


def merged(values) -> Value:
    """What a transparent function (ReLU, view, a parameter-free Mul ...) passes on."""
    values = list(values)
    if len(values) == 1:
        return values[0]
    return Value(frozenset().union(*(v.nodes for v in values)),
                 frozenset().union(*(v.adds for v in values)),
                 frozenset().union(*(v.cats for v in values)))


class Joins:
    """The official keep rules for Add (``sum``) and Cat (``concat``): a node iff two or more
    in-edges in its pass; ``new_node(kind, preds) -> index`` makes the node."""

    def __init__(self, new_node):
        self.new_node = new_node
        self._removed = 0

    def _entity(self):
        self._removed -= 1  # removed Adds/Cats: negative ids, never graph nodes
        return self._removed

    def add(self, values) -> Value:
        v = merged(values)
        if len(v.adds) >= 2:
            return node_value(self.new_node("sum", v.nodes))
        return Value(v.nodes, v.adds | {self._entity()}, v.cats)

    def cat(self, values) -> Value:
        v = merged(values)
        if len(v.cats) >= 2:
            return node_value(self.new_node("concat", v.nodes))
        e = self._entity()
        return Value(v.nodes, frozenset([e]), v.cats | {e})
