"""Built-in methods: what each draws, reproducibility, and each one end to end."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from deepnetsbench.eval.builtin import (
    KaimingInit,
    MeanInit,
    OrthogonalInit,
    RandomInit,
    param_roles,
)
from deepnetsbench.eval.methods import Task


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(16, 64, 3)
        self.bn = nn.BatchNorm2d(64)
        self.ln = nn.LayerNorm(64)
        self.fc = nn.Linear(64 * 9, 256)
        self.pos = nn.Parameter(torch.full((1, 4), 0.5))


def _task(seed: int = 0) -> Task:
    return Task(arch=None, dataset="x", num_classes=10, image_size=32, classes=[],
                device=torch.device("cpu"), seed=seed)


def test_param_roles():
    roles = {n: r for n, _, r in param_roles(Net())}
    assert roles == {"conv.weight": "weight", "conv.bias": "bias", "bn.weight": "norm_weight",
                     "bn.bias": "norm_bias", "ln.weight": "norm_weight", "ln.bias": "norm_bias",
                     "fc.weight": "weight", "fc.bias": "bias", "pos": "other"}


@pytest.mark.parametrize("cls", [KaimingInit, OrthogonalInit, MeanInit])
def test_state_dict_methods_cover_every_parameter(cls):
    net = Net()
    out = cls().predict(net, _task())
    assert set(out) == {n for n, _ in net.named_parameters()}
    for name, p in net.named_parameters():
        assert out[name].shape == p.shape
    assert torch.equal(out["bn.weight"], torch.ones(64)) and torch.equal(out["bn.bias"], torch.zeros(64))
    assert torch.equal(out["conv.bias"], torch.zeros(64))
    assert torch.equal(out["pos"], net.pos.detach())  # "other" tensors keep their init


def test_kaiming_std_and_seed():
    net = Net()
    a = KaimingInit().predict(net, _task(1))["fc.weight"]
    b = KaimingInit().predict(net, _task(1))["fc.weight"]
    c = KaimingInit().predict(net, _task(2))["fc.weight"]
    assert torch.equal(a, b) and not torch.equal(a, c)
    assert a.std().item() == pytest.approx(math.sqrt(2 / (64 * 9)), rel=0.03)


def test_orthogonal_rows_orthonormal_times_gain():
    w = OrthogonalInit().predict(Net(), _task())["conv.weight"].flatten(1)  # [64, 144]
    gram = w @ w.T / 2.0  # gain sqrt(2) squared
    assert torch.allclose(gram, torch.eye(64), atol=1e-4)


def test_mean_shrinks_by_sqrt_draws():
    net = Net()
    k = KaimingInit().predict(net, _task())["fc.weight"].std().item()
    m = MeanInit(draws=8).predict(net, _task())["fc.weight"].std().item()
    assert m == pytest.approx(k / math.sqrt(8), rel=0.05)
    with pytest.raises(ValueError):
        MeanInit(draws=0)


def test_random_is_default_init_in_place_and_seeded():
    a, b = Net(), Net()
    assert RandomInit().predict(a, _task(5)) is None
    RandomInit().predict(b, _task(5))
    for (n, pa), (_, pb) in zip(a.named_parameters(), b.named_parameters()):
        assert torch.equal(pa, pb), n
    c = Net()
    RandomInit().predict(c, _task(6))
    assert not torch.equal(a.conv.weight, c.conv.weight)
    bound = 1 / math.sqrt(16 * 9)  # torch's default conv init is U(-1/sqrt(fan_in), ...)
    assert a.conv.weight.abs().max().item() <= bound + 1e-6


@pytest.mark.parametrize("name", ["random", "kaiming", "orthogonal", "mean"])
def test_builtin_end_to_end_on_mock(run_eval, name):
    res = run_eval(name)
    assert [r.index for r in res.records] == [1, 3]
    for r in res.records:
        assert r.status == "ok", r.error
        assert 0 <= r.top1 <= r.top5 <= 100
        assert r.predict_time_s > 0 and r.num_params > 0 and r.flops > 0
    assert res.method.builtin and res.method.name == name
    assert res.aggregates.n == 2 and res.aggregates.n_ok == 2
    assert res.protocol.extra["complete"] is True
