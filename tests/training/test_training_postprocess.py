"""Post-processing of predicted parameters: noise and orthogonal re-initialisation."""

import pytest
import torch
from torch import nn

from deepnetsbench.training.postprocess import (
    add_noise,
    orthogonal_factor,
    orthogonal_reinit,
    selected_layers,
)

torch.set_num_threads(1)


def net() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Conv2d(3, 80, 3),         # layer 0: wide, tall as (80, 27)
        nn.BatchNorm2d(80),
        nn.Conv2d(80, 32, 1),        # layer 1: narrow (32 <= 64): untouched
        nn.Conv2d(32, 96, 1),        # layer 2: wide, (96, 32) tall
        nn.Conv2d(96, 72, 3),        # layer 3: wide, (72, 864) wide
        nn.Flatten(), nn.Linear(72, 64),  # layer 4: exactly 64: untouched (strictly more)
    )


def test_selection():
    assert [(i, n) for i, n, _ in selected_layers(net())] == [(0, "0"), (2, "3"), (3, "4")]
    assert [i for i, _, _ in selected_layers(net(), start_layer=3)] == [3]
    assert [i for i, _, _ in selected_layers(net(), min_channels=16)] == [0, 1, 2, 3, 4]


@pytest.mark.parametrize("shape", [(80, 3, 3, 3), (96, 32, 1, 1), (72, 96, 3, 3), (5, 5)])
def test_orthogonal_factor_is_orthonormal(shape):
    w = torch.randn(*shape)
    q = orthogonal_factor(w)
    assert q.shape == w.shape and q.dtype == w.dtype
    q2 = q.reshape(shape[0], -1).double()
    if q2.shape[0] <= q2.shape[1]:
        gram = q2 @ q2.T  # rows orthonormal
    else:
        gram = q2.T @ q2  # columns orthonormal
    assert torch.allclose(gram, torch.eye(gram.shape[0], dtype=gram.dtype), atol=1e-6)
    # sign convention: Q keeps the orientation of W (positive diagonal of R)
    w2 = w.reshape(shape[0], -1).double()
    if q2.shape[0] <= q2.shape[1]:
        assert (torch.diagonal(q2 @ w2.T) > 0).all()
    else:
        assert (torch.diagonal(q2.T @ w2) > 0).all()
    assert torch.allclose(orthogonal_factor(q), q, atol=1e-5)  # idempotent on orthogonal Q


def test_orthogonal_reinit_touches_only_selected():
    model = net()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    assert orthogonal_reinit(model) == 3
    changed = {k for k, v in model.state_dict().items() if not torch.equal(v, before[k])}
    assert changed == {"0.weight", "3.weight", "4.weight"}
    w = model[4].weight.reshape(72, -1)
    assert torch.allclose(w @ w.T, torch.eye(72), atol=1e-5)

    kept = net()
    norm = kept[0].weight.norm().item()
    orthogonal_reinit(kept, keep_norm=True, start_layer=0)
    assert kept[0].weight.norm().item() == pytest.approx(norm, rel=1e-5)


def test_add_noise():
    model = net()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    assert add_noise(model, beta=0.0) == 0
    assert all(torch.equal(v, before[k]) for k, v in model.state_dict().items())

    n = add_noise(model, beta=3e-5, generator=torch.Generator().manual_seed(0))
    assert n == 3
    changed = {k for k, v in model.state_dict().items() if not torch.equal(v, before[k])}
    assert changed == {"0.weight", "3.weight", "4.weight"}
    # noise scale = beta * std(W W^T)
    w0 = before["0.weight"].reshape(80, -1).double()
    expected = 3e-5 * (w0 @ w0.T).std().item()
    delta = (model[0].weight - before["0.weight"]).double()
    assert delta.std().item() == pytest.approx(expected, rel=0.1)

    again = net()
    add_noise(again, beta=3e-5, generator=torch.Generator().manual_seed(0))
    assert torch.equal(again[0].weight, model[0].weight)  # reproducible with a generator
