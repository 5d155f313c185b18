"""The derived graph (no torch) must equal the traced graph of the built model."""

import numpy as np
import pytest
import torch
from graph_golden import image_size, load, spec_from_official

from deepnetsbench.graph import count_params, graph_from_spec, trace_graph
from deepnetsbench.space import build_model
from deepnetsbench.space.layout import plan_network
from deepnetsbench.space.primitives import NODE_INDEX
from deepnetsbench.space.sampler import SPLIT_CONFIGS, sample_arch


@pytest.fixture(autouse=True)
def _single_thread(one_thread):
    yield


def _small(spec, i):
    """Small widths (8..20, even) keep the real forward pass cheap."""
    return spec.with_args(C=8 + 4 * (i % 4), fc_dim=16)


def _traced(spec, num_classes=10, size=32):
    model = build_model(spec, num_classes, size)
    return trace_graph(model, size, example=torch.randn(1, 3, size, size)), model


def _check(spec, num_classes=10, size=32, where=""):
    traced, model = _traced(spec, num_classes, size)
    derived = graph_from_spec(spec, num_classes, size)
    assert derived.equals(traced), f"{where}: derived and traced graphs differ"
    n = sum(p.numel() for p in model.parameters())
    assert derived.num_params == n == count_params(spec, num_classes, size), where
    return derived


def _random_specs(per_split: int, offset: int = 0):
    for split in sorted(SPLIT_CONFIGS):
        for i in range(offset, offset + per_split):
            yield f"{split}/{i}", _small(sample_arch(SPLIT_CONFIGS[split], i), i)


def test_traced_equals_derived_on_random_architectures():
    n = 0
    for where, spec in _random_specs(16):
        _check(spec, where=where)
        n += 1
    assert n >= 80


@pytest.mark.slow
def test_traced_equals_derived_on_hundreds_of_architectures():
    for where, spec in _random_specs(70, offset=16):
        _check(spec, where=where)


def test_traced_equals_derived_on_every_official_spec():
    nets = load("nets.json")
    if not nets:
        pytest.skip("tests/fixtures/ppuda/nets.json missing")
    n = 0
    for rec in nets:
        if rec["genotype"] == "resnet50":
            continue
        args = dict(rec["net_args"], genotype=rec["genotype"])
        spec = spec_from_official(args)
        _check(spec, 10, image_size(args), rec["id"])
        n += 1
    assert n >= 50


def test_traced_equals_derived_at_imagenet_size():
    for i, (where, spec) in enumerate(_random_specs(1)):
        _check(spec, 1000, 224, where)
        if i >= 5:
            break


def test_dead_parts_are_counted_but_absent():
    """Unread preprocessing and ops whose result no concat keeps are built (parameters)
    but not on the autograd path (no nodes), as officially."""
    found = 0
    for where, spec in _random_specs(12):
        plan = plan_network(spec)
        names = {n for n in graph_from_spec(spec).param_names if n}
        for cell in plan.cells:
            for j, op in enumerate(cell.ops):
                prefix = f"cells.{cell.index}._ops.{j}."
                if op.name not in ("none", "skip_connect", "max_pool_3x3", "avg_pool_3x3"):
                    assert any(n.startswith(prefix) for n in names) == op.live, where
                    found += not op.live
            for side, reads in enumerate(cell.reads):
                prefix = f"cells.{cell.index}.preprocess{side}."
                if getattr(cell, f"preprocess{side}") in ("relu_conv_bn", "factorized_reduce"):
                    assert any(n.startswith(prefix) for n in names) == (reads and cell.live)
                    found += not reads
        model = build_model(spec)
        assert count_params(spec) == sum(p.numel() for p in model.parameters())
    assert found > 0


def test_msa_and_cse_nodes_are_kept():
    found = {"msa": 0, "cse": 0}
    for where, spec in _random_specs(30):
        g = graph_from_spec(spec)
        live = [op.name for cell in plan_network(spec).cells for op in cell.ops if op.live]
        for op in found:
            assert (g.node_types == NODE_INDEX[op]).sum() == live.count(op), where
            found[op] += live.count(op)
    assert found["msa"] > 0 and found["cse"] > 0


def test_graph_is_a_dag_in_topological_order():
    spec = sample_arch(SPLIT_CONFIGS["deep"], 1)
    g = graph_from_spec(spec)
    assert (g.edges[:, 0] < g.edges[:, 1]).all()
    assert g.node_types[0] == NODE_INDEX["input"]
    assert g.type_names()[-2:] == ["conv", "bias"]
    last = len(plan_network(spec).classifier) - 1
    assert g.param_names[-2:] == [f"classifier.{3 * last}.weight", f"classifier.{3 * last}.bias"]
    assert len(g.dead_nodes()) == 0


def test_virtual_edges_hop_counts():
    g = graph_from_spec(sample_arch(SPLIT_CONFIGS["test"], 0))
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
        g = graph_from_spec(sample_arch(SPLIT_CONFIGS[split], i))
        for s_max in (2, 5, 50):
            assert g.virtual_edges(s_max).tolist() == [list(t) for t in _bfs_virtual_edges(g, s_max)]
