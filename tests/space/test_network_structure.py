"""The network builder against the official rules (deepnets1m-official.md section 3)."""

import pytest
import torch
from torch import nn

from deepnetsbench.space import ArchSpec, Genotype, NetArgs, build_model
from deepnetsbench.space.layout import plan_network, reduction_cells
from deepnetsbench.space.ops import FactorizedReduce, ReLUConvBN, Stride

pytestmark = pytest.mark.usefixtures("one_thread")

CONVS = (("conv_3x3", 0), ("sep_conv_3x3", 1))


def spec(normal=CONVS, reduce=None, concat=None, reduce_concat=None, **args):
    reduce = reduce or normal
    concat = concat or tuple(range(2, len(normal) // 2 + 2))
    reduce_concat = reduce_concat or tuple(range(2, len(reduce) // 2 + 2))
    args = {"C": 8, "n_cells": 6, **args}
    return ArchSpec(Genotype(tuple(normal), tuple(concat), tuple(reduce), tuple(reduce_concat)),
                    NetArgs(**args))


def n_params(module: nn.Module, prefix: str = "") -> int:
    return sum(p.numel() for n, p in module.named_parameters() if n.startswith(prefix))


def sides(model: nn.Module, size: int) -> tuple[int, list[int], int]:
    """(side of s0 and s1 entering cell 0, side of every cell output)."""
    seen: dict = {}

    def hook(idx):
        def record(_m, inputs, out):
            if idx == 0:
                seen["in"] = (inputs[0].shape[-1], inputs[1].shape[-1])
            seen[idx] = out.shape[-1]
        return record

    for i, cell in enumerate(model.cells):
        cell.register_forward_hook(hook(i))
    with torch.no_grad():
        model.eval()(torch.randn(1, 3, size, size))
    return seen["in"], [seen[i] for i in range(len(model.cells))]


# (stem args, size) -> (s0, s1) entering cell 0, then the sides after the reductions 2 and 4
RESOLUTIONS = [
    ({}, 32, (32, 32), 16, 8),
    ({"stem_pool": True}, 32, (16, 16), 8, 4),
    ({"stem_type": 1}, 32, (32, 16), 8, 4),
    ({}, 224, (56, 56), 28, 14),
    ({"stem_pool": True}, 224, (28, 28), 14, 7),
    ({"stem_type": 1}, 224, (56, 28), 14, 7),
]


@pytest.mark.parametrize("args,size,entry,after1,after2", RESOLUTIONS)
def test_resolution_table(args, size, entry, after1, after2):
    model = build_model(spec(**args), 10, size)
    got_entry, out = sides(model, size)
    assert got_entry == entry
    assert out == [entry[1]] * 2 + [after1] * 2 + [after2] * 2
    assert plan_network(model.spec, 10, size).side == after2


@pytest.mark.parametrize("size,side", [(32, 11), (224, 14)])
def test_vit_resolution_never_changes(size, side):
    vit = spec(normal=(("none", 0), ("msa", 1)), reduce=(("cse", 0), ("avg_pool_3x3", 1)),
               C=16, preproc=True)
    assert vit.args.is_vit  # automatic from msa
    model = build_model(vit, 10, size)
    assert sides(model, size) == ((side, side), [side] * 6)
    assert model.pos_enc.weight.shape == (1, 16, side, side)
    assert model.stem0.kernel_size == model.stem0.stride == ((3, 3) if size == 32 else (16, 16))
    assert all(op.stride == 1 for c in model.plan.cells for op in c.ops)
    # preprocess0 after a reduction is a 1x1 conv, never a FactorizedReduce, in a ViT
    assert all(isinstance(c.preprocess0, ReLUConvBN) for c in model.cells)


def test_stem_parameter_formulas():
    C = 8
    for ks in (3, 5, 7):
        for size, c_stem in ((32, 3 * C), (224, C)):
            m = build_model(spec(ks=ks), 10, size)
            assert n_params(m, "stem.") == 3 * ks * ks * c_stem + 2 * c_stem
        m = build_model(spec(ks=ks, preproc=False, C_mult=1), 10, 32)
        assert n_params(m, "stem.") == 3 * ks * ks * C + 2 * C  # 3C only with preproc
        m = build_model(spec(ks=ks, stem_type=1), 10, 32)
        assert n_params(m, "stem") == 3 * ks * ks * C // 2 + C + 4.5 * C * C + 2 * C + 9 * C * C + 2 * C
        assert m.stem0[0].kernel_size == (ks, ks) and m.stem1[1].stride == (2, 2)
    vit = spec(normal=(("msa", 1), ("none", 0)))
    assert n_params(build_model(vit, 10, 32), "stem0") == 27 * C
    assert n_params(build_model(vit, 10, 32), "pos_enc") == 121 * C
    assert n_params(build_model(vit, 10, 224), "stem0") + n_params(
        build_model(vit, 10, 224), "pos_enc") == 768 * C + 196 * C


def test_type1_stem_reduces_cell0_input0_and_ignores_stem_pool():
    m = build_model(spec(stem_type=1, stem_pool=True), 10, 32)
    assert isinstance(m.cells[0].preprocess0, FactorizedReduce)
    assert not any(isinstance(x, nn.MaxPool2d) for x in m.stem0.modules())
    m = build_model(spec(stem_type=1, preproc=False, C_mult=1, normal=CONVS[:2]), 10, 32)
    assert isinstance(m.cells[0].preprocess0, Stride)
    assert isinstance(m.cells[0].preprocess1, nn.Identity)
    assert m(torch.randn(2, 3, 32, 32)).shape == (2, 10)


@pytest.mark.parametrize("fc_layers,keys", [(0, ["0"]), (1, ["0"]), (2, ["0", "3"]),
                                            (3, ["0", "3", "6"])])
def test_classifier_layout(fc_layers, keys):
    m = build_model(spec(fc_layers=fc_layers, fc_dim=16), 7, 32)
    linear = [n for n, x in m.classifier.named_children() if isinstance(x, nn.Linear)]
    assert linear == keys
    drops = [x.p for x in m.classifier if isinstance(x, nn.Dropout)]
    assert drops == [0.5] * (fc_layers - 1 if fc_layers > 1 else 0)
    assert m.classifier[-1].out_features == 7
    out = m(torch.randn(2, 3, 32, 32))
    assert isinstance(out, torch.Tensor) and out.shape == (2, 7)


@pytest.mark.parametrize("args,size,side", [({}, 32, 8), ({"stem_pool": True}, 32, 4),
                                            ({"stem_type": 1}, 32, 4), ({}, 224, 14),
                                            ({"stem_type": 1}, 224, 7)])
def test_flatten_head_width(args, size, side):
    m = build_model(spec(glob_avg=False, **args), 10, size)
    c_last = 8 * 2 * 2  # one concatenated node, C doubled at both reductions
    assert m.classifier[0].in_features == c_last * side * side
    assert not hasattr(m, "global_pooling")


def test_preprocessing_is_built_even_when_unread():
    reads_1 = (("conv_3x3", 1), ("conv_1x1", 1))
    m = build_model(spec(normal=reads_1, reduce=reads_1), 10, 32)
    calls = []
    for c in m.cells:
        c.preprocess0.register_forward_hook(lambda *a: calls.append(a))
    m(torch.randn(1, 3, 32, 32))
    assert calls == []  # never on the path to the output ...
    assert all(n_params(c.preprocess0) > 0 for c in m.cells)  # ... but built and counted


def test_two_none_step_and_empty_concat_state_give_zeros():
    normal = (("none", 0), ("none", 1), ("conv_3x3", 1), ("conv_1x1", 0))
    m = build_model(spec(normal=normal, concat=(2, 3)), 10, 32)
    out = {}
    m.cells[0].register_forward_hook(lambda _m, _i, o: out.update(y=o))
    m(torch.randn(2, 3, 32, 32))
    assert out["y"].shape[1] == 16 and not out["y"][:, :8].any() and out["y"][:, 8:].any()


def test_network_without_output_is_refused():
    dead = (("none", 0), ("none", 1))
    with pytest.raises(ValueError, match="no output"):
        build_model(spec(normal=dead))


def test_cells_without_output_pass_on_none():
    """Reduction cells that always output None, normal cells reading input 0 only: the
    network still computes (cells 0, 2 and 4 are dead but built), as officially."""
    normal = (("conv_3x3", 0), ("none", 1))
    reduce = (("none", 0), ("none", 1), ("conv_1x1", 0), ("none", 1))
    m = build_model(spec(normal=normal, reduce=reduce, reduce_concat=(2,)), 10, 32)
    assert [c.live for c in m.plan.cells] == [False, True, False, True, False, True]
    assert n_params(m.cells[2]) > 0
    assert m(torch.randn(2, 3, 32, 32)).shape == (2, 10)


def test_norm_modes():
    def buffers(norm):
        return [n for n, _ in build_model(spec(norm=norm)).named_buffers()]
    assert buffers("bn") == [] and buffers(None) == []
    assert any(n.endswith("running_mean") for n in buffers("bn-track"))
    assert not any(isinstance(x, nn.BatchNorm2d) for x in build_model(spec(norm=None)).modules())
    with pytest.raises(ValueError, match="norm"):
        build_model(spec(norm="bnorm"))


def test_reduction_cells():
    assert reduction_cells(1) == () and reduction_cells(2) == (1,)
    assert reduction_cells(3) == (1, 2) and reduction_cells(12) == (4, 8)


def test_is_vit_defaults_to_the_presence_of_msa():
    assert spec(normal=(("msa", 1), ("none", 0))).args.is_vit is True
    assert spec().args.is_vit is False
    explicit = spec(normal=(("msa", 1), ("conv_1x1", 0)), is_vit=False)
    assert explicit.args.is_vit is False
    assert hasattr(build_model(explicit), "stem") and not hasattr(build_model(explicit), "pos_enc")


def test_genotype_validation():
    ok = Genotype((("none", 0), ("none", 1), ("skip_connect", 0), ("conv_1x1", 2)), (3,),
                  (("max_pool_3x3", 0), ("none", 1)), (2,))
    ok.check()
    bad = [
        Genotype((("conv_3x3", 2), ("conv_3x3", 1)), (2,), CONVS, (2,)),  # reads itself
        Genotype((("conv_3x3", 0),), (2,), CONVS, (2,)),  # odd op count
        Genotype((("conv_9x9", 0), ("conv_3x3", 1)), (2,), CONVS, (2,)),  # unknown op
        Genotype(CONVS, (1,), CONVS, (2,)),  # a cell input in concat
        Genotype(CONVS, (3,), CONVS, (2,)),  # no such step
        Genotype(CONVS, (), CONVS, (2,)),  # empty concat
    ]
    for g in bad:
        with pytest.raises(ValueError):
            g.check()
        with pytest.raises(ValueError):
            build_model(ArchSpec(g, NetArgs(C=8)))
    with pytest.raises(ValueError):
        Genotype.from_json(bad[0].to_json())


def test_preproc_off_needs_single_concat_and_cmult_one():
    with pytest.raises(ValueError, match="preproc"):
        build_model(spec(preproc=False))  # C_mult 2
    two = (("conv_3x3", 0), ("conv_3x3", 1), ("conv_1x1", 2), ("conv_1x1", 0))
    with pytest.raises(ValueError, match="preproc"):
        build_model(spec(normal=two, preproc=False, C_mult=1))


def test_unread_type1_stem1_is_skipped_but_still_rectifies_s0():
    """Cell 0 reads only s0 and cell 1 only its input 1: no live layer reads stem1, so its
    weights are never predicted (they may be absent) while its in-place ReLU on s0 stays."""
    from deepnetsbench.graph.derive import graph_from_spec
    from deepnetsbench.graph.trace import trace_graph

    s = spec(normal=(("conv_3x3", 0), ("skip_connect", 0)),
             reduce=(("conv_3x3", 1), ("max_pool_3x3", 1)), concat=(2,), reduce_concat=(2,),
             stem_type=1, n_cells=4, C=8)
    torch.manual_seed(0)
    model = build_model(s).eval()
    assert not model._stem1_live
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        ref = model(x)
        for p in model.stem1.parameters():
            p.fill_(float("nan"))  # never used
        assert torch.equal(model(x), ref)
        seen = []
        hook = model.cells[0].preprocess0.register_forward_pre_hook(
            lambda m, inp: seen.append(inp[0].clone()))
        model(x)
        hook.remove()
        assert seen and seen[0].min() >= 0 and seen[0].max() > 0  # s0 rectified in place
    names = [n for n in trace_graph(model).param_names if n]
    assert not any(n.startswith("stem1.") for n in names)
    assert trace_graph(model).equals(graph_from_spec(s, 10, 32))
