"""Node semantics of the official DeepNets-1M graphs, op by op (spec section 5.3), checked on
the derived graph and on the traced one (which must be equal)."""

from collections import Counter

import pytest
import torch
from torch import nn

from deepnetsbench.graph import count_params, graph_from_spec, trace_graph
from deepnetsbench.space import build_model
from deepnetsbench.space.genotype import ArchSpec, Genotype, NetArgs
from deepnetsbench.splits.predefined import DEEPNETS_VIT, build_predefined


@pytest.fixture(autouse=True)
def _single_thread(one_thread):
    yield


def _spec(normal, reduce=(("max_pool_3x3", 0), ("avg_pool_3x3", 1)), concat=None, **args):
    """Cells concatenate their last step (or ``concat``, if both cells have as many steps)."""
    concat = concat or (len(normal) // 2 + 1,)
    reduce_concat = concat if len(reduce) == len(normal) else (len(reduce) // 2 + 1,)
    base = dict(C=8, n_cells=4, fc_layers=1, fc_dim=16, C_mult=1)
    base.update(args)
    return ArchSpec(Genotype(tuple(normal), tuple(concat), tuple(reduce), tuple(reduce_concat)),
                    NetArgs(**base))


def _graph(spec, size=32):
    derived = graph_from_spec(spec, 10, size)
    traced = trace_graph(build_model(spec, 10, size), size)
    assert derived.equals(traced)
    return derived


def _nodes(g, prefix):
    """(type, name) of the nodes whose parameter names start with ``prefix``."""
    return [(t, n) for t, n in zip(g.type_names(), g.param_names) if n and n.startswith(prefix)]


def _preds(g, i):
    return sorted(g.edges[g.edges[:, 1] == i][:, 0].tolist())


def _succs(g, i):
    return sorted(g.edges[g.edges[:, 0] == i][:, 1].tolist())


def test_sep_and_dil_convs_type_their_pointwise_convs_conv():
    g = _graph(_spec([("sep_conv_3x3", 0), ("dil_conv_5x5", 1)]))
    assert _nodes(g, "cells.0._ops.0.") == [
        ("sep_conv", "cells.0._ops.0.op.1.weight"), ("conv", "cells.0._ops.0.op.2.weight"),
        ("bn", "cells.0._ops.0.op.3.weight"), ("sep_conv", "cells.0._ops.0.op.5.weight"),
        ("conv", "cells.0._ops.0.op.6.weight"), ("bn", "cells.0._ops.0.op.7.weight")]
    assert _nodes(g, "cells.0._ops.1.") == [
        ("dil_conv", "cells.0._ops.1.op.1.weight"), ("conv", "cells.0._ops.1.op.2.weight"),
        ("bn", "cells.0._ops.1.op.3.weight")]


def test_msa_is_twelve_nodes_with_a_parameter_free_msa_node():
    g = _graph(_spec([("msa", 1), ("none", 0)], C=16))
    i = g.param_names.index("cells.0._ops.0.ln1.weight")
    types = g.type_names()[i:i + 12]
    assert types == ["ln", "conv", "msa", "conv", "bias", "sum", "ln", "conv", "bias", "conv",
                     "bias", "sum"]
    x = _preds(g, i)
    assert g.param_names[i + 1].endswith("to_qkv.weight") and g.param_names[i + 2] is None
    assert _preds(g, i + 2) == [i + 1] and _succs(g, i + 2) == [i + 3]  # qkv -> msa -> to_out
    assert g.param_names[i + 3].endswith("to_out.0.weight")
    assert _preds(g, i + 5) == sorted(x + [i + 4])  # residual: input + to_out bias
    assert _preds(g, i + 11) == [i + 5, i + 10]  # residual around the feed-forward block
    assert g.param_names[i + 7].endswith("ff.net.0.weight")
    assert g.param_names[i + 9].endswith("ff.net.3.weight")


def test_cse_is_five_nodes_gating_its_input():
    g = _graph(_spec([("cse", 1), ("conv_1x1", 0)], C=16))
    i = g.param_names.index("cells.0._ops.0.fc1.weight")
    assert g.type_names()[i:i + 5] == ["conv", "bias", "conv", "bias", "cse"]
    x = _preds(g, i)
    assert _preds(g, i + 4) == sorted(x + [i + 3])  # gated tensor and fc2 bias
    assert g.param_shape(i) == (8, 16) and g.param_shape(i + 2) == (16, 8)
    assert Counter(g.type_names())["glob_avg"] == 1  # the squeeze is no glob_avg node


def test_vit_stem_has_a_source_pos_enc_node_summed_with_the_stem():
    g = _graph(_spec([("msa", 1), ("none", 0)], C=16, preproc=False))
    p = g.param_names.index("pos_enc.weight")
    s = g.param_names.index("stem0.weight")
    assert g.type_names()[p] == "pos_enc" and _preds(g, p) == []
    assert g.param_shape(p) == (1, 16, 11, 11) and g.param_shape(s) == (16, 3, 3, 3)
    (total,) = _succs(g, p)
    assert g.type_names()[total] == "sum" and _preds(g, total) == sorted([s, p])


def test_skip_connect_at_stride_two_is_conv_conv_concat_bn():
    g = _graph(_spec([("conv_3x3", 0), ("sep_conv_3x3", 1)],
                     reduce=(("skip_connect", 0), ("max_pool_3x3", 1))))
    a = g.param_names.index("cells.1._ops.0.conv_1.weight")
    assert g.type_names()[a:a + 4] == ["conv", "conv", "concat", "bn"]
    assert _preds(g, a) == _preds(g, a + 1) and _preds(g, a + 2) == [a, a + 1]
    assert g.param_names[a + 3] == "cells.1._ops.0.bn.weight"


def test_pools_are_one_node_with_their_kernel_as_shape():
    g = _graph(_spec([("conv_3x3", 0), ("sep_conv_3x3", 1)], stem_pool=True))
    pools = [i for i, t in enumerate(g.type_names()) if t.endswith("_pool")]
    assert len(pools) == 1 + 2 * 2  # stem pool + two reduction cells with two pools
    assert all(g.param_shape(i) == (1, 1, 3, 3) for i in pools)


def test_norm_biases_and_dead_preprocessing_have_no_node():
    spec = _spec([("conv_3x3", 1), ("sep_conv_3x3", 1)])  # input 0 never read
    g = _graph(spec)
    names = {n for n in g.param_names if n}
    model = build_model(spec)
    missing = {n for n, _ in model.named_parameters()} - names
    assert missing and all(n.endswith(".bias") or ".preprocess0." in n for n in missing)
    assert any(".preprocess0." in n for n in missing)  # built, counted, not in the graph
    assert g.num_params == count_params(spec) == sum(p.numel() for p in model.parameters())


def test_an_addition_or_concat_of_one_node_is_no_node():
    """ViT without preprocessing: cell 0 reads the stem twice, so skip + skip adds a tensor
    to itself; the official filter drops such an Add (and a Cat of one tensor)."""
    cell = [("skip_connect", 0), ("skip_connect", 1), ("msa", 2), ("none", 0)]
    g = _graph(_spec(cell, reduce=cell, C=16, preproc=False))
    (stem_sum,) = _succs(g, g.param_names.index("pos_enc.weight"))
    assert _preds(g, g.param_names.index("cells.0._ops.2.ln1.weight")) == [stem_sum]
    ln1 = g.param_names.index("cells.1._ops.2.ln1.weight")
    (skip_sum,) = _preds(g, ln1)  # cell 1 adds two different tensors
    assert g.type_names()[skip_sum] == "sum" and len(_preds(g, skip_sum)) == 2
    assert Counter(g.type_names())["concat"] == 0


def test_the_official_filter_counts_in_edges_pass_by_pass():
    """The official filter decides Adds (then Cats) one by one, while removed ones still
    count as in-edges: (x + x) + x keeps the second sum (over x alone), and of a chain of
    one-input concats every second one stays."""
    cell = [("skip_connect", 0), ("skip_connect", 1), ("skip_connect", 2), ("skip_connect", 0)]
    g = _graph(_spec(cell, reduce=[("msa", 1), ("none", 0)] * 2, C=16, preproc=False))
    (stem_sum,) = _succs(g, g.param_names.index("pos_enc.weight"))
    single = [i for i, t in enumerate(g.type_names()) if t == "sum" and len(_preds(g, i)) == 1]
    assert [_preds(g, i) for i in single] == [[stem_sum]]
    normal = [("skip_connect", 0), ("skip_connect", 1), ("msa", 2), ("none", 0)]
    g = _graph(_spec(normal, reduce=[("skip_connect", 1), ("none", 0)], C=16, preproc=False))
    counts = Counter(g.type_names())
    assert counts["concat"] == 1 and len(_preds(g, g.type_names().index("concat"))) == 1


def test_predefined_graph_sizes_are_the_published_ones():
    """Spec section 5.5: CIFAR ResNet-50 126 nodes / 141 edges, official ViT 129 / 148."""
    g = trace_graph(build_predefined("resnet50", 10, 32), 32)
    assert (g.num_nodes, g.num_edges) == (126, 141)
    assert Counter(g.type_names()) == {"input": 1, "conv": 54, "bn": 53, "sum": 16,
                                       "glob_avg": 1, "bias": 1}
    vit = _graph(DEEPNETS_VIT)
    assert (vit.num_nodes, vit.num_edges) == (129, 148)
    assert Counter(vit.type_names()) == {"input": 1, "conv": 42, "pos_enc": 1, "sum": 21,
                                         "ln": 20, "msa": 10, "bias": 31, "avg_pool": 2,
                                         "glob_avg": 1}
    assert vit.num_params == 1_012_234


def test_module_typing_rules_on_plain_torch_modules():
    """Grouped convs (not only depthwise) are sep_conv, dilated ones dil_conv; linear layers
    chain input -> weight -> bias; a keepdim mean is glob_avg, another mean is not."""

    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.a = nn.Conv2d(3, 8, 3, padding=1)
            self.b = nn.Conv2d(8, 8, 3, padding=1, groups=2)
            self.c = nn.Conv2d(8, 8, 3, padding=2, dilation=2, groups=8)
            self.fc = nn.Linear(8, 4)

        def forward(self, x):
            x = self.c(self.b(self.a(x)))
            x = x - x.mean((2, 3)).view(1, 8, 1, 1)
            return self.fc(x.mean((2, 3), keepdim=True).flatten(1))

    g = trace_graph(Net(), 8)
    assert g.type_names() == ["input", "conv", "bias", "sep_conv", "bias", "dil_conv", "bias",
                              "glob_avg", "conv", "bias"]
    assert g.edges.tolist() == [[0, 1], [1, 2], [2, 3], [3, 4], [4, 5], [5, 6], [6, 7],
                                [7, 8], [8, 9]]
    assert g.param_shape(7) == ()


def test_tracing_works_on_the_meta_device():
    spec = _spec([("msa", 1), ("cse", 0)], C=16)
    with torch.device("meta"):
        model = build_model(spec)
    g = trace_graph(model, 32, example=torch.randn(1, 3, 32, 32, device="meta"))
    assert g.equals(graph_from_spec(spec))
