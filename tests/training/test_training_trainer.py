"""Reference trainer: curve recording, budgets, augmentation, determinism (tiny CPU runs)."""

import pytest
import torch
from torch import nn

from deepnetsbench.errors import BenchError
from deepnetsbench.training.trainer import Budget, TrainConfig, augment_batch, train

torch.set_num_threads(1)


def quadrant_data(n: int, seed: int, size: int = 8):
    """4 classes: the bright quadrant of an otherwise noisy image (easy to learn)."""
    g = torch.Generator().manual_seed(seed)
    y = torch.randint(0, 4, (n,), generator=g)
    x = 0.3 * torch.randn(n, 3, size, size, generator=g)
    h = size // 2
    for c in range(4):
        r, q = divmod(c, 2)
        x[y == c, :, r * h:(r + 1) * h, q * h:(q + 1) * h] += 1.5
    return x, y


def tiny_net(seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(),
                         nn.Conv2d(8, 8, 3, stride=2, padding=1), nn.BatchNorm2d(8), nn.ReLU(),
                         nn.Flatten(), nn.Linear(8 * 4 * 4, 4))


@pytest.fixture(scope="module")
def data():
    return (*quadrant_data(256, 0), *quadrant_data(128, 1))


CFG = TrainConfig(batch_size=32, lr=0.05, lr_ref_batch=32, augment=False)


def test_curve_points_fractional_intervals(data):
    model = tiny_net()
    calls = []
    curve = train(model, *data, config=CFG, budget=Budget(epochs=2), eval_every=0.5,
                  callback=lambda c: calls.append(len(c.points)))
    pts = curve.points
    assert [p.steps for p in pts] == [0, 4, 8, 12, 16]  # 8 steps per epoch
    assert [p.epochs for p in pts] == [0, 0.5, 1.0, 1.5, 2.0]
    assert pts[0].seconds == 0.0 and pts[0].train_loss is None
    assert all(b.seconds >= a.seconds for a, b in zip(pts, pts[1:]))
    assert all(p.train_loss is not None and p.train_loss > 0 for p in pts[1:])
    assert curve.finished and curve.status == "done"
    assert calls == [1, 2, 3, 4, 5]
    assert curve.meta["steps_per_epoch"] == 8 and curve.meta["bn_mode"] == "batch"
    assert curve.hardware.startswith("cpu:")
    assert curve.budget == {"epochs": 2, "seconds": None}
    assert pts[-1].top1 > 90 > pts[0].top1  # it learns the easy task
    assert model.training  # caller's mode restored


def test_same_seed_same_run_and_gc(data):
    cfg = TrainConfig(batch_size=32, lr_ref_batch=32, lr=0.05)  # with augmentation
    a = train(tiny_net(), *data, config=cfg, budget=Budget(epochs=1), eval_every=None)
    b = train(tiny_net(), *data, config=cfg, budget=Budget(epochs=1), eval_every=None)
    assert [p.top1 for p in a.points] == [p.top1 for p in b.points]
    assert a.points[-1].train_loss == b.points[-1].train_loss
    assert len(a.points) == 2  # eval_every=None: start and end only

    gc_cfg = TrainConfig(**{**cfg.to_dict(), "optimizer": "gc"})
    c = train(tiny_net(), *data, config=gc_cfg, budget=Budget(epochs=1), eval_every=None)
    assert c.finished and c.config["optimizer"] == "gc"
    assert c.points[-1].train_loss != a.points[-1].train_loss


def test_fractional_epoch_budget_and_seconds_budget(data):
    curve = train(tiny_net(), *data, config=CFG, budget=Budget(epochs=0.25), eval_every=1)
    assert [p.steps for p in curve.points] == [0, 2]
    assert curve.points[-1].epochs == 0.25

    curve = train(tiny_net(), *data, config=CFG, budget=Budget(seconds=0.3), eval_every=2)
    assert curve.finished
    assert curve.total_seconds >= 0.3  # stops only once the budget is used up
    assert curve.points[-1].steps > 0


class NaNNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.lin = nn.Linear(3 * 8 * 8, 4)

    def forward(self, x):
        return self.lin(x.flatten(1)) * float("nan")


def test_divergence_stops_without_finishing(data):
    curve = train(NaNNet(), *data, config=CFG, budget=Budget(epochs=3), eval_every=0.25)
    assert curve.status == "diverged" and not curve.finished
    assert curve.points[-1].steps == 2


def test_augment_batch_crop_and_flip():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(16, 2, 5, 5, generator=g)
    flipped = augment_batch(x, padding=0, hflip=True, generator=torch.Generator().manual_seed(1))
    kinds = [torch.equal(a, b) or torch.equal(a, b.flip(2)) for a, b in zip(flipped, x)]
    assert all(kinds)
    assert any(not torch.equal(a, b) for a, b in zip(flipped, x))  # some flipped

    ones = torch.ones(64, 1, 6, 6)
    cropped = augment_batch(ones, padding=2, hflip=False, generator=torch.Generator().manual_seed(2))
    assert cropped.shape == ones.shape
    # every crop is a window of the zero-padded image: ones form a contiguous rectangle
    # of at least 4x4 pixels, zeros fill the rest
    for img in cropped[:, 0]:
        rows, cols = img.sum(1) > 0, img.sum(0) > 0
        assert rows.sum() >= 4 and cols.sum() >= 4
        assert torch.equal(img, (rows[:, None] & cols[None, :]).float())
    assert len({tuple(c.flatten().tolist()) for c in cropped}) > 5  # offsets vary
    again = augment_batch(ones, padding=2, hflip=False, generator=torch.Generator().manual_seed(2))
    assert torch.equal(cropped, again)


def test_budget_parse():
    assert Budget.parse("5ep") == Budget(epochs=5)
    assert Budget.parse("300s") == Budget(seconds=300)
    assert Budget.parse("10min") == Budget(seconds=600)
    assert Budget.parse("0.25ep,1h") == Budget(epochs=0.25, seconds=3600)
    assert str(Budget.parse("5ep,300s")) == "5ep,300s"
    for bad in ("", "5", "five ep", "-1ep", "0s"):
        with pytest.raises(BenchError):
            Budget.parse(bad)


def test_bad_config_and_data_are_bench_errors(data):
    tx, ty, vx, vy = data
    with pytest.raises(BenchError):
        train(tiny_net(), tx, ty, vx, vy, config=TrainConfig(optimizer="adam"))
    with pytest.raises(BenchError):
        train(tiny_net(), tx, ty[:10], vx, vy, config=CFG)
    with pytest.raises(BenchError):
        train(tiny_net(), tx, ty, vx, vy, config=CFG, eval_every=0)
    with pytest.raises(BenchError):
        train(tiny_net(), tx, ty, vx, vy, config=CFG, device="cuda:0" if not
              torch.cuda.is_available() else "nonsense")
    with pytest.raises(BenchError):
        TrainConfig.from_dict({"lr": 0.1, "epochz": 3})
