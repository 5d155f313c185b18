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
successors' signatures, i.e. the whole DAG unfolded above and below it), and the key digests
the multisets of node signatures and of edges between them. Two different graphs could in
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


def graph_identity(graph: Graph) -> str:
    """Identity of a graph (its node types, shapes and edges; node numbers must be a
    topological order). Nodes from which the last node (the output) cannot be reached are
    left out: they take no part in the computation."""
    types = np.asarray(graph.node_types, dtype=np.uint64)
    n = len(types)
    label = _mix_np(types + np.uint64(1))
    for column in np.asarray(graph.shapes, dtype=np.int64).reshape(n, -1).T:
        label = _mix_np(label ^ (column.astype(np.uint64) + np.uint64(_GOLD)))
    label = label.tolist()
    pairs = np.asarray(graph.edges, dtype=np.int64).reshape(-1, 2)
    succs: list[list[int]] = [[] for _ in range(n)]
    for s, d in pairs.tolist():
        succs[s].append(d)

    # backward signatures, and which nodes reach the output
    alive = [False] * n
    bwd = [0] * n
    for v in range(n - 1, -1, -1):
        if v == n - 1:
            alive[v], acc = True, 0
        else:
            acc, reach = 0, False
            for w in succs[v]:
                if alive[w]:
                    acc += bwd[w]
                    reach = True
            if not reach:
                continue
            alive[v] = True
        bwd[v] = _mix((label[v] * 3 + acc) & _MASK)
    # forward signatures (the sum of mixed values is a multiset hash)
    fwd = [0] * n
    acc_in = [0] * n
    for v in range(n):
        if alive[v]:
            f = fwd[v] = _mix((label[v] + acc_in[v]) & _MASK)
            for w in succs[v]:
                acc_in[w] += f
    keep = np.flatnonzero(np.array(alive, dtype=bool))
    sig = _mix_np(np.array(fwd, dtype=np.uint64) ^ _mix_np(np.array(bwd, dtype=np.uint64)
                                                            + np.uint64(_GOLD)))
    live = np.array(alive, dtype=bool)
    if len(pairs):
        pairs = pairs[live[pairs[:, 0]] & live[pairs[:, 1]]]
    edge_sig = _mix_np(sig[pairs[:, 0]] ^ _mix_np(sig[pairs[:, 1]] + np.uint64(_M1)))
    digest = hashlib.blake2b(digest_size=16)
    digest.update(np.array([len(keep), len(pairs)], dtype=np.uint64).tobytes())
    digest.update(np.sort(sig[keep]).tobytes())
    digest.update(np.sort(edge_sig).tobytes())
    return digest.hexdigest()


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
