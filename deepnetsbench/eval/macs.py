"""Multiply-accumulates of a DeepNets-1M network from its spec, without torch.

The shard partition needs the compute of every architecture of a split before anything is
built; building 500 networks to count them would cost more than the balance gains. This
reads the shape plan the torch builder reads (:func:`deepnetsbench.space.layout.plan_network`:
widths, strides, resolutions, live parts) and adds, per live layer, what
:func:`deepnetsbench.eval.runner.count_macs` counts on the built model: conv weight elements
x output positions, linear weight elements x tokens (attention's projections and
feed-forward included; the attention matmuls themselves are not). Dead layers are built but
never run, so they cost nothing here either. A test checks the two agree on every kind of
split.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from typing import Any

from deepnetsbench.space.layout import (
    FACTORIZED_REDUCE,
    RELU_CONV_BN,
    CellPlan,
    OpPlan,
    StemPlan,
    conv_side,
    halve,
    plan_network,
)
from deepnetsbench.space.primitives import parse_op

__all__ = ["module_macs", "spec_macs"]


def _stem_macs(stem: StemPlan, image_size: int, in_channels: int = 3) -> int:
    k, s, p = stem.kernel, stem.stride, stem.padding
    if stem.kind == "vit":
        return stem.channels * in_channels * k * k * stem.side0 ** 2
    if stem.kind == "simple":
        side = conv_side(image_size, k, s, p)  # before the optional max-pool
        return stem.channels * in_channels * k * k * side ** 2
    c, half = stem.channels, stem.channels // 2
    a = conv_side(image_size, k, s, p)
    return (half * in_channels * k * k * a ** 2 + c * half * 9 * stem.side0 ** 2
            + c * c * 9 * stem.side1 ** 2)


def _preprocess_macs(kind: str, c_in: int, c_out: int, side: int) -> int:
    if kind == FACTORIZED_REDUCE:
        return 2 * (c_out // 2) * c_in * side ** 2
    if kind == RELU_CONV_BN:
        return c_out * c_in * side ** 2
    return 0  # Stride / identity


def _op_macs(op: OpPlan, side_in: int) -> int:
    family, k = parse_op(op.name)
    ci, co = op.c_in, op.c_out
    so = halve(side_in) if op.stride > 1 else side_in
    if family == "skip_connect":
        return 2 * (co // 2) * ci * so ** 2 if op.stride > 1 else 0
    if family == "conv":
        return co * ci * k * k * so ** 2
    if family == "conv2":  # 1 x k (stride along the width only), then k x 1
        return ci * ci * k * side_in * so + co * ci * k * so ** 2
    if family == "sep_conv":
        return ci * k * k * so ** 2 + ci * ci * so ** 2 + ci * k * k * so ** 2 + co * ci * so ** 2
    if family == "dil_conv":
        return ci * k * k * so ** 2 + co * ci * so ** 2
    if family == "msa":  # computed at the input's resolution, subsampled after
        inner, tokens = 8 * (ci // 8), side_in ** 2
        return (3 * inner * ci + co * inner + 2 * ci * co) * tokens
    if family == "cse":  # on the squeezed (1 x 1) channels
        return 2 * ci * (ci // 2)
    return 0  # none, pools


def _cell_macs(cell: CellPlan) -> int:
    if not cell.live:
        return 0
    total = 0
    if cell.reads[0]:
        total += _preprocess_macs(cell.preprocess0, cell.c_pp, cell.c_out, cell.side_in)
    if cell.reads[1]:
        total += _preprocess_macs(cell.preprocess1, cell.c_p, cell.c_out, cell.side_in)
    # ops on the cell inputs see side_in (and may stride); ops on steps see the cell's side
    return total + sum(_op_macs(op, cell.side_in if op.input < 2 else cell.side_out)
                       for op in cell.ops if op.live)


def spec_macs(spec: Any, num_classes: int = 10, image_size: int = 32) -> int:
    """MACs for one image of ``build_model(spec, num_classes, image_size)``: conv and linear
    layers of its live parts, as ``count_macs`` counts them on the built model."""
    plan = plan_network(spec, num_classes, image_size)
    total = _stem_macs(plan.stem, image_size)
    total += sum(_cell_macs(cell) for cell in plan.cells)
    total += sum(n_in * n_out for n_in, n_out in plan.classifier)
    return int(total)


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
