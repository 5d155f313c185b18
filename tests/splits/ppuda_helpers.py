"""Helpers for the official-layout (ppuda) tests (a module of its own: conftest modules of
several test folders would shadow each other when imported by name)."""

from __future__ import annotations

import hashlib
import heapq
import json
from pathlib import Path

import numpy as np

from deepnetsbench.graph.graph import Graph, longest_path_levels

EVAL = ("val", "test", "wide", "deep", "dense", "bnfree")


def md5(path: Path) -> str:
    return hashlib.md5(Path(path).read_bytes()).hexdigest()


def generations_order(graph: Graph) -> Graph:
    """The same graph in another topological order: nodes by longest-path depth (networkx
    >= 2.6 sorts by generations), so cells interleave and the order is not cell-monotone."""
    n = graph.num_nodes
    depth = longest_path_levels(n, graph.edges[:, 0].astype(np.int64),
                                graph.edges[:, 1].astype(np.int64))
    preds = [[] for _ in range(n)]
    succ = [[] for _ in range(n)]
    for s, d in graph.edges.tolist():
        preds[d].append(s)
        succ[s].append(d)
    # the classifier stays last: it is last in every official order too
    key = [(int(depth[k]) if k < n - 2 else 10**9 + k, k) for k in range(n)]
    left = [len(p) for p in preds]
    heap = [key[k] for k in range(n) if not left[k]]
    heapq.heapify(heap)
    order = []
    while heap:
        _, k = heapq.heappop(heap)
        order.append(k)
        for d in succ[k]:
            left[d] -= 1
            if not left[d]:
                heapq.heappush(heap, key[d])
    new = {old: i for i, old in enumerate(order)}
    edges = sorted(((new[s], new[d]) for s, d in graph.edges.tolist()), key=lambda e: (e[1], e[0]))
    return Graph(graph.node_types[order], [graph.param_names[k] for k in order],
                 graph.shapes[order], np.asarray(edges, np.int32).reshape(-1, 2),
                 graph.num_params)


def write_published(path: Path, counts: dict[str, list[int]]) -> Path:
    path.write_text(json.dumps({"params": counts}))
    return path
