"""The PREDEFINED split: real models, built for the dataset's classes and resolution.

First the two nets of the official PREDEFINED split, built as the official loader builds
them: ResNet-50 (adjusted for small images, 23,520,842 parameters at 10 classes and 32 px)
and the 12-cell ViT-style DeepNets net (1,012,234). Then every other torchvision
classification model. Below ImageNet size (:func:`~deepnetsbench.space.layout.large_input`)
a model is adjusted for small images the way the official ``adjust_net`` does
(:func:`adjust_for_small_images`). A model that still cannot run at the requested resolution
(Inception-v3, MaxViT at 32x32 ...) is built at the smallest of :data:`FALLBACK_SIZES` where
it runs; the evaluator resizes images for it and records this.
"""

from __future__ import annotations

import warnings
from functools import lru_cache

import torch
from torch import nn

from deepnetsbench.space.genotype import ArchSpec, Genotype, NetArgs
from deepnetsbench.space.layout import large_input

FALLBACK_SIZES = (32, 64, 96, 128, 160, 224)

#: The official ViT-style net: 12 cells, C = 128, attention in normal cells, 3x3 average
#: pooling in the two reduction cells (which keep the width and, in a ViT, the resolution).
DEEPNETS_VIT = ArchSpec(
    Genotype(normal=(("none", 0), ("msa", 1)), normal_concat=(2,),
             reduce=(("none", 0), ("avg_pool_3x3", 1)), reduce_concat=(2,)),
    NetArgs(C=128, n_cells=12, stem_type=0, stem_pool=False, ks=3, norm="bn-track",
            preproc=False, glob_avg=True, fc_layers=0, fc_dim=0, C_mult=1, is_vit=True),
)


@lru_cache(maxsize=1)
def torchvision_names() -> tuple[str, ...]:
    import torchvision

    return tuple(torchvision.models.list_models(module=torchvision.models))


def predefined_names() -> list[str]:
    """``resnet50`` and ``deepnets_vit`` first (the official split), then the rest."""
    rest = [n for n in torchvision_names() if n != "resnet50"]
    return ["resnet50", "deepnets_vit", *rest]


def _crop_first_conv(conv: nn.Conv2d, k: int = 3) -> None:
    """Keep the central k x k window of the kernel, stride 1, 'same' padding."""
    kh, kw = conv.kernel_size
    top, left = (kh - k) // 2, (kw - k) // 2
    if top < 0 or left < 0:
        raise ValueError(f"cannot crop a {kh}x{kw} kernel to {k}x{k}")
    conv.weight = nn.Parameter(conv.weight.detach()[:, :, top:top + k, left:left + k].clone())
    conv.kernel_size, conv.padding, conv.stride = (k, k), (k // 2, k // 2), (1, 1)


def _unstride(module: nn.Module) -> None:
    for m in module.modules():
        if isinstance(m, nn.Conv2d):
            m.stride = (1, 1)


def adjust_for_small_images(model: nn.Module) -> nn.Module:
    """Adapt a torchvision model's first layers to 32x32 inputs, as the official
    ``adjust_net`` does (in place; the model is returned).

    ResNet: conv1 cropped to its central 3x3, stride 1, max-pool removed. DenseNet: the same
    on features[0], features[3] (the pool) removed. MobileNetV2/V3: stride 1 for every conv
    in features[:5]. VGG: the max-pools in features[:10] removed. AlexNet: features[0] stride
    1, features[2] (the pool) removed. MNASNet: layers[0] stride 1. ConvNeXt: stem conv stride
    1. ShuffleNetV2 and GoogLeNet: the first max-pool removed; their first conv keeps its
    stride, because the official code sets the stride on the conv's wrapper module, where
    it has no effect. Any other model is unchanged (as officially, with a warning there).
    """
    from torchvision import models as tv

    if isinstance(model, tv.ResNet):
        _crop_first_conv(model.conv1)
        model.maxpool = nn.Identity()
    elif isinstance(model, tv.DenseNet):
        _crop_first_conv(model.features[0])
        if not isinstance(model.features[3], nn.MaxPool2d):
            raise TypeError(f"unexpected DenseNet layout: features[3] is {model.features[3]}")
        model.features[3] = nn.Identity()
    elif isinstance(model, (tv.MobileNetV2, tv.MobileNetV3)):
        for block in model.features[:5]:
            _unstride(block)
    elif isinstance(model, tv.VGG):
        for i, layer in enumerate(model.features[:10]):
            if isinstance(layer, nn.MaxPool2d):
                model.features[i] = nn.Identity()
    elif isinstance(model, tv.AlexNet):
        model.features[0].stride = (1, 1)
        model.features[2] = nn.Identity()
    elif isinstance(model, tv.MNASNet):
        model.layers[0].stride = (1, 1)
    elif isinstance(model, tv.ShuffleNetV2):
        model.maxpool = nn.Identity()
    elif isinstance(model, tv.GoogLeNet):
        model.maxpool1 = nn.Identity()
    elif isinstance(model, tv.ConvNeXt):
        next(model.features[0].children()).stride = (1, 1)
    return model


def _construct(name: str, num_classes: int, image_size: int) -> nn.Module:
    if name == "deepnets_vit":
        from deepnetsbench.space.network import Network

        return Network(DEEPNETS_VIT, num_classes, image_size)
    import torchvision

    builder = torchvision.models.get_model_builder(name)
    kwargs = {"weights": None, "num_classes": num_classes}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if name.startswith("vit_"):
            return builder(**kwargs, image_size=image_size)
        if name in ("googlenet", "inception_v3"):
            kwargs.update(aux_logits=False, init_weights=False)
        model = builder(**kwargs)
    if not large_input(image_size):
        adjust_for_small_images(model)
    model.expected_input_sz = image_size
    return model


def build_predefined(name: str, num_classes: int = 10, image_size: int = 32,
                     device: str | torch.device | None = None) -> nn.Module:
    """Instantiate a predefined model (on ``device``; ``"meta"`` builds no storage)."""
    if name not in predefined_names():
        raise KeyError(name)
    if device is not None and str(device) == "meta":
        with torch.device("meta"):
            return _construct(name, num_classes, image_size)
    model = _construct(name, num_classes, image_size)
    return model.to(device) if device is not None else model


def runnable_size(name: str, num_classes: int = 10, image_size: int = 32) -> int:
    """The smallest resolution >= ``image_size`` (from FALLBACK_SIZES) at which it runs."""
    for size in [image_size] + [s for s in FALLBACK_SIZES if s > image_size]:
        try:
            model = _meta_or_cpu(name, num_classes, size)
            dev = next(model.parameters()).device
            with torch.no_grad():
                model.eval()(torch.zeros(1, 3, size, size, device=dev))
            return size
        except Exception:  # noqa: BLE001 - any failure means "not at this size"
            continue
    raise RuntimeError(f"{name} runs at none of the sizes {FALLBACK_SIZES}")


def _meta_or_cpu(name: str, num_classes: int, image_size: int) -> nn.Module:
    try:
        return build_predefined(name, num_classes, image_size, device="meta")
    except Exception:  # noqa: BLE001 - some constructors initialise with real data
        return build_predefined(name, num_classes, image_size)


def trace_predefined(name: str, num_classes: int = 10, image_size: int = 32):
    """(graph, size actually used) of a predefined model, traced on the meta device when
    the constructor allows it (no memory, no compute)."""
    from deepnetsbench.graph.trace import graph_from_module

    size = runnable_size(name, num_classes, image_size)
    model = _meta_or_cpu(name, num_classes, size)
    dev = next(model.parameters()).device
    example = torch.randn(1, 3, size, size, device=dev)
    return graph_from_module(model, size, example=example), size
