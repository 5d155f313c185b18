"""PudNet: a prediction for every parameter of each target, and the label order."""

from __future__ import annotations

import pytest
import torch
from torch.func import functional_call

from baselines.pudnet.model import PudNet, PudNetConfig, layer_specs, prepare_template
from deepnetsbench.episodes import TARGETS, build_target

SMALL = dict(hidden=16, embed=16, enc_channels=(8, 16), chunk=32, rank=2)


@pytest.mark.parametrize("target", sorted(TARGETS))
@pytest.mark.parametrize("num_classes", [3, 10])
def test_every_parameter_predicted_with_its_shape(target, num_classes):
    torch.manual_seed(0)
    net = PudNet(PudNetConfig(target=target, image_size=16, **SMALL))
    x, y = torch.randn(12, 3, 16, 16), torch.arange(12) % num_classes
    params = net.predict(x, y, num_classes)
    model = build_target(target, num_classes, 16)
    expected = {n: p.shape for n, p in model.named_parameters()}
    assert params.keys() == expected.keys()
    for name, shape in expected.items():
        assert params[name].shape == shape, name
        assert torch.isfinite(params[name]).all(), name
    out = functional_call(prepare_template(model), params, (x,))
    assert out.shape == (12, num_classes) and torch.isfinite(out).all()


def test_conv_weights_have_fan_in_scale():
    torch.manual_seed(0)
    net = PudNet(PudNetConfig(target="convnet4", image_size=16, **SMALL))
    params = net.predict(torch.randn(8, 3, 16, 16), torch.arange(8) % 4, 4)
    for name in ("0.weight", "4.weight"):
        w = params[name]
        fan_in = w[0].numel()
        # gain starts at 1: the RMS is exactly sqrt(2 / fan_in) (He init, ReLU follows)
        assert w.pow(2).mean().sqrt().item() == pytest.approx((2 / fan_in) ** 0.5, rel=1e-3)
    assert torch.allclose(params["1.weight"], torch.ones(64))  # norm heads start at identity


def test_classifier_rows_follow_the_episode_class_order():
    """Relabelling the support set (another class order) permutes the classifier's rows and
    nothing else: output c is always the episode's c-th class."""
    torch.manual_seed(0)
    net = PudNet(PudNetConfig(target="convnet4", image_size=16, **SMALL)).eval()
    x, y = torch.randn(20, 3, 16, 16), torch.arange(20) % 5
    perm = torch.tensor([3, 0, 4, 1, 2])  # old class k becomes new class perm[k]
    a = net.predict(x, y, 5)
    b = net.predict(x, perm[y], 5)
    assert torch.allclose(a["4.weight"], b["4.weight"], atol=1e-6)  # conv: order-free
    assert torch.allclose(b["17.weight"][perm], a["17.weight"], atol=1e-6)
    assert torch.allclose(b["17.bias"][perm], a["17.bias"], atol=1e-6)


def test_layer_specs_of_the_targets():
    specs = layer_specs(build_target("convnet4", 10, 32))
    assert [s.kind for s in specs] == ["conv", "norm"] * 4 + ["classifier"]
    specs = layer_specs(build_target("resnet18", 10, 32))
    assert specs[-1].kind == "classifier" and specs[-1].prefix == "fc"
    assert sum(s.kind == "conv" for s in specs) == 20  # 17 3x3 + 3 downsample 1x1


def test_predictor_sizes():
    net = PudNet(PudNetConfig(target="convnet4"))
    assert 1_000_000 < net.num_params() < 3_000_000  # the default predictor for convnet4
