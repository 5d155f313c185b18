"""Every torchvision classification model gets a graph (traced on the meta device)."""

import pytest
import torch

from deepnetsbench.graph import graph_from_module
from deepnetsbench.space.primitives import NODE_INDEX
from deepnetsbench.splits.predefined import predefined_names, trace_predefined


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
    assert abs(graph.num_params / 1e6 - 23.52) < 0.01


def test_vit_has_attention_nodes():
    import torchvision

    model = torchvision.models.vit_b_16(num_classes=10, image_size=32)
    g = graph_from_module(model, 32)
    assert (g.node_types == NODE_INDEX["msa"]).sum() >= 24
    assert (g.node_types == NODE_INDEX["pos_enc"]).any()


def test_real_and_meta_tracing_agree():
    import torchvision

    model = torchvision.models.resnet18(num_classes=10)
    g_real = graph_from_module(model, 32)
    with torch.device("meta"):
        meta = torchvision.models.resnet18(num_classes=10)
    g_meta = graph_from_module(meta, 32, example=torch.randn(1, 3, 32, 32, device="meta"))
    assert g_real.equals(g_meta)
