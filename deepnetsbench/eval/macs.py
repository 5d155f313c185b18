"""Multiply-accumulates of a DeepNets-1M network from its spec, without torch.

The shard partition needs the compute of every architecture of a split before anything is
built; building 500 networks to count them would cost more than the balance gains. This
walks the same op-by-op derivation as :mod:`deepnetsbench.graph.derive` (which already
tracks channels and resolution) and adds, per layer, what
:func:`deepnetsbench.eval.runner.count_macs` counts on the built model: conv weight
elements x output positions, linear weight elements x tokens (attention's qkv/proj
included). A test checks the two agree on every kind of split.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Callable, Iterator
from typing import Any

from deepnetsbench.graph import derive

__all__ = ["module_macs", "spec_macs"]


class _MacCounter(derive.GraphBuilder):
    """A graph builder that also keeps each node's number of spatial positions and sums the
    MACs of the layers it emits."""

    def __init__(self) -> None:
        super().__init__(with_graph=False)
        self.positions: list[int] = []
        self.macs = 0

    def _node(self, kind: str, preds: frozenset, name=None, shape=()) -> int:
        idx = super()._node(kind, preds, name, shape)
        # A node has the resolution of its inputs unless the layer methods below say
        # otherwise (convs, pools); global pooling leaves one position.
        pos = 1 if kind == "glob_avg" or not preds else self.positions[min(preds)]
        self.positions.append(pos)
        if kind in ("msa", "cse") and len(shape) >= 2:  # linear/1x1 layers inside ops
            self.macs += math.prod(shape) * pos
        return idx

    def input(self, c: int, h: int, w: int) -> derive.Sym:
        x = super().input(c, h, w)
        self.positions[-1] = h * w
        return x

    def conv(self, x: derive.Sym, name: str, cout: int, k, s=1, p=0, d=1, groups=1,
             kind="conv") -> derive.Sym:
        y = super().conv(x, name, cout, k, s, p, d, groups, kind)
        kh, kw = (k, k) if isinstance(k, int) else k
        self.positions[-1] = y.h * y.w
        self.macs += cout * (x.c // groups) * kh * kw * y.h * y.w
        return y

    def pool(self, x: derive.Sym, kind: str, k: int, s: int, p: int) -> derive.Sym:
        y = super().pool(x, kind, k, s, p)
        self.positions[-1] = y.h * y.w
        return y

    def linear(self, x: derive.Sym, name: str, cout: int, kind: str = "conv") -> derive.Sym:
        self.macs += cout * x.c
        return super().linear(x, name, cout, kind)


def spec_macs(spec: Any, num_classes: int = 10, image_size: int = 32) -> int:
    """MACs for one image of ``Network(spec, num_classes, image_size)``: conv and linear
    layers, including attention's projections (the attention matmuls themselves excluded),
    as ``count_macs`` counts them on the built model."""
    g = _MacCounter()
    x = derive._body(g, spec, image_size)
    a = spec.args
    c = x.c if a.glob_avg else x.c * x.h * x.w  # the head sees pooled or flattened features
    head = derive.Sym(x.nodes, c, 1, 1)
    for k in range(a.fc_layers - 1):
        head = g.linear(head, f"classifier.{2 * k}", a.fc_dim)
    g.linear(head, "classifier.last", num_classes)
    return int(g.macs)


@contextlib.contextmanager
def _params_on_meta() -> Iterator[None]:
    """Every parameter and buffer registered inside the block lands on the ``meta`` device.

    Unlike ``with torch.device("meta")`` this leaves the constructor's own tensor arithmetic
    on the CPU (torchvision's RegNets compute their widths with tensors and ``tolist``).
    Patches ``nn.Module`` for the duration of the block: not thread-safe."""
    from torch import nn

    register_parameter, register_buffer = nn.Module.register_parameter, nn.Module.register_buffer

    def parameter(self: nn.Module, name: str, param: Any) -> None:
        if param is not None and param.device.type != "meta":
            param = nn.Parameter(param.detach().to("meta"), requires_grad=param.requires_grad)
        register_parameter(self, name, param)

    def buffer(self: nn.Module, name: str, tensor: Any, persistent: bool = True) -> None:
        register_buffer(self, name, None if tensor is None else tensor.to("meta"), persistent)

    nn.Module.register_parameter, nn.Module.register_buffer = parameter, buffer
    try:
        yield
    finally:
        nn.Module.register_parameter, nn.Module.register_buffer = register_parameter, register_buffer


def module_macs(build: Callable[[], Any], image_size: int) -> int:
    """MACs for one image of the model ``build()`` returns, counted by
    ``count_macs``'s hooks on the ``meta`` device: no weights are allocated or computed, so
    even a 600 M-parameter model takes a fraction of a second."""
    import torch

    from deepnetsbench.eval.runner import count_macs

    with _params_on_meta():
        model = build()
    return count_macs(model, image_size, torch.device("meta"))
