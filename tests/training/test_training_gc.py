"""Gradient centralization numerics."""

import copy

import pytest
import torch
from torch import nn

from deepnetsbench.training.gc import SGDGC, centralize, centralize_gradients

torch.set_num_threads(1)


def _net_with_grads(seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    net = nn.Sequential(nn.Conv2d(3, 6, 3), nn.BatchNorm2d(6), nn.ReLU(), nn.Flatten(),
                        nn.Linear(6 * 4 * 4, 5))
    x = torch.randn(8, 3, 6, 6)
    y = torch.randint(0, 5, (8,))
    nn.functional.cross_entropy(net(x), y).backward()
    return net


def test_centralize_gradients_rows_have_zero_mean_and_1d_untouched():
    net = _net_with_grads()
    before = {n: p.grad.clone() for n, p in net.named_parameters()}
    centralize_gradients(net.parameters())
    for name, p in net.named_parameters():
        if p.dim() > 1:
            rows = p.grad.reshape(p.shape[0], -1)
            assert rows.mean(1).abs().max() < 1e-7, name
            # the centralized gradient differs from the raw one by a per-row constant
            diff = (before[name] - p.grad).reshape(p.shape[0], -1)
            assert torch.allclose(diff, diff[:, :1].expand_as(diff), atol=1e-7)
            assert not torch.allclose(before[name], p.grad)
        else:
            assert torch.equal(p.grad, before[name]), name


def test_centralize_value():
    t = torch.tensor([[1.0, 2.0, 3.0], [0.0, 0.0, 6.0]])
    assert torch.equal(centralize(t), torch.tensor([[-1.0, 0.0, 1.0], [-2.0, -2.0, 4.0]]))
    v = torch.tensor([1.0, 2.0])
    assert centralize(v) is v


@pytest.mark.parametrize("nesterov", [False, True])
@pytest.mark.parametrize("wd", [0.0, 5e-2])
def test_sgdgc_step_equals_sgd_on_centralized_gradient(wd, nesterov):
    net = _net_with_grads()
    ref = copy.deepcopy(net)
    gc_opt = SGDGC(net.parameters(), lr=0.1, momentum=0.9, weight_decay=wd, nesterov=nesterov)
    # Reference: torch SGD without decay on centralize(g + wd * p).
    sgd = torch.optim.SGD(ref.parameters(), lr=0.1, momentum=0.9, nesterov=nesterov)
    raw = {n: p.grad.clone() for n, p in net.named_parameters()}
    for p, (name, _) in zip(ref.parameters(), net.named_parameters()):
        p.grad = raw[name].clone()
    for step in range(3):  # several steps exercise the momentum buffer
        for p in ref.parameters():
            p.grad = centralize(p.grad + wd * p.detach())
        sgd.step()
        gc_opt.step()
        for (name, p), q in zip(net.named_parameters(), ref.parameters()):
            assert torch.allclose(p, q, atol=1e-6), (step, name)
            assert torch.equal(p.grad, raw[name])  # SGDGC leaves .grad alone
        for p, (name, _) in zip(ref.parameters(), net.named_parameters()):
            p.grad = raw[name].clone()


def test_sgdgc_differs_from_plain_sgd():
    net = _net_with_grads()
    ref = copy.deepcopy(net)
    for p, q in zip(ref.parameters(), net.parameters()):
        p.grad = q.grad.clone()
    SGDGC(net.parameters(), lr=0.1).step()
    torch.optim.SGD(ref.parameters(), lr=0.1).step()
    assert not torch.allclose(net[0].weight, ref[0].weight)
    assert torch.allclose(net[1].weight, ref[1].weight)  # 1-D: plain SGD
