"""GHN-2 model: every parameter of real and generated networks, shapes, gradients, heads."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torchvision
from torch import nn

from baselines.ghn2.decoder import fold4, plan_params, tile_to
from baselines.ghn2.model import GHN2, GHN2Config, model_shapes
from deepnetsbench.graph import graph_from_module, graph_from_spec
from deepnetsbench.space import SPLIT_CONFIGS, build_model, sample_arch

TINY = GHN2Config(hid=16, dec_channels=8, dec_mid=16, block=16, kernel=3)


def tiny_ghn(seed: int = 0, **changes) -> GHN2:
    torch.manual_seed(seed)
    cfg = GHN2Config(**{**TINY.to_dict(), **changes})
    return GHN2(cfg)


def small_vit() -> nn.Module:
    return torchvision.models.VisionTransformer(image_size=32, patch_size=8, num_layers=2,
                                                num_heads=2, hidden_dim=32, mlp_dim=64,
                                                num_classes=10)


PREDEFINED = {
    "resnet18": lambda: torchvision.models.resnet18(num_classes=10),
    "mobilenet_v3_small": lambda: torchvision.models.mobilenet_v3_small(num_classes=10),
    "squeezenet1_0": lambda: torchvision.models.squeezenet1_0(num_classes=10),
    "vit_small": small_vit,
}


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


def test_predict_params_generated_nets_are_complete_and_differentiable():
    specs = [sample_arch(SPLIT_CONFIGS[s], i) for s in ("train", "bnfree") for i in range(3)]
    models = [build_model(s, 10, 32) for s in specs]
    graphs = [graph_from_spec(s, 10, 32) for s in specs]
    ghn = tiny_ghn()
    preds = ghn.predict_params(graphs, [model_shapes(m) for m in models])
    for model, pred in zip(models, preds):
        shapes = model_shapes(model)
        assert set(pred) == set(shapes)
        assert all(tuple(pred[k].shape) == shapes[k] for k in pred)
    loss = sum(v.square().mean() for p in preds for v in p.values())
    loss.backward()
    unused = [n for n, p in ghn.named_parameters() if p.grad is None or not p.grad.abs().sum()]
    assert unused == []


def test_predict_params_without_shapes_uses_the_graph():
    spec = sample_arch(SPLIT_CONFIGS["train"], 5)
    model = build_model(spec)
    (pred,) = tiny_ghn().predict_params([graph_from_spec(spec)])
    assert {k: tuple(v.shape) for k, v in pred.items()} == model_shapes(model)


def test_batched_prediction_equals_one_by_one():
    specs = [sample_arch(SPLIT_CONFIGS["train"], i) for i in range(3)]
    graphs = [graph_from_spec(s) for s in specs]
    ghn = tiny_ghn()
    with torch.no_grad():
        together = ghn.predict_params(graphs)
        alone = [ghn.predict_params([g])[0] for g in graphs]
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


def test_normalisation_ranges_and_fan_in_scaling():
    spec = sample_arch(SPLIT_CONFIGS["train"], 2)
    model = build_model(spec)
    graph = graph_from_spec(spec)
    ghn = tiny_ghn()
    raw = tiny_ghn(normalize=False)
    raw.load_state_dict(ghn.state_dict())
    with torch.no_grad():
        (p,) = ghn.predict_params([graph], [model_shapes(model)])
        (r,) = raw.predict_params([graph], [model_shapes(model)])
    plan = plan_params(graph, model_shapes(model))
    for item in plan.weights:
        _, i, kh, kw = fold4(item.shape)
        torch.testing.assert_close(p[item.name], r[item.name] * math.sqrt(item.beta / (i * kh * kw)))
    for item in plan.vectors:
        if item.kind == "norm_weight":
            assert ((p[item.name] > 0) & (p[item.name] < 2)).all()
            torch.testing.assert_close(p[item.name], 2 * torch.sigmoid(0.5 * r[item.name]))
        else:
            assert (p[item.name].abs() < 1).all()
            torch.testing.assert_close(p[item.name], torch.tanh(0.2 * r[item.name]))
    assert plan.classifier is not None and plan.classifier.name.startswith("classifier.")


def test_tiling_repeats_the_block_along_channels():
    block = torch.arange(2 * 3 * 1 * 1, dtype=torch.float32).view(2, 3, 1, 1)
    out = tile_to(block, (5, 7, 1, 1))
    assert out.shape == (5, 7, 1, 1)
    assert torch.equal(out[2:4, 3:6], block)
    assert torch.equal(out[4, 6], block[0, 0])
    dest = torch.empty(4, 6, 1, 1)
    tile_to(block, (4, 6, 1, 1), out=dest)
    assert torch.equal(dest, block.repeat(2, 2, 1, 1))


def test_wide_layers_are_tiled_from_the_block():
    model = nn.Sequential(nn.Conv2d(3, 40, 3), nn.ReLU(), nn.Conv2d(40, 40, 3), nn.Flatten(),
                          nn.LazyLinear(10))
    model(torch.zeros(1, 3, 8, 8))
    ghn = tiny_ghn()  # block 16: a 40-channel layer repeats its 16x16 block
    ghn.predict(model, graph_from_module(model, 8))
    w = model[2].weight
    assert torch.equal(w[16:32, 16:32], w[:16, :16])
    assert torch.equal(w[32:40, :16], w[:8, :16])


def test_shape_buckets_are_monotone_and_bounded():
    from baselines.ghn2.batch import CHANNEL_VOCAB, SPATIAL_VOCAB, channel_bucket, spatial_bucket

    c = channel_bucket(np.arange(0, 100_000))
    assert (np.diff(c) >= 0).all() and c.max() == CHANNEL_VOCAB - 1
    assert list(channel_bucket(np.array([0, 1, 16, 17, 64, 4096]))) == [0, 1, 16, 17, 24, 48]
    k = spatial_bucket(np.arange(0, 5000))
    assert (np.diff(k) >= 0).all() and k.max() == SPATIAL_VOCAB - 1


def test_default_config_has_published_size():
    n = GHN2(GHN2Config()).num_params
    assert 1.5e6 < n < 1.75e6  # "about 1.6 M parameters" on CIFAR-10


def test_graph_that_names_nothing_is_an_error():
    from deepnetsbench.errors import BenchError

    model = torchvision.models.resnet18(num_classes=10)
    other = graph_from_spec(sample_arch(SPLIT_CONFIGS["train"], 0))
    with pytest.raises(BenchError):
        tiny_ghn().predict(model, other)
