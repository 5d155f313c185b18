"""When two specs are the same architecture.

Two specs are the same architecture when they build the same live computation: isomorphic
graphs (node types, parameter shapes and 1-hop edges; parameter names and node order
ignored) at C = 32, fc_dim = 256, 10 classes, 32 px. That is everything a graph hypernetwork
reads, and everything that decides what the trained network computes. So these are the same
architecture, although their :meth:`ArchSpec.key` differs:

* ViT nets that differ only in stem fields the ViT stem ignores (stem_type, stem_pool, ks);
* nets that differ only in ``norm`` but have no BN layer anyway;
* a step's two edges in the other order;
* nets that differ only in dead layers (ops of nodes that no output reads, preprocessing of
  cell inputs that no op reads). Dead layers add to the parameter count (officially counted,
  here too) but never run: they are unused tensors attached to the same network.

The graph at 224 px or at another width follows from the one at 32 px and C = 32 (the stem
and head rules depend only on fields the graph shows), so it adds nothing.

The identity is a hash of the graph that isomorphic graphs always share: each node gets a
forward and a backward signature (its label with the multiset of its predecessors' or
successors' signatures, i.e. the whole DAG unfolded above and below it), and the key is
``"<nodes>-<edges>-<digest>"``, the digest of the multisets of node signatures and of edges
between them. The sizes up front let :func:`identity_in` skip the hash for most candidates. Two different graphs could in
principle share it; then a TRAIN candidate would be left out needlessly, never an evaluation
architecture let in.
"""

from __future__ import annotations

import hashlib
from typing import TYPE_CHECKING

import numpy as np

from deepnetsbench.space.genotype import ArchSpec

if TYPE_CHECKING:
    from deepnetsbench.graph.graph import Graph

#: The width and classifier size at which identities are taken.
IDENTITY_C, IDENTITY_FC_DIM = 32, 256

_MASK = (1 << 64) - 1
_M1, _M2 = 0xBF58476D1CE4E5B9, 0x94D049BB133111EB  # splitmix64's finaliser constants
_GOLD = 0x9E3779B97F4A7C15


def _mix(x: int) -> int:
    """A 64-bit bijective mixer (splitmix64's finaliser) on Python ints."""
    x = ((x ^ (x >> 30)) * _M1) & _MASK
    x = ((x ^ (x >> 27)) * _M2) & _MASK
    return x ^ (x >> 31)


def _mix_np(x: np.ndarray) -> np.ndarray:
    """The same mixer on uint64 arrays (numpy wraps the products modulo 2**64)."""
    x = (x ^ (x >> np.uint64(30))) * np.uint64(_M1)
    x = (x ^ (x >> np.uint64(27))) * np.uint64(_M2)
    return x ^ (x >> np.uint64(31))


def _alive(graph: Graph) -> np.ndarray:
    """Which nodes reach the last one (the output); fast when all do, as in derived graphs:
    in a DAG whose only sink is the last node, every node reaches it."""
    n = graph.num_nodes
    src = np.asarray(graph.edges, dtype=np.int64).reshape(-1, 2)[:, 0]
    out_degree = np.bincount(src, minlength=n)
    if n == 0 or (out_degree[:-1] > 0).all():
        return np.ones(n, dtype=bool)
    alive = np.zeros(n, dtype=bool)
    alive[n - 1] = True
    edges = np.asarray(graph.edges, dtype=np.int64).reshape(-1, 2)
    for s, d in edges[np.argsort(-edges[:, 1], kind="stable")].tolist():  # reverse topological
        if alive[d]:
            alive[s] = True
    return alive


def _live_size(graph: Graph, alive: np.ndarray) -> tuple[int, int]:
    edges = np.asarray(graph.edges, dtype=np.int64).reshape(-1, 2)
    if alive.all():
        return graph.num_nodes, len(edges)
    return int(alive.sum()), int((alive[edges[:, 0]] & alive[edges[:, 1]]).sum())


def graph_identity(graph: Graph) -> str:
    """Identity of a graph (its node types, shapes and edges; node numbers must be a
    topological order): ``"<live nodes>-<live edges>-<digest>"``. Nodes from which the last
    node (the output) cannot be reached are left out: they take no part in the computation."""
    live = _alive(graph)
    n_live, e_live = _live_size(graph, live)
    types = np.asarray(graph.node_types, dtype=np.uint64)
    n = len(types)
    label = _mix_np(types + np.uint64(1))
    for column in np.asarray(graph.shapes, dtype=np.int64).reshape(n, -1).T:
        label = _mix_np(label ^ (column.astype(np.uint64) + np.uint64(_GOLD)))
    label = label.tolist()
    pairs = np.asarray(graph.edges, dtype=np.int64).reshape(-1, 2)
    if not live.all():
        pairs = pairs[live[pairs[:, 0]] & live[pairs[:, 1]]]
    succs: list[list[int]] = [[] for _ in range(n)]
    for s, d in pairs.tolist():
        succs[s].append(d)
    alive = live.tolist()

    # backward and forward signatures: a node's label with the sum (a multiset hash) of its
    # successors' or predecessors' mixed signatures
    bwd = [0] * n
    for v in range(n - 1, -1, -1):
        if alive[v]:
            bwd[v] = _mix((label[v] * 3 + sum(bwd[w] for w in succs[v])) & _MASK)
    fwd = [0] * n
    acc_in = [0] * n
    for v in range(n):
        if alive[v]:
            f = fwd[v] = _mix((label[v] + acc_in[v]) & _MASK)
            for w in succs[v]:
                acc_in[w] += f
    sig = _mix_np(np.array(fwd, dtype=np.uint64) ^ _mix_np(np.array(bwd, dtype=np.uint64)
                                                            + np.uint64(_GOLD)))
    edge_sig = _mix_np(sig[pairs[:, 0]] ^ _mix_np(sig[pairs[:, 1]] + np.uint64(_M1)))
    digest = hashlib.blake2b(digest_size=16)
    digest.update(np.sort(sig[live]).tobytes())
    digest.update(np.sort(edge_sig).tobytes())
    return f"{n_live}-{e_live}-{digest.hexdigest()}"


_SIZES: list = [None, frozenset()]  # [the last exclude set seen, its (nodes, edges) sizes]


def _sizes_of(keys) -> frozenset:
    if _SIZES[0] is not keys:
        sizes = set()
        for key in keys:
            nodes, _, rest = key.partition("-")
            edges = rest.partition("-")[0]
            sizes.add((int(nodes), int(edges)) if nodes.isdigit() and edges.isdigit() else None)
        _SIZES[:] = [keys, frozenset(sizes)]
    return _SIZES[1]


def identity_in(graph: Graph, keys) -> bool:
    """Whether ``graph_identity(graph) in keys``, hashing only when the graph's live size
    matches one of the keys' (most TRAIN candidates differ from all 1,300 eval nets in size)."""
    if not keys:
        return False
    sizes = _sizes_of(keys)
    if None not in sizes and _live_size(graph, _alive(graph)) not in sizes:
        return False
    return graph_identity(graph) in keys


def identity_graph(spec: ArchSpec) -> Graph:
    """The graph identities are taken on: ``spec`` at C = 32, fc_dim = 256, 10 classes, 32 px."""
    from deepnetsbench.graph.derive import graph_from_spec  # graph imports space

    args = spec.args
    if (args.C, args.fc_dim) != (IDENTITY_C, IDENTITY_FC_DIM):
        spec = spec.with_args(C=IDENTITY_C, fc_dim=IDENTITY_FC_DIM)
    return graph_from_spec(spec, 10, 32)


def arch_identity(spec: ArchSpec) -> str:
    """Width-free identity of the network ``spec`` builds (see the module docstring)."""
    return graph_identity(identity_graph(spec))
