"""Gradient centralization (Yong et al., "Gradient Centralization: A New Optimization
Technique for Deep Neural Networks", ECCV 2020).

GC projects the gradient of every multi-dimensional weight (conv kernels, linear matrices)
so that, for each output unit, it has zero mean over the unit's inputs: the gradient
``g`` of shape ``[out, ...]`` becomes ``g - mean(g over all dims but 0)``. Biases and norm
parameters (1-D) are left alone. PudNet's headline speedup (2,300x) is measured against
SGD with GC, so the suite ships it as a reference trainer.
"""

from __future__ import annotations

from collections.abc import Iterable

import torch
from torch.optim import Optimizer

__all__ = ["centralize", "centralize_gradients", "SGDGC"]


def centralize(t: torch.Tensor) -> torch.Tensor:
    """``t`` minus its mean over every dim but the first (a new tensor); 1-D ``t`` unchanged."""
    if t.dim() <= 1:
        return t
    return t - t.mean(dim=tuple(range(1, t.dim())), keepdim=True)


@torch.no_grad()
def centralize_gradients(params: Iterable[torch.Tensor]) -> None:
    """Centralize, in place, the ``.grad`` of every parameter with more than one dim."""
    for p in params:
        g = p.grad
        if g is None or g.dim() <= 1:
            continue
        g.sub_(g.mean(dim=tuple(range(1, g.dim())), keepdim=True))


class SGDGC(Optimizer):
    """SGD with momentum and gradient centralization.

    Same update as :class:`torch.optim.SGD` (``lr``, ``momentum``, ``dampening``,
    ``weight_decay``, ``nesterov``) except that, as in the GC reference optimizer, the weight
    decay term is folded into the gradient first and the sum is centralized:
    ``d = centralize(g + wd * p)`` for parameters with more than one dim, ``d = g + wd * p``
    otherwise; then the usual momentum buffer and step. ``p.grad`` itself is not modified.
    """

    def __init__(
        self,
        params,
        lr: float = 0.1,
        momentum: float = 0.0,
        dampening: float = 0.0,
        weight_decay: float = 0.0,
        nesterov: bool = False,
    ):
        if lr < 0:
            raise ValueError(f"invalid learning rate {lr}")
        if momentum < 0 or weight_decay < 0:
            raise ValueError("momentum and weight_decay must be >= 0")
        if nesterov and (momentum <= 0 or dampening != 0):
            raise ValueError("nesterov needs momentum > 0 and dampening 0")
        defaults = dict(lr=lr, momentum=momentum, dampening=dampening,
                        weight_decay=weight_decay, nesterov=nesterov)
        super().__init__(params, defaults)

    @torch.no_grad()
    def step(self, closure=None):
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            lr, momentum, dampening = group["lr"], group["momentum"], group["dampening"]
            wd, nesterov = group["weight_decay"], group["nesterov"]
            for p in group["params"]:
                if p.grad is None:
                    continue
                d = p.grad
                if wd != 0:
                    d = d.add(p, alpha=wd)
                d = centralize(d)
                if momentum != 0:
                    state = self.state[p]
                    buf = state.get("momentum_buffer")
                    if buf is None:
                        buf = state["momentum_buffer"] = d.detach().clone()
                    else:
                        buf.mul_(momentum).add_(d, alpha=1 - dampening)
                    d = d.add(buf, alpha=momentum) if nesterov else buf
                p.add_(d, alpha=-lr)
        return loss
