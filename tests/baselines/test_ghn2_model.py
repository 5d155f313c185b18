"""GHN model: the released architecture (sizes, keys, shape encoding, decoders, heads,
normalisation), every parameter of real and generated networks, gradients, batching.

The equality with the official code itself is tested on golden predictions in
tests/baselines/test_ghn2_official.py; here each rule is checked against a literal
re-statement of it."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torchvision
from torch import nn

from baselines.ghn2.decoder import tile_to
from baselines.ghn2.model import GHN2, GHN2Config, model_shapes
from baselines.ghn2.plan import plan_params, weight_scale
from baselines.ghn2.shapes import ShapeCodes, channel_vocab, spatial_vocab, to_4d
from deepnetsbench.errors import BenchError
from deepnetsbench.graph import graph_from_module
from deepnetsbench.space import SPLIT_CONFIGS, build_model, sample_arch

TINY = GHN2Config(hid=8, max_shape=(8, 8, 3, 3))


def tiny_ghn(seed: int = 0, **changes) -> GHN2:
    torch.manual_seed(seed)
    ghn = GHN2(TINY.replace(**changes))
    with torch.no_grad():  # a fresh init leaves some heads near zero: make every path count
        for p in ghn.parameters():
            p.add_(0.1 * torch.randn_like(p))
    return ghn.eval()


def small_vit() -> nn.Module:
    return torchvision.models.VisionTransformer(image_size=32, patch_size=8, num_layers=2,
                                                num_heads=2, hidden_dim=32, mlp_dim=64,
                                                num_classes=10)


def generated(split: str, i: int, **args):
    spec = sample_arch(SPLIT_CONFIGS[split], i)
    if args:
        spec = spec.with_args(**args)
    model = build_model(spec, 10, 32)
    return model, graph_from_module(model, 32)


PREDEFINED = {
    "resnet18": lambda: torchvision.models.resnet18(num_classes=10),
    "mobilenet_v3_small": lambda: torchvision.models.mobilenet_v3_small(num_classes=10),
    "squeezenet1_0": lambda: torchvision.models.squeezenet1_0(num_classes=10),
    "vit_small": small_vit,
}


# -- the released architecture ----------------------------------------------------------------

@pytest.mark.parametrize("name,dataset,count", [
    ("ghn2", "cifar10", 1_620_764), ("ghn1", "cifar10", 1_620_668), ("mlp", "cifar10", 1_614_396),
    ("ghn2", "imagenet", 2_319_720), ("ghn1", "imagenet", 2_319_624)])
def test_presets_have_the_published_sizes(name, dataset, count):
    """The parameter counts of the released checkpoints (docs/baselines.md)."""
    assert GHN2(GHN2Config.preset(name, dataset)).num_params == count


def test_state_dict_has_the_released_keys_and_shapes():
    sd = {k: tuple(v.shape) for k, v in GHN2(GHN2Config.preset("ghn2")).state_dict().items()}
    assert sd["shape_enc.embed_channel.weight"] == (392, 8)
    assert sd["shape_enc.embed_spatial.weight"] == (9, 8)
    assert sd["gnn.mlp.fc.0.weight"] == (16, 32) and sd["gnn.mlp_ve.fc.2.weight"] == (32, 16)
    assert sd["gnn.gru.weight_ih"] == (96, 32)
    assert sd["decoder.fc.0.weight"] == (15488, 32)
    assert sd["decoder.conv.0.weight"] == (256, 128, 1, 1)
    assert sd["decoder.conv.2.weight"] == (4096, 256, 1, 1)
    assert sd["decoder.class_layer_predictor.1.weight"] == (10, 64, 1, 1)
    assert sd["decoder_1d.fc.2.weight"] == (128, 64) and sd["bias_class.1.weight"] == (10, 64)
    assert "ln.weight" in sd and "embed.weight" in sd
    ghn1 = GHN2(GHN2Config.preset("ghn1")).state_dict()
    assert "ln.weight" not in ghn1 and "gnn.mlp_ve.fc.0.weight" not in ghn1
    assert tuple(ghn1["gnn.mlp.fc.0.weight"].shape) == (32, 32)
    mlp = GHN2(GHN2Config.preset("mlp")).state_dict()
    assert "gnn.fc.0.weight" in mlp and "gnn.gru.weight_ih" not in mlp


def test_config_errors_are_one_line():
    with pytest.raises(BenchError, match="hypernet"):
        GHN2Config(hypernet="transformer")
    with pytest.raises(BenchError, match="decoder"):
        GHN2Config(decoder="mlp")
    with pytest.raises(BenchError, match="preset"):
        GHN2Config.preset("ghn3")


# -- shape encoding ---------------------------------------------------------------------------

def literal_row(value: int, vocab: list[int], snaps: dict[int, int]) -> int:
    """The look-up rule as docs/baselines.md states it, one value at a time."""
    if value in vocab:
        return vocab.index(value)
    if value in snaps:
        return vocab.index(snaps[value])
    if 0 < value < vocab[-1]:
        dist = [abs(v - value) for v in vocab]
        return dist.index(min(dist))  # first minimum: the smaller value on ties
    return len(vocab) - 1


@pytest.mark.parametrize("classes,grid", [(10, 11), (1000, 16)])
def test_shape_codes_follow_the_lookup_rules(classes, grid):
    codes = ShapeCodes(classes, grid)
    ch, sp = codes.channels.tolist(), codes.spatial.tolist()
    assert len(ch) == 391
    assert sp == ([1, 3, 5, 7, 9, 11, 14, 16] if grid == 11 else
                  [1, 3, 5, 7, 9, 11, 13, 14, 15, 16])
    values = np.arange(0, 9000)
    rows = codes.encode(np.stack([values, values, np.minimum(values, 40),
                                  np.minimum(values, 40)], axis=1))
    snaps_c = {c: 8 for c in range(4, 8)}
    want_c = [literal_row(int(v), ch, snaps_c) for v in values]
    want_s = [literal_row(int(v), sp, {2: 3}) for v in np.minimum(values, 40)]
    assert rows[:, 0].tolist() == want_c and rows[:, 1].tolist() == want_c
    assert rows[:, 2].tolist() == want_s
    assert codes.encode(np.full((1, 4), -1)).tolist() == [[391, 391, len(sp), len(sp)]]


def test_vocabularies_and_4d_shapes():
    assert channel_vocab(10)[:5].tolist() == [1, 3, 8, 10, 16]
    assert 1000 in channel_vocab(1000) and 4080 in channel_vocab(10)
    assert spatial_vocab(11)[-1] == 16
    assert to_4d((7,)) == (7, 1, 1, 1) and to_4d((5, 6)) == (5, 6, 1, 1)
    assert to_4d((1, 197, 768)) == (1, 768, 14, 14) and to_4d((4, 5, 6)) == (4, 5, 6, 1)


# -- decoders, heads, normalisation -----------------------------------------------------------

def full_block(ghn: GHN2, h: torch.Tensor) -> torch.Tensor:
    """The whole ``O x I x S x S`` block, the literal way: fc, view, 1x1 convs."""
    dec = ghn.decoder
    o, i, s, _ = ghn.config.max_shape
    x = dec.fc(h).view(len(h), -1, s, s)
    return dec.conv(x).view(len(h), o, i, s, s)


def test_partial_decoding_equals_slicing_the_full_block():
    ghn = tiny_ghn()
    h = torch.randn(5, 8)
    with torch.no_grad():
        full = full_block(ghn, h)
        for kh, kw, rows, cols in [(3, 3, 8, 8), (1, 1, 2, 3), (3, 1, 8, 1), (2, 3, 5, 8)]:
            part = ghn.decoder.blocks(h, kh, kw, rows, cols)
            torch.testing.assert_close(part, full[:, :rows, :cols, :kh, :kw])
        cls = ghn.decoder.classifier(h, 4)
        ref = ghn.decoder.class_layer_predictor(full[:, :, :4, :, 0])[:, :, :, 0]
        torch.testing.assert_close(cls, ref)


def test_weight_scale_rule():
    assert weight_scale((32, 1, 3, 3)) == pytest.approx(math.sqrt(1 / 9))  # depthwise
    assert weight_scale((32, 16, 3, 3)) == pytest.approx(math.sqrt(2 / 144))
    assert weight_scale((32, 16, 1, 7)) == pytest.approx(math.sqrt(1 / 112))  # 1x7
    assert weight_scale((32, 16, 7, 1)) == pytest.approx(math.sqrt(2 / 112))  # 7x1
    assert weight_scale((10, 64)) == pytest.approx(math.sqrt(2 / 64))  # every linear
    assert weight_scale((1, 64, 11, 11)) is None  # positional encoding
    assert weight_scale((1, 64, 3, 3)) == pytest.approx(math.sqrt(2 / 576))


def test_predictions_follow_the_decoders_and_normalisation():
    """Each kind of tensor of a real net, recomputed from the node states by hand."""
    model = torchvision.models.resnet18(num_classes=10)
    graph = graph_from_module(model, 32)
    shapes = model_shapes(model)
    ghn = tiny_ghn()
    raw = tiny_ghn(weight_norm=False)
    with torch.no_grad():
        (p,) = ghn.predict_params([graph], [shapes])
        (r,) = raw.predict_params([graph], [shapes])
        plan = plan_params(graph, shapes)
        h = ghn.encode(ghn.make_batch([graph]), [plan])
    block = full_block(ghn, h)
    names = graph.param_names
    conv = names.index("layer2.0.conv1.weight")  # (128, 64, 3, 3): tiled 16x along out, 8x in
    want = tile_to(block[conv, :, :, :3, :3], (128, 64, 3, 3)) * math.sqrt(2 / (64 * 9))
    torch.testing.assert_close(p["layer2.0.conv1.weight"], want)
    stem = names.index("conv1.weight")  # (64, 3, 7, 7): 7 > S = 3, tiled spatially
    torch.testing.assert_close(r["conv1.weight"], tile_to(block[stem, :, :3], (64, 3, 7, 7)))
    n = graph.num_nodes
    assert names[n - 2] == "fc.weight" and names[n - 1] == "fc.bias"
    cls = ghn.decoder.class_layer_predictor(block[n - 2:n - 1, :, :, :, 0])[0, :, :, 0]
    torch.testing.assert_close(p["fc.weight"], tile_to(cls, (10, 512)) * math.sqrt(2 / 512))
    v = ghn.decoder_1d(h).view(len(h), 2, -1)
    bias = ghn.bias_class(v[n - 1])[1]
    torch.testing.assert_close(p["fc.bias"], torch.tanh(0.2 * bias))
    bn = names.index("layer1.0.bn1.weight")
    torch.testing.assert_close(p["layer1.0.bn1.weight"],
                               tile_to(2 * torch.sigmoid(0.5 * v[bn, 0]), (64,)))
    torch.testing.assert_close(p["layer1.0.bn1.bias"], tile_to(torch.tanh(0.2 * v[bn, 1]), (64,)))
    for k in r:  # without normalisation only the scale differs
        if r[k].dim() > 1:
            s = weight_scale(tuple(r[k].shape))
            torch.testing.assert_close(p[k], r[k] * (s if s is not None else 1.0))


def test_tiling_repeats_the_block_along_every_dim():
    block = torch.arange(2 * 3 * 1 * 1, dtype=torch.float32).view(2, 3, 1, 1)
    out = tile_to(block, (5, 7, 1, 1))
    assert out.shape == (5, 7, 1, 1)
    assert torch.equal(out[2:4, 3:6], block)
    assert torch.equal(out[4, 6], block[0, 0])
    dest = torch.empty(4, 6, 1, 1)
    tile_to(block, (4, 6, 1, 1), out=dest)
    assert torch.equal(dest, block.repeat(2, 2, 1, 1))


@pytest.mark.parametrize("bshape,shape", [
    ((64, 64, 3, 3), (256, 256, 3, 3)), ((64, 64, 1, 1), (2048, 512, 1, 1)),
    ((10, 64), (10, 2048)), ((4, 4, 3, 3), (9, 10, 5, 7)), ((6, 4, 3, 3), (4, 12, 3, 3)),
    ((1, 8, 11, 11), (1, 8, 16, 16)), ((64, 3, 3, 3), (64, 3, 7, 7)), ((4, 2), (8, 5)),
    ((5,), (12,)), ((5,), (3,))])
def test_tiling_in_place_equals_repeat_and_cut(bshape, shape):
    """Leading rows written in place, then copied along the rows: the same as repeating
    the block by whole periods and cutting, with or without a destination."""
    block = torch.randn(bshape)
    want = block.repeat([-(-t // b) for t, b in zip(shape, bshape)])
    want = want[tuple(slice(0, t) for t in shape)]
    assert torch.equal(tile_to(block, shape), want)
    dest = torch.full(shape, float("nan"))
    assert tile_to(block, shape, out=dest) is dest and torch.equal(dest, want)


# -- coverage, gradients, batching ------------------------------------------------------------

@pytest.mark.parametrize("name", sorted(PREDEFINED))
def test_predict_fills_every_parameter_of_torchvision_models(name):
    model = PREDEFINED[name]()
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    ghn = tiny_ghn()
    out = ghn.predict(model)  # traces the graph itself
    assert out is model
    assert ghn.last_missing == [[]]
    for n, p in model.named_parameters():
        assert p.shape == before[n].shape, n
        assert torch.isfinite(p).all(), n
        assert not torch.equal(p, before[n]), f"{n} was not predicted"
    with torch.no_grad():
        assert model.eval()(torch.randn(2, 3, 32, 32)).shape == (2, 10)


@pytest.mark.parametrize("preset", ["ghn2", "ghn1", "mlp"])
def test_predict_params_of_generated_nets_is_differentiable(preset):
    nets = [generated(s, i) for s in ("train", "bnfree") for i in range(2)]
    cfg = GHN2Config.preset(preset)
    ghn = tiny_ghn(hypernet=cfg.hypernet, weight_norm=cfg.weight_norm, ve=cfg.ve,
                   layernorm=cfg.layernorm)
    preds = ghn.predict_params([g for _, g in nets], [model_shapes(m) for m, _ in nets])
    for (model, _), pred, missing in zip(nets, preds, ghn.last_missing):
        shapes = model_shapes(model)
        assert set(pred) | set(missing) == set(shapes)
        assert all(tuple(pred[k].shape) == shapes[k] for k in pred)
    loss = sum(v.square().mean() for p in preds for v in p.values())
    loss.backward()
    unused = [n for n, p in ghn.named_parameters() if p.grad is None or not p.grad.abs().sum()]
    assert unused == []


def test_batched_prediction_equals_one_by_one():
    nets = [generated("train", i) for i in range(3)]
    graphs = [g for _, g in nets]
    shapes = [model_shapes(m) for m, _ in nets]
    ghn = tiny_ghn()
    with torch.no_grad():
        together = ghn.predict_params(graphs, shapes)
        alone = [ghn.predict_params([g], [s])[0] for g, s in zip(graphs, shapes)]
    for a, b in zip(together, alone):
        for k in a:
            torch.testing.assert_close(a[k], b[k], rtol=1e-5, atol=1e-6)


def test_in_place_predict_equals_predict_params():
    model = torchvision.models.resnet18(num_classes=10)
    graph = graph_from_module(model, 32)
    ghn = tiny_ghn()
    with torch.no_grad():
        (pred,) = ghn.predict_params([graph], [model_shapes(model)])
    ghn.predict(model, graph)
    for n, p in model.named_parameters():
        torch.testing.assert_close(p, pred[n])


def test_graph_that_names_nothing_is_an_error():
    model = torchvision.models.resnet18(num_classes=10)
    _, other = generated("train", 0)
    with pytest.raises(BenchError):
        tiny_ghn().predict(model, other)


def test_linear_layers_use_grid_position_zero():
    """A 2-D weight inside the net reads ``B[:out, :in, 0, 0]`` (scaled by sqrt(2 / in))."""
    model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU(), nn.Flatten(), nn.Linear(4 * 36, 6),
                          nn.ReLU(), nn.Linear(6, 10))
    graph = graph_from_module(model, 8)
    ghn = tiny_ghn()
    with torch.no_grad():
        (p,) = ghn.predict_params([graph], [model_shapes(model)])
        h = ghn.encode(ghn.make_batch([graph]), [plan_params(graph, model_shapes(model))])
    node = graph.param_names.index("3.weight")
    want = tile_to(full_block(ghn, h)[node, :6, :, 0, 0], (6, 144)) * math.sqrt(2 / 144)
    torch.testing.assert_close(p["3.weight"], want)
