"""``deepnets-bench train-ref`` on tiny in-memory data (the loader is replaced)."""

import torch
from click.testing import CliRunner

from deepnetsbench.training import commands
from deepnetsbench.training.curve import Curve

torch.set_num_threads(1)


def fake_loader(dataset, root, image_size, train_limit, test_limit):
    g = torch.Generator().manual_seed(0)
    x = torch.randn(48, 3, 8, 8, generator=g)
    y = torch.randint(0, 3, (48,), generator=g)
    return x, y, x[:16], y[:16], 3, "fake-sha"


def test_train_ref_writes_curve(tmp_path, monkeypatch):
    monkeypatch.setattr(commands, "_load_tensors", fake_loader)
    out = tmp_path / "curve.json"
    result = CliRunner().invoke(commands.train_ref, [
        "--model", "convnet", "--dataset", "fake", "--trainer", "gc", "--budget", "1ep",
        "--eval-every", "0.5", "--batch-size", "8", "--out", str(out)])
    assert result.exit_code == 0, result.output
    curve = Curve.load(out)
    assert curve.finished and curve.config["optimizer"] == "gc"
    assert [p.steps for p in curve.points] == [0, 3, 6]
    assert curve.meta["dataset_sha256"] == "fake-sha" and curve.meta["model"] == "convnet"


def test_train_ref_bad_budget(tmp_path, monkeypatch):
    monkeypatch.setattr(commands, "_load_tensors", fake_loader)
    result = CliRunner().invoke(commands.train_ref, ["--budget", "soon",
                                                     "--out", str(tmp_path / "c.json")])
    assert result.exit_code != 0
    assert "cannot parse budget" in str(result.exception)


def test_reference_models():
    import pytest

    from deepnetsbench.errors import BenchError
    from deepnetsbench.training.models import build_reference_model

    m = build_reference_model("resnet18", num_classes=7, image_size=32, in_channels=1)
    assert m.conv1.kernel_size == (3, 3) and m.conv1.in_channels == 1
    with torch.no_grad():
        assert m.eval()(torch.randn(2, 1, 32, 32)).shape == (2, 7)
        assert build_reference_model("convnet", 5).eval()(torch.randn(2, 3, 16, 16)).shape == (2, 5)
    with pytest.raises(BenchError):
        build_reference_model("no_such_net")
