"""The computational graph a graph hypernetwork reads.

Nodes are operations in topological (forward-execution) order; each knows its node type
(index into :data:`~deepnetsbench.space.primitives.NODE_TYPES`), the model parameter it
stands for and that parameter's shape. Edges follow the data flow. Virtual edges (GHN-2)
connect nodes up to ``s_max`` hops apart.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

import numpy as np

from deepnetsbench.space.primitives import NODE_TYPES


@dataclass
class Graph:
    node_types: np.ndarray  # int16 [N]
    param_names: list[str | None]
    shapes: np.ndarray  # int32 [N, 4], 0-padded; all 0 for parameter-free nodes
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
        ``1 < hops <= s_max``; GHN-2 weights their messages by ``1 / hops``."""
        if s_max in self._virtual:
            return self._virtual[s_max]
        n = self.num_nodes
        succ: list[list[int]] = [[] for _ in range(n)]
        for s, d in self.edges:
            succ[s].append(int(d))
        out = []
        for src in range(n):
            dist = {src: 0}
            queue = deque([src])
            while queue:
                u = queue.popleft()
                du = dist[u]
                if du == s_max:
                    continue
                for v in succ[u]:
                    if v not in dist:
                        dist[v] = du + 1
                        queue.append(v)
            out.extend((src, v, d) for v, d in dist.items() if d > 1)
        arr = np.asarray(sorted(out, key=lambda t: (t[1], t[0])), dtype=np.int32).reshape(-1, 3)
        self._virtual[s_max] = arr
        return arr

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
