"""Every torchvision classification model gets a graph (traced on the meta device)."""

from collections import Counter

import pytest
import torch

from deepnetsbench.graph import graph_from_module, trace_graph
from deepnetsbench.space.primitives import NODE_INDEX
from deepnetsbench.splits.predefined import build_predefined, predefined_names, trace_predefined


@pytest.mark.parametrize("name", predefined_names())
def test_predefined_model_gets_a_graph(name):
    graph, size = trace_predefined(name, 10, 32)
    assert size >= 32
    assert graph.num_nodes > 5 and graph.num_edges >= graph.num_nodes - 1
    assert graph.node_types[0] == NODE_INDEX["input"]
    assert (graph.edges[:, 0] < graph.edges[:, 1]).all()
    named = sum(1 for n in graph.param_names if n)
    assert named > 0


def test_resnet50_parameter_count_matches_published():
    graph, _ = trace_predefined("resnet50", 10, 32)
    assert graph.num_params == 23_520_842


def test_official_typing_of_grouped_convs_and_squeeze_excitation():
    """Any grouped conv is sep_conv (ResNeXt's groups=32 too); torchvision's SE blocks are
    plain convs with biases (the official cse node is the DeepNets-1M op only)."""
    g, _ = trace_predefined("resnext50_32x4d", 10, 32)
    assert Counter(g.type_names())["sep_conv"] == 16  # one grouped 3x3 conv per bottleneck
    g, _ = trace_predefined("efficientnet_b0", 10, 32)
    counts = Counter(g.type_names())
    assert counts["cse"] == 0 and counts["glob_avg"] == 1 + 16  # head + one per SE block
    assert counts["sep_conv"] == 16  # depthwise convs


def test_vit_has_attention_nodes():
    model = build_predefined("vit_b_16", 10, 32)
    g = graph_from_module(model, 32)
    assert (g.node_types == NODE_INDEX["msa"]).sum() == 12  # one in-projection per block
    pos = [i for i, t in enumerate(g.type_names()) if t == "pos_enc"]
    assert len(pos) == 2  # class token and position embedding: source nodes
    assert all(i not in g.edges[:, 1] for i in pos)


def test_real_and_meta_tracing_agree():
    import torchvision

    model = torchvision.models.resnet18(num_classes=10)
    g_real = trace_graph(model, 32)
    with torch.device("meta"):
        meta = torchvision.models.resnet18(num_classes=10)
    g_meta = trace_graph(meta, 32, example=torch.randn(1, 3, 32, 32, device="meta"))
    assert g_real.equals(g_meta)
