"""The PREDEFINED split: real models, built for the dataset's classes and resolution.

Every torchvision classification model, plus the 12-cell ViT-style DeepNets net (C = 128)
of the original PREDEFINED split. A model that cannot run at the requested resolution
(AlexNet, Inception-v3, MaxViT at 32x32 ...) is built at the smallest of
:data:`FALLBACK_SIZES` where it runs; the evaluator resizes images for it and records this.
"""

from __future__ import annotations

import warnings
from functools import lru_cache

import torch
from torch import nn

from deepnetsbench.space.genotype import ArchSpec, Genotype, NetArgs

FALLBACK_SIZES = (32, 64, 96, 128, 160, 224)

#: The ViT-style DeepNets net: 12 cells of self-attention, C = 128, no reductions of width.
DEEPNETS_VIT = ArchSpec(
    Genotype(normal=(("msa", 1), ("none", 0)), normal_concat=(2,),
             reduce=(("msa", 1), ("none", 0)), reduce_concat=(2,)),
    NetArgs(C=128, n_cells=12, stem_type=0, stem_pool=False, ks=3, norm="bn", preproc=False,
            glob_avg=True, fc_layers=1, fc_dim=256, C_mult=1, is_vit=True),
)


@lru_cache(maxsize=1)
def torchvision_names() -> tuple[str, ...]:
    import torchvision

    return tuple(torchvision.models.list_models(module=torchvision.models))


def predefined_names() -> list[str]:
    """``resnet50`` and ``deepnets_vit`` first (the original split), then the rest."""
    rest = [n for n in torchvision_names() if n != "resnet50"]
    return ["resnet50", "deepnets_vit", *rest]


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
        return builder(**kwargs)


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
