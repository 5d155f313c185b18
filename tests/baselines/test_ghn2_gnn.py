"""The wavefront GNN equals the released GHN-2's node-by-node sweeps; virtual edges are
computed right."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch
import torchvision

from baselines.ghn2.batch import GraphBatch, virtual_edges
from baselines.ghn2.gnn import GatedGNN
from deepnetsbench.graph import graph_from_module, graph_from_spec
from deepnetsbench.space import SPLIT_CONFIGS, build_model, sample_arch


def reference_gnn(gnn: GatedGNN, x: torch.Tensor, graphs, s_max: int) -> torch.Tensor:
    """The released GHN-2 sweeps, literally: node by node in topological order, then in
    reverse; ``m_v = sum_{1-hop} MLP(h_u) + [ve] sum_{hops <= s_max} MLP_ve(h_u) / hops``
    with the 1-hop edges in both sums; MLPs applied to the neighbours' current states."""
    out, off = [], 0
    for g in graphs:
        n = g.num_nodes
        h = [x[off + i] for i in range(n)]
        preds = {i: [] for i in range(n)}
        succs = {i: [] for i in range(n)}
        for s, d in g.edges.tolist():
            preds[d].append((s, 1))
            succs[s].append((d, 1))
        if gnn.ve:
            for s, d, hops in virtual_edges(g, s_max).tolist():
                preds[d].append((s, hops))
                succs[s].append((d, hops))

        for order, neigh in ((range(n), preds), (range(n - 1, -1, -1), succs)):
            for v in order:
                m = torch.zeros(x.shape[1])
                for u, hops in neigh[v]:
                    if hops == 1:
                        m = m + gnn.mlp(h[u])
                    if gnn.ve:
                        m = m + gnn.mlp_ve(h[u]) / hops
                h[v] = gnn.gru(m[None], h[v][None])[0]
        out.append(torch.stack(h))
        off += n
    return torch.cat(out)


def graphs_for_test():
    specs = [sample_arch(SPLIT_CONFIGS["train"], 1), sample_arch(SPLIT_CONFIGS["train"], 2)]
    return [graph_from_module(build_model(s), 32) for s in specs]


@pytest.mark.parametrize("virtual", [True, False])
def test_wavefront_equals_node_by_node(virtual):
    torch.manual_seed(0)
    graphs = graphs_for_test()
    gnn = GatedGNN(8, ve=virtual)
    n = sum(g.num_nodes for g in graphs)
    x = torch.randn(n, 8)
    batch = GraphBatch(graphs, s_max=50, virtual=virtual)
    with torch.no_grad():
        fast = gnn(x, batch)
        slow = reference_gnn(gnn, x, graphs, 50)
    torch.testing.assert_close(fast, slow, rtol=1e-4, atol=1e-5)


def test_virtual_edges_change_the_states():
    torch.manual_seed(0)
    graphs = graphs_for_test()
    gnn = GatedGNN(8, ve=True)
    x = torch.randn(sum(g.num_nodes for g in graphs), 8)
    with torch.no_grad():
        with_ve = gnn(x, GraphBatch(graphs, s_max=50, virtual=True))
        without = gnn(x, GraphBatch(graphs, s_max=50, virtual=False))
    assert GraphBatch(graphs, 50, True).num_virtual > 0
    assert not torch.allclose(with_ve, without)


def test_fast_virtual_edges_match_the_graph_code():
    graphs = [graph_from_spec(sample_arch(SPLIT_CONFIGS[s], i))
              for s in ("train", "deep", "dense") for i in range(3)]
    graphs.append(graph_from_module(torchvision.models.squeezenet1_0(num_classes=10), 32))
    for g in graphs:
        for s_max in (2, 5, 50):
            a = copy.deepcopy(g)
            a._virtual = {}
            b = copy.deepcopy(g)
            b._virtual = {}
            assert np.array_equal(virtual_edges(a, s_max), b.virtual_edges(s_max))


def test_levels_respect_dependencies():
    graphs = graphs_for_test()
    batch = GraphBatch(graphs, 50, True)
    for sweep, reverse in ((batch.forward_sweep, False), (batch.backward_sweep, True)):
        level = np.empty(batch.num_nodes, dtype=np.int64)
        for lv, (s, e) in enumerate(sweep.bounds):
            level[sweep.order[s:e].numpy()] = lv
        for g, off in zip(graphs, batch.offsets):
            src, dst = g.edges[:, 0] + off, g.edges[:, 1] + off
            if reverse:
                src, dst = dst, src
            assert (level[src] < level[dst]).all()
