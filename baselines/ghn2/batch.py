"""Several computational graphs packed for wavefront message passing.

GHN-2 updates the nodes of a DAG one by one in topological order (then in reverse order),
each from the *already updated* states of its predecessors. All nodes at the same depth
(longest path from a source) depend only on shallower nodes, so updating them together
gives exactly the node-by-node result; the depth is taken over the whole meta-batch, so
eight graphs cost as many GRU calls as the deepest of them, not as their total size.

For each sweep the nodes are renumbered by depth (each level becomes a contiguous slice)
and every level gets a padded table of its incoming messages: rows into a message buffer
laid out ``[2 * position + kind]`` (kind 0: direct edge, kind 1: virtual edge) and weights
(1 for direct edges, ``1 / hops`` for virtual ones, 0 for padding); what each kind carries
is :mod:`baselines.ghn2.gnn`'s business. Everything here is numpy at build time, then
moved to the device once.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from deepnetsbench.graph.graph import Graph, longest_path_levels

__all__ = ["GraphBatch", "Sweep", "virtual_edges"]


def virtual_edges(graph: Graph, s_max: int = 50) -> np.ndarray:
    """``(src, dst, hops)`` virtual edges of ``graph`` (cached on it):
    :meth:`Graph.virtual_edges`."""
    return graph.virtual_edges(s_max)


_levels = longest_path_levels


@dataclass
class Sweep:
    """One pass over the nodes of a batch in dependency order.

    ``order[p]`` is the node at position ``p``; ``bounds[l]`` the slice of level ``l``;
    ``index[l]`` ``[n_l, K_l]`` rows of the message buffer feeding each node of the level
    and ``weight[l]`` ``[n_l, 1, K_l]`` their weights (``None`` where a level has no inputs).
    """

    order: torch.Tensor
    position: torch.Tensor  # inverse of order: node -> position
    bounds: list[tuple[int, int]]
    index: list[torch.Tensor | None]
    weight: list[torch.Tensor | None]

    @property
    def num_levels(self) -> int:
        return len(self.bounds)



def _build_sweep(n: int, src: np.ndarray, dst: np.ndarray, vsrc: np.ndarray,
                 vdst: np.ndarray, vhops: np.ndarray, descending: bool,
                 device: torch.device) -> Sweep:
    """Messages flow ``src -> dst`` (direct) and ``vsrc -> vdst`` (virtual, 1/hops)."""
    level = _levels(n, src, dst, descending)
    order = np.argsort(level, kind="stable")
    position = np.empty(n, dtype=np.int64)
    position[order] = np.arange(n)
    counts = np.bincount(level, minlength=int(level.max()) + 1 if n else 0)
    ends = np.cumsum(counts)
    starts = ends - counts

    # every incoming message as (receiver position, buffer row, weight)
    recv = np.concatenate([position[dst], position[vdst]])
    rows = np.concatenate([2 * position[src], 2 * position[vsrc] + 1])
    wts = np.concatenate([np.ones(len(src), np.float32),
                          (1.0 / np.maximum(vhops, 1)).astype(np.float32)])
    srt = np.argsort(recv, kind="stable")
    recv, rows, wts = recv[srt], rows[srt], wts[srt]
    per_node = np.bincount(recv, minlength=n)
    first = np.cumsum(per_node) - per_node
    rank = np.arange(len(recv)) - first[recv]

    # one padded [n_l, K_l] table per level, all cut from two flat arrays
    num_levels = len(counts)
    k = np.zeros(num_levels, dtype=np.int64)
    nonempty = counts > 0
    if n:
        k[nonempty] = np.maximum.reduceat(per_node, starts[nonempty])
    sizes = counts * k
    block_start = np.cumsum(sizes) - sizes
    lv = level[order][recv]  # level of each receiver
    flat_pos = block_start[lv] + (recv - starts[lv]) * k[lv] + rank
    idx = np.zeros(int(sizes.sum()), dtype=np.int64)
    w = np.zeros(int(sizes.sum()), dtype=np.float32)
    idx[flat_pos] = rows
    w[flat_pos] = wts
    idx_t = torch.from_numpy(idx).to(device).split(sizes.tolist())
    w_t = torch.from_numpy(w).to(device).split(sizes.tolist())
    bounds, index, weight = [], [], []
    for lvl, (s, e, kk) in enumerate(zip(starts.tolist(), ends.tolist(), k.tolist())):
        bounds.append((s, e))
        if kk == 0:
            index.append(None)
            weight.append(None)
        else:
            index.append(idx_t[lvl].view(e - s, kk))
            weight.append(w_t[lvl].view(e - s, 1, kk))
    return Sweep(torch.from_numpy(order).to(device), torch.from_numpy(position).to(device),
                 bounds, index, weight)


class GraphBatch:
    """Graphs concatenated into one disjoint DAG, with both sweeps prepared.

    ``virtual``: add GHN-2's virtual-edge messages (kind 1, weight ``1 / hops``): over every
    pair at most ``s_max`` hops apart, the direct edges included (``hops = 1``), as in the
    released model; without them (GHN-1) messages follow the real edges only.
    ``num_virtual`` counts the pairs more than one hop apart. ``edges=False`` (the MLP
    hypernetwork, which ignores edges) skips the sweeps.
    """

    def __init__(self, graphs: list[Graph], s_max: int = 50, virtual: bool = True,
                 device: torch.device | str = "cpu", edges: bool = True):
        if not graphs:
            raise ValueError("GraphBatch needs at least one graph")
        device = torch.device(device)
        self.graphs = list(graphs)
        sizes = [g.num_nodes for g in graphs]
        self.offsets = np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64)
        n = int(self.offsets[-1])
        self.num_nodes = n
        types = np.concatenate([g.node_types for g in graphs]).astype(np.int64)
        self.node_types = torch.from_numpy(types).to(device)
        self.device = device
        self.num_edges = self.num_virtual = 0
        self.forward_sweep = self.backward_sweep = None
        if not edges:
            return
        src, dst, vsrc, vdst, vhops = [], [], [], [], []
        for g, off in zip(graphs, self.offsets[:-1]):
            if len(g.edges):
                src.append(g.edges[:, 0].astype(np.int64) + off)
                dst.append(g.edges[:, 1].astype(np.int64) + off)
            if virtual:
                # the virtual-edge sum of GHN-2 runs over the direct edges too (hops = 1)
                ve = virtual_edges(g, s_max) if s_max > 1 else np.zeros((0, 3), np.int64)
                self.num_virtual += len(ve)
                hop1 = np.concatenate([g.edges, np.ones((len(g.edges), 1), g.edges.dtype)], 1)
                for part in (hop1, ve):
                    if len(part):
                        vsrc.append(part[:, 0].astype(np.int64) + off)
                        vdst.append(part[:, 1].astype(np.int64) + off)
                        vhops.append(part[:, 2].astype(np.int64))
        cat = lambda xs: np.concatenate(xs) if xs else np.zeros(0, np.int64)  # noqa: E731
        src, dst, vsrc, vdst, vhops = map(cat, (src, dst, vsrc, vdst, vhops))
        self.num_edges = len(src)
        self.forward_sweep = _build_sweep(n, src, dst, vsrc, vdst, vhops, False, device)
        # backward sweep: messages from successors, in reverse dependency order
        self.backward_sweep = _build_sweep(n, dst, src, vdst, vsrc, vhops, True, device)

    def __len__(self) -> int:
        return len(self.graphs)

    def node_slice(self, i: int) -> slice:
        """Rows of graph ``i`` in node-state tensors (original node order)."""
        return slice(int(self.offsets[i]), int(self.offsets[i + 1]))
