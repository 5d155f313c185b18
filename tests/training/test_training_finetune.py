"""Fine-tuning protocol: predicted init vs random init under identical training."""

import pytest
import torch
from torch import nn

from deepnetsbench.errors import BenchError
from deepnetsbench.training.finetune import finetune, load_predicted, random_init
from deepnetsbench.training.postprocess import add_noise
from deepnetsbench.training.trainer import Budget, TrainConfig, train

torch.set_num_threads(1)


def stripes(n: int, seed: int):
    """2 classes: horizontal vs vertical stripes, plus noise."""
    g = torch.Generator().manual_seed(seed)
    y = torch.randint(0, 2, (n,), generator=g)
    ramp = (torch.arange(6) % 2).float()
    x = 0.5 * torch.randn(n, 1, 6, 6, generator=g)
    x[y == 0] += ramp.view(1, 6, 1)
    x[y == 1] += ramp.view(1, 1, 6)
    return x, y


def net() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU(),
                         nn.Flatten(), nn.Linear(4 * 36, 2))


CFG = TrainConfig(batch_size=16, lr=0.01, lr_ref_batch=16, augment=False)


@pytest.fixture(scope="module")
def data():
    return (*stripes(128, 0), *stripes(64, 1))


def test_same_init_gives_same_numbers(data):
    model = net()
    same = random_init(model, CFG.seed).state_dict()
    res = finetune(model, same, *data, epochs=1, config=CFG)
    assert res.top1 == res.from_random_top1 and res.top5 == res.from_random_top5
    assert res.gain_top1 == 0.0
    assert res.curve.points[-1].epochs == 1.0 and res.random_curve.points[-1].steps == 8


def test_predicted_init_vs_random(data):
    trained = net()
    train(trained, *data, config=TrainConfig(batch_size=16, lr_ref_batch=16, lr=0.1,
                                             augment=False), budget=Budget(epochs=4))
    predicted = {k: v.clone() for k, v in trained.state_dict().items()
                 if "running" not in k and "num_batches" not in k}  # no BN statistics
    model = net()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    res = finetune(model, predicted, *data, epochs=0.5, config=CFG)
    assert res.initial_top1 > 90  # the "prediction" is good before any fine-tuning
    assert res.curve.points[0].top1 == res.initial_top1
    assert res.top1 > res.from_random_top1
    assert res.random_curve.points[0].top1 < 90
    assert all(torch.equal(v, before[k]) for k, v in model.state_dict().items())  # untouched
    d = res.to_dict()
    assert d["gain_top1"] == pytest.approx(res.top1 - res.from_random_top1)

    noisy = finetune(model, predicted, *data, epochs=0.5, config=CFG,
                     postprocess=lambda m: add_noise(m, beta=1.0, min_channels=1))
    assert noisy.initial_top1 != res.initial_top1 or noisy.top1 != res.top1


def test_factory_and_bad_state_dict(data):
    calls = []

    def factory():
        calls.append(1)
        return net()

    res = finetune(net(), None, *data, epochs=0.25, config=CFG, random_model=factory)
    assert calls == [1] and res.epochs == 0.25
    with pytest.raises(BenchError):
        load_predicted(net(), {"0.weight": torch.zeros(4, 1, 3, 3)})
    with pytest.raises(BenchError):
        load_predicted(net(), {**net().state_dict(), "extra": torch.zeros(1)})
