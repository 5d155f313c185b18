"""Built-in reference methods: the floors any parameter predictor must beat.

``--method random|kaiming|orthogonal|mean``. None of them looks at images or at the
architecture's graph; they differ only in how each tensor is drawn. Every draw uses
``task.seed`` (derived from ``--seed`` and the architecture's index), so a run is
reproducible.

Tensor roles, decided from the owning module:

- *weights*: the ``weight`` of ``Conv1d/2d/3d``, ``ConvTranspose*`` and ``Linear`` modules;
- *biases*: their ``bias``;
- *norm*: the affine ``weight``/``bias`` of BatchNorm, LayerNorm, GroupNorm, InstanceNorm;
- *other*: everything else (e.g. positional encodings, attention in-projections of
  ``nn.MultiheadAttention``), which keeps the PyTorch default initialisation the model
  was built with (under the architecture's seed).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator

import torch
from torch import nn

from deepnetsbench.eval.methods import MethodBase, MethodMeta, Task

__all__ = ["BUILTIN_METHODS", "KaimingInit", "MeanInit", "OrthogonalInit", "RandomInit",
           "param_roles"]

_WEIGHTED = (nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.ConvTranspose1d, nn.ConvTranspose2d,
             nn.ConvTranspose3d, nn.Linear)
_NORMS = (nn.modules.batchnorm._NormBase, nn.LayerNorm, nn.GroupNorm)

RELU_GAIN = math.sqrt(2.0)


def param_roles(model: nn.Module) -> Iterator[tuple[str, torch.Tensor, str]]:
    """``(qualified name, parameter, role)`` for every parameter of ``model``, once each.

    role is ``weight``, ``bias``, ``norm_weight``, ``norm_bias`` or ``other``."""
    seen: set[int] = set()
    for prefix, module in model.named_modules():
        for name, p in module.named_parameters(recurse=False):
            if p is None or id(p) in seen:
                continue
            seen.add(id(p))
            if isinstance(module, _WEIGHTED):
                role = "weight" if name == "weight" else "bias" if name == "bias" else "other"
            elif isinstance(module, _NORMS):
                role = ("norm_weight" if name == "weight" else
                        "norm_bias" if name == "bias" else "other")
            else:
                role = "other"
            yield (f"{prefix}.{name}" if prefix else name), p, role


def _fan_in(w: torch.Tensor) -> int:
    # Conv/Linear weights are [out, in/groups, *kernel]: fan-in is everything but dim 0
    # (torch's convention, also for transposed convolutions).
    return max(1, w[0].numel())


def _generator(device: torch.device, seed: int) -> torch.Generator:
    return torch.Generator(device=device).manual_seed(int(seed))


class _PerTensor(MethodBase):
    """Return a state dict whose conv/linear weights come from ``draw_weight``."""

    def draw_weight(self, w: torch.Tensor, g: torch.Generator) -> torch.Tensor:
        raise NotImplementedError

    def predict(self, model: nn.Module, task: Task) -> dict[str, torch.Tensor]:
        g = _generator(task.device, task.seed)
        out: dict[str, torch.Tensor] = {}
        with torch.no_grad():
            for name, p, role in param_roles(model):
                if role == "weight":
                    out[name] = self.draw_weight(p, g)
                elif role in ("bias", "norm_bias"):
                    out[name] = torch.zeros_like(p)
                elif role == "norm_weight":
                    out[name] = torch.ones_like(p)
                else:
                    out[name] = p.detach().clone()
        return out


class RandomInit(MethodBase):
    """PyTorch's default initialisation: every module's ``reset_parameters()``, seeded.

    Fills the model in place (returns ``None``)."""

    meta = MethodMeta(name="random", version="1", description=(
        "PyTorch default initialisation (reset_parameters) under the architecture's seed"))

    def predict(self, model: nn.Module, task: Task) -> None:
        torch.manual_seed(task.seed)
        with torch.no_grad():
            for module in model.modules():
                reset = getattr(module, "reset_parameters", None)
                if callable(reset):
                    reset()
                elif isinstance(module, nn.MultiheadAttention):
                    module._reset_parameters()
        return None


class KaimingInit(_PerTensor):
    """Fan-in normal weights (std = sqrt(2 / fan_in)), zero biases, norm weight 1, bias 0."""

    meta = MethodMeta(name="kaiming", version="1", description=(
        "Kaiming fan-in normal conv/linear weights, zero biases, norm weight 1 bias 0"))

    def draw_weight(self, w: torch.Tensor, g: torch.Generator) -> torch.Tensor:
        std = RELU_GAIN / math.sqrt(_fan_in(w))
        return torch.empty_like(w).normal_(0.0, std, generator=g)


class OrthogonalInit(_PerTensor):
    """Orthogonal conv/linear weights (rows of the ``[out, in*k*k]`` matrix orthonormal,
    scaled by ``gain``, default sqrt(2) as for ReLU), zero biases, norm weight 1, bias 0."""

    meta = MethodMeta(name="orthogonal", version="1", description=(
        "orthogonal conv/linear weights (gain sqrt 2), zero biases, norm weight 1 bias 0"))

    def __init__(self, gain: float = RELU_GAIN):
        self.gain = float(gain)

    def draw_weight(self, w: torch.Tensor, g: torch.Generator) -> torch.Tensor:
        return nn.init.orthogonal_(torch.empty_like(w), gain=self.gain, generator=g)


class MeanInit(_PerTensor):
    """The average of ``draws`` independent Kaiming draws of each weight (default 8).

    A deliberately weak floor: averaging shrinks every weight toward zero (std divided by
    sqrt(draws)); with BatchNorm the scale is normalised away, without it the signal
    fades with depth. It stands for "predict the mean of a distribution of weights", the
    trivial predictor a hypernetwork collapses to when it ignores the architecture."""

    meta = MethodMeta(name="mean", version="1", description=(
        "average of 8 Kaiming draws per weight (shrunk toward 0), zero biases, norm 1/0"))

    def __init__(self, draws: int = 8):
        if int(draws) < 1:
            raise ValueError(f"draws must be >= 1, got {draws}")
        self.draws = int(draws)

    def draw_weight(self, w: torch.Tensor, g: torch.Generator) -> torch.Tensor:
        std = RELU_GAIN / math.sqrt(_fan_in(w))
        acc = torch.zeros_like(w)
        sample = torch.empty_like(w)
        for _ in range(self.draws):
            acc += sample.normal_(0.0, std, generator=g)
        return acc.div_(self.draws)


BUILTIN_METHODS: dict[str, Callable[..., MethodBase]] = {
    "random": RandomInit,
    "kaiming": KaimingInit,
    "orthogonal": OrthogonalInit,
    "mean": MeanInit,
}
