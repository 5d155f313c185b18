"""The target architectures of the dataset-episode suites.

On the episode axis the architecture is fixed and the *data* are unseen, so a suite names
the networks a method must produce parameters for. The registry is deliberately small and
closed: a result for ``convnet4`` means the same network everywhere.

- ``convnet4``: the classic few-shot backbone, four blocks of 3x3 conv (64 channels, no
  bias) -> BatchNorm -> ReLU -> 2x2 max-pool, then a flatten and one linear classifier
  (at 32x32 input: 64 x 2 x 2 = 256 features).
- ``resnet18``: torchvision's ResNet-18 with the CIFAR stem (3x3 stride-1 conv, no
  max-pool) for 32x32 input, as built by
  :func:`deepnetsbench.training.models.build_reference_model`.

Labels: output ``c`` of the classifier is the episode's ``c``-th class (its class list is
the label order), see docs/episodes.md.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from torch import nn

from deepnetsbench.errors import BenchError

__all__ = ["TARGETS", "TargetInfo", "build_target", "convnet4", "target_info"]


def convnet4(num_classes: int = 10, image_size: int = 32, in_channels: int = 3,
             width: int = 64) -> nn.Module:
    """Four conv(3x3)-BN-ReLU-maxpool(2) blocks of ``width`` channels, flatten, linear."""
    if image_size < 16:
        raise BenchError(f"convnet4 needs images of at least 16 px, got {image_size}",
                         "build the suite with --image-size 16 or more")
    layers: list[nn.Module] = []
    cin = in_channels
    for _ in range(4):
        layers += [nn.Conv2d(cin, width, 3, padding=1, bias=False), nn.BatchNorm2d(width),
                   nn.ReLU(inplace=True), nn.MaxPool2d(2)]
        cin = width
    side = image_size // 16
    layers += [nn.Flatten(), nn.Linear(width * side * side, num_classes)]
    return nn.Sequential(*layers)


def _resnet18(num_classes: int = 10, image_size: int = 32, in_channels: int = 3) -> nn.Module:
    from deepnetsbench.training.models import build_reference_model

    return build_reference_model("resnet18", num_classes, image_size, in_channels)


@dataclass(frozen=True)
class TargetInfo:
    """A registered target network: how to build it and what it is, in words."""

    name: str
    build: Callable[..., nn.Module]
    description: str


TARGETS: dict[str, TargetInfo] = {
    t.name: t
    for t in [
        TargetInfo("convnet4", convnet4,
                   "4 x (conv3x3 64ch, BN, ReLU, maxpool2), flatten, linear"),
        TargetInfo("resnet18", _resnet18,
                   "torchvision ResNet-18, CIFAR stem (3x3 stride 1, no max-pool)"),
    ]
}


def target_info(name: str) -> TargetInfo:
    """The registered target ``name`` or a BenchError listing the known ones."""
    if name not in TARGETS:
        raise BenchError(f"unknown target architecture {name!r}",
                         f"use one of {', '.join(TARGETS)}")
    return TARGETS[name]


def build_target(name: str, num_classes: int = 10, image_size: int = 32,
                 in_channels: int = 3) -> nn.Module:
    """A fresh (randomly initialised, PyTorch defaults) instance of target ``name``."""
    return target_info(name).build(num_classes=num_classes, image_size=image_size,
                                   in_channels=in_channels)
