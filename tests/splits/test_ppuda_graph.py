"""The stored-graph checks: virtual-edge consistency, the §7 alignment test, the comparison
with the derived graph, and decoding errors."""

import numpy as np
import pytest
from ppuda_helpers import generations_order

from deepnetsbench.errors import BenchError
from deepnetsbench.graph.derive import graph_from_spec
from deepnetsbench.space.primitives import NODE_INDEX
from deepnetsbench.splits.ppuda import StoredGraph, compare, is_aligned, read_stored
from deepnetsbench.splits.ppuda_export import official_adjacency
from deepnetsbench.splits.ppuda_meta import MetaError, Tables


@pytest.fixture(scope="module")
def graph(eval_specs):
    return graph_from_spec(eval_specs["dense"][0].with_args(C=32), 10, 32)


def _stored(g, adj=None):
    return StoredGraph(g.node_types.copy(), list(g.param_names), np.zeros(g.num_nodes, np.int32),
                       official_adjacency(g) if adj is None else adj)


def test_virtual_edges_are_checked_against_the_edges(graph):
    from deepnetsbench.splits.ppuda import virtual_consistent

    adj = official_adjacency(graph)
    assert virtual_consistent(_stored(graph, adj))
    assert adj.max() > 2
    far = np.argwhere(adj > 2)[0]
    for value in (adj[tuple(far)] - 1, adj[tuple(far)] + 1, 0):
        bad = adj.copy()
        bad[tuple(far)] = value
        assert not virtual_consistent(_stored(graph, bad)), value
    none = np.argwhere((adj == 0) & np.triu(np.ones_like(adj, bool), 1))[0]
    bad = adj.copy()
    bad[tuple(none)] = 7  # a virtual edge where no path exists
    assert not virtual_consistent(_stored(graph, bad))


def test_alignment_test_catches_moved_rows(graph):
    t, n, e = graph.node_types, graph.param_names, graph.edges
    assert is_aligned(t, n, e)
    swap = np.arange(graph.num_nodes)
    swap[[0, 1]] = [1, 0]  # input no longer first
    assert not is_aligned(t[swap], [n[k] for k in swap], e)
    for kind in ("bias", "bn"):
        k = int(np.flatnonzero(t == NODE_INDEX[kind])[0])
        add = int(np.flatnonzero(t == NODE_INDEX["sum"])[-1])  # two inputs
        swap = np.arange(graph.num_nodes)
        swap[[k, add]] = [add, k]
        assert not is_aligned(t[swap], [n[k] for k in swap], e), kind
    assert not is_aligned(t, n[:-2] + [n[-1], n[-2]], e)


def test_comparison_with_the_derived_graph(graph):
    assert compare(_stored(graph), graph) == {"same_nodes": True, "same_graph": True,
                                              "same_order": True}
    other = generations_order(graph)
    got = compare(_stored(other), graph)
    assert got["same_nodes"] and got["same_graph"] and not got["same_order"]
    names = list(graph.param_names)
    k = next(i for i, x in enumerate(names) if x and "_ops" in x)
    renamed = _stored(graph)
    renamed.names = names[:k] + [names[k] + "x"] + names[k + 1:]
    got = compare(renamed, graph)
    assert not got["same_nodes"] and got["names_only_stored"] == [names[k] + "x"]
    assert got["names_only_derived"] == [names[k]]
    retyped = _stored(graph)
    retyped.types[k] = NODE_INDEX["sep_conv"] if retyped.types[k] != NODE_INDEX["sep_conv"] \
        else NODE_INDEX["conv"]
    assert compare(retyped, graph)["type_counts"]
    rewired = _stored(graph, official_adjacency(graph))
    s, d = graph.edges[len(graph.edges) // 2]
    rewired.adj[s, d] = 0
    rewired.adj[0, d] = 1
    got = compare(rewired, graph)
    assert got["same_nodes"] and not got["same_graph"]


class _Group(dict):
    pass


def test_decoding_errors_are_one_line():
    tables = Tables.from_json({"primitives_ext": {"0": "input", "1": "conv"},
                               "unique_op_names": {"0": "input"}}, "test")
    rows = np.array([[0, 0, 0], [1, 0, 3]], np.uint16)
    adj = np.array([[0, 1], [0, 0]], np.uint8)
    with pytest.raises(MetaError, match=r"test\[2\] row 1: id 3 is not in the split's tables"):
        read_stored(_Group(adj=adj, nodes=rows), tables, "test[2]")
    with pytest.raises(BenchError, match="self-loops"):
        read_stored(_Group(adj=np.eye(2, dtype=np.uint8), nodes=rows[:, :]), tables, "t")
    with pytest.raises(BenchError, match="do not match"):
        read_stored(_Group(adj=adj[:1], nodes=rows), tables, "t")
    with pytest.raises(BenchError, match="has no nodes dataset"):
        read_stored(_Group(adj=adj), tables, "t")
