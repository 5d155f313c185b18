"""The fixed target architectures."""

from __future__ import annotations

import pytest
import torch

from deepnetsbench.episodes import TARGETS, build_target
from deepnetsbench.errors import BenchError


@pytest.mark.parametrize("name, n_params", [("convnet4", 1728 + 3 * 36864 + 4 * 128 + 256 * 5 + 5),
                                            ("resnet18", None)])
def test_targets_build_at_32px(name, n_params):
    model = build_target(name, num_classes=5, image_size=32)
    out = model(torch.randn(2, 3, 32, 32))
    assert out.shape == (2, 5)
    if n_params is not None:
        assert sum(p.numel() for p in model.parameters()) == n_params
    if name == "resnet18":  # CIFAR stem: 3x3 stride-1 first conv, no max-pool
        assert model.conv1.kernel_size == (3, 3) and model.conv1.stride == (1, 1)
        assert isinstance(model.maxpool, torch.nn.Identity)


def test_convnet4_layout():
    m = build_target("convnet4", 10, 32)
    convs = [x for x in m if isinstance(x, torch.nn.Conv2d)]
    assert len(convs) == 4 and all(c.out_channels == 64 and c.bias is None for c in convs)
    assert m[-1].in_features == 256  # 64 x 2 x 2 after four 2x2 pools


def test_unknown_target():
    assert set(TARGETS) == {"convnet4", "resnet18"}
    with pytest.raises(BenchError, match="unknown target"):
        build_target("vgg11")
