"""The derived graph (no torch) must equal the traced graph of the built model."""

import numpy as np
import pytest
import torch

from deepnetsbench.graph import graph_from_module, graph_from_spec
from deepnetsbench.space import build_model
from deepnetsbench.space.primitives import NODE_INDEX
from deepnetsbench.space.sampler import split_item


def _traced(spec, num_classes=10, image_size=32):
    with torch.device("meta"):
        model = build_model(spec, num_classes, image_size)
    example = torch.randn(1, 3, image_size, image_size, device="meta")
    return graph_from_module(model, image_size, example=example), model


@pytest.mark.parametrize("split", ["train", "val", "test", "wide", "deep", "dense", "bnfree"])
def test_traced_equals_derived(split):
    n = 80 if split in ("train", "test") else 50  # 410 architectures in all
    for i in range(n):
        spec = split_item(split, i)
        traced, model = _traced(spec)
        derived = graph_from_spec(spec)
        assert derived.equals(traced), f"{split}/{i} differs"
        assert derived.num_params == sum(p.numel() for p in model.parameters())


def test_traced_equals_derived_at_imagenet_size():
    for i in range(6):
        spec = split_item("test", i)
        traced, _ = _traced(spec, 1000, 224)
        assert graph_from_spec(spec, 1000, 224).equals(traced)


def test_msa_and_cse_nodes_are_kept():
    found = {"msa": 0, "cse": 0}
    for i in range(80):
        spec = split_item("train", i)
        ops = spec.genotype.ops()
        g, _ = _traced(spec)
        for op in found:
            if op in ops:
                assert (g.node_types == NODE_INDEX[op]).any(), f"{op} dropped in train/{i}"
                found[op] += 1
    assert found["msa"] > 0 and found["cse"] > 0


def test_every_parameter_has_a_node():
    spec = split_item("test", 4)
    g, model = _traced(spec)
    names = {n for n in g.param_names if n}
    for name, _p in model.named_parameters():
        if name.endswith(".bias") and name.replace(".bias", ".weight") in names:
            continue
        assert name in names, name


def test_graph_is_a_dag_in_topological_order():
    g = graph_from_spec(split_item("deep", 1))
    assert (g.edges[:, 0] < g.edges[:, 1]).all()
    assert g.node_types[0] == NODE_INDEX["input"]
    assert len(g.dead_nodes()) == 0


def test_virtual_edges_hop_counts():
    g = graph_from_spec(split_item("test", 0))
    ve = g.virtual_edges(s_max=50)
    assert (ve[:, 2] > 1).all() and (ve[:, 2] <= 50).all()
    adj = g.adjacency().astype(bool)
    # a two-hop pair: src -> mid -> dst with no direct edge
    src, dst, hops = ve[np.argmin(ve[:, 2])]
    assert hops == 2 and not adj[src, dst]
    assert (adj[src] & adj[:, dst]).any()
    assert len(g.virtual_edges(s_max=2)) == int((ve[:, 2] == 2).sum())


def _bfs_virtual_edges(g, s_max):
    """Reference: breadth-first search from every node (slow, obviously right)."""
    from collections import deque

    succ = [[] for _ in range(g.num_nodes)]
    for s, d in g.edges.tolist():
        succ[s].append(d)
    out = []
    for src in range(g.num_nodes):
        dist, queue = {src: 0}, deque([src])
        while queue:
            u = queue.popleft()
            if dist[u] < s_max:
                for v in succ[u]:
                    if v not in dist:
                        dist[v] = dist[u] + 1
                        queue.append(v)
        out += [(src, v, d) for v, d in dist.items() if d > 1]
    return sorted(out, key=lambda t: (t[1], t[0]))


@pytest.mark.parametrize("split", ["test", "deep", "dense"])
def test_virtual_edges_match_breadth_first_search(split):
    for i in range(3):
        g = graph_from_spec(split_item(split, i))
        for s_max in (2, 5, 50):
            assert g.virtual_edges(s_max).tolist() == [list(t) for t in _bfs_virtual_edges(g, s_max)]
