"""Our graphs are the official DeepNets-1M graphs (golden data: tests/fixtures/ppuda).

graphs.json holds the official ``Graph`` of every net of nets.json (reference env that keeps
every msa/cse node, see the fixture README); nets.json its official parameter counts.
"""

import json
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import torch
from graph_golden import image_size, load, match, spec_from_official

from deepnetsbench.graph import count_params, graph_from_spec, trace_graph
from deepnetsbench.graph.graph import make_graph
from deepnetsbench.space import build_model
from deepnetsbench.splits.predefined import DEEPNETS_VIT, build_predefined

NETS = load("nets.json") or []
GRAPHS = load("graphs.json") or {}
SPECS = [r for r in NETS if r["genotype"] != "resnet50"]
pytestmark = pytest.mark.skipif(not NETS or not GRAPHS, reason="golden fixtures missing")


def _spec(record):
    args = dict(record["net_args"])
    args.setdefault("genotype", record["genotype"])
    return spec_from_official(args), args.get("num_classes", 10), image_size(args)


def _traced(model, size=32):
    return trace_graph(model, size, example=torch.randn(1, 3, size, size))


@pytest.mark.parametrize("record", SPECS, ids=[r["id"] for r in SPECS])
def test_derived_and_traced_graphs_are_the_official_ones(record, one_thread):
    spec, k, size = _spec(record)
    derived = graph_from_spec(spec, k, size)
    assert match(derived, GRAPHS[record["id"]]) == []
    assert derived.equals(_traced(build_model(spec, k, size), size))
    golden = GRAPHS[record["id"]]
    assert derived.num_nodes == golden["n_nodes"] and derived.num_edges == golden["n_edges"]
    assert len(derived.virtual_edges(50)) == golden["n_virtual_edges_50"]


@pytest.mark.parametrize("record", SPECS, ids=[r["id"] for r in SPECS])
def test_count_params_is_the_official_count(record):
    spec, _, _ = _spec(record)
    for key, k, size in (("num_params", 10, 32), ("num_params_224", 10, 224),
                         ("num_params_1000", 1000, 32), ("num_params_224_1000", 1000, 224)):
        if key in record:
            assert count_params(spec, k, size) == record[key], key


def test_graph_shapes_are_the_official_parameter_shapes():
    for record in SPECS:
        spec, k, size = _spec(record)
        g = graph_from_spec(spec, k, size)
        shapes = record["param_shapes"]
        for i, name in enumerate(g.param_names):
            if name is not None:
                assert list(g.param_shape(i)) == shapes[name], (record["id"], name)


def test_resnet50_graph_is_the_official_one(one_thread):
    g = _traced(build_predefined("resnet50", 10, 32))
    assert match(g, GRAPHS["predefined_resnet50"]) == []
    rec = next(r for r in NETS if r["id"] == "predefined_resnet50")
    assert g.num_params == rec["num_params"]


def _perturbed(g, retype=None, drop_edge=None):
    types = g.node_types.copy()
    if retype is not None:
        i, kind = retype
        types[i] = kind
    edges = [tuple(e) for e in g.edges.tolist()]
    if drop_edge is not None:
        edges.pop(drop_edge)
    shapes = [g.param_shape(i) for i in range(g.num_nodes)]
    return make_graph(list(types), list(g.param_names), shapes, edges, g.num_params)


def test_the_comparison_catches_a_wrong_graph():
    """The isomorphism check is not vacuous: one node typed otherwise, one edge missing or
    one edge moved between two alike parameter-free nodes are all reported."""
    record = next(r for r in SPECS if r["id"] == "hand_14_dense_dead")
    spec, k, size = _spec(record)
    g = graph_from_spec(spec, k, size)
    golden = GRAPHS[record["id"]]
    assert match(g, golden) == []
    names = g.type_names()
    pointwise = next(i for i, n in enumerate(g.param_names) if n and n.endswith("op.2.weight")
                     and names[i] == "conv" and g.param_shape(i)[2:] == (1, 1))
    assert match(_perturbed(g, retype=(pointwise, 2)), golden)  # typed sep_conv
    assert match(_perturbed(g, drop_edge=len(g.edges) // 2), golden)
    # rewire a pool -> sum edge onto the other pool of the same input
    pools = [i for i, n in enumerate(names) if n == "avg_pool"]
    pairs = [(a, b) for a in pools for b in pools if a < b
             and set(g.edges[g.edges[:, 1] == a][:, 0]) == set(g.edges[g.edges[:, 1] == b][:, 0])]
    a, b = pairs[0]
    edges = [tuple(e) for e in g.edges.tolist()]
    out_a = [e for e in edges if e[0] == a][0]
    edges = [e for e in edges if e != out_a] + [(b, out_a[1])]
    moved = make_graph(list(g.node_types), list(g.param_names),
                       [g.param_shape(i) for i in range(g.num_nodes)], edges, g.num_params)
    assert match(moved, golden)


def test_golden_graphs_keep_one_msa_and_one_cse_node_per_live_op():
    """The reference env keeps them all; so do we, structurally (not by offsets)."""
    live_msa = live_cse = 0
    for record in SPECS:
        spec, k, size = _spec(record)
        g = graph_from_spec(spec, k, size)
        names = [n for n in g.param_names if n]
        live_msa += sum(n.endswith("to_qkv.weight") for n in names)
        live_cse += sum(n.endswith("fc2.bias") and "._ops." in n for n in names)
        counts = Counter(g.type_names())
        assert counts["msa"] == sum(n.endswith("to_qkv.weight") for n in names)
        assert counts["cse"] == sum(n.endswith("fc2.bias") and "._ops." in n for n in names)
        golden = Counter(t for t, _, _ in GRAPHS[record["id"]]["nodes"])
        assert golden["msa"] == counts["msa"] and golden["cse"] == counts["cse"]
    assert live_msa > 50 and live_cse > 50


def test_predefined_vit_graph_matches_the_golden_one():
    g = graph_from_spec(DEEPNETS_VIT, 10, 32)
    assert match(g, GRAPHS["predefined_vit"]) == []
    assert np.array_equal(g.adjacency(), _traced(build_model(DEEPNETS_VIT)).adjacency())


CASES = json.loads((Path(__file__).parent / "official_filter_cases.json").read_text())["nets"]


@pytest.mark.parametrize("case", sorted(CASES))
def test_official_add_and_cat_filter_cases(case):
    """Official graphs of nets that add a tensor to itself or concatenate one tensor (made
    like the fixtures, see the file's ``_how``): derived and traced graphs are the same."""
    rec = CASES[case]
    spec = spec_from_official(rec["net_args"])
    derived = graph_from_spec(spec, 10, 32)
    assert match(derived, rec) == []
    assert derived.equals(_traced(build_model(spec)))
