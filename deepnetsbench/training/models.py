"""Small reference models for the trainers' CLI, benchmarks and tests.

``convnet``: a 4-conv BatchNorm network (fast on CPU). ``resnet18``: torchvision's
ResNet-18; for small images (<= 64 px) with the usual CIFAR stem (3x3 stride-1 conv, no
max-pool) so that 32x32 inputs are not shrunk to 1x1 feature maps. Any other torchvision
classification model by name.
"""

from __future__ import annotations

from torch import nn

from deepnetsbench.errors import BenchError

__all__ = ["build_reference_model", "convnet"]


def convnet(num_classes: int = 10, in_channels: int = 3, width: int = 32) -> nn.Module:
    """conv-bn-relu x4 (two stride-2), global average pooling, linear."""
    def block(cin: int, cout: int, stride: int) -> list[nn.Module]:
        return [nn.Conv2d(cin, cout, 3, stride, 1, bias=False), nn.BatchNorm2d(cout),
                nn.ReLU(inplace=True)]

    w = width
    return nn.Sequential(
        *block(in_channels, w, 1), *block(w, 2 * w, 2), *block(2 * w, 4 * w, 2),
        *block(4 * w, 4 * w, 1), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
        nn.Linear(4 * w, num_classes),
    )


def build_reference_model(name: str, num_classes: int = 10, image_size: int = 32,
                          in_channels: int = 3) -> nn.Module:
    """``convnet``, ``resnet18`` (CIFAR stem for small images) or a torchvision model name."""
    if name == "convnet":
        return convnet(num_classes, in_channels)
    import torchvision

    try:
        model = torchvision.models.get_model(name, weights=None, num_classes=num_classes)
    except ValueError as err:
        raise BenchError(f"unknown model {name!r}",
                         "use convnet, resnet18 or a torchvision classification model name"
                         ) from err
    if name.startswith("resnet") and hasattr(model, "conv1"):
        if image_size <= 64 or in_channels != 3:
            stride = 1 if image_size <= 64 else 2
            model.conv1 = nn.Conv2d(in_channels, model.conv1.out_channels, 3, stride, 1,
                                    bias=False)
        if image_size <= 64:
            model.maxpool = nn.Identity()
    elif in_channels != 3:
        raise BenchError(f"{name} expects 3-channel images, data have {in_channels}",
                         "use convnet or resnet18, or convert the images to RGB")
    return model
