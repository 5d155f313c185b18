"""The DeepNets-1M network: a stem, a stack of DARTS-style cells, and a classifier head.

Built from the shape plan of :mod:`deepnetsbench.space.layout` (which the torch-free graph
derivation reads too) with the official module names, so the state_dict of an official
network loads with ``strict=True``. Every module the official builder creates is created
here, dead ones included (they count in the parameters); the forward pass computes only
what reaches the output, which gives the same logits and the same autograd graph.
"""

from __future__ import annotations

import torch
from torch import nn

from deepnetsbench.space.genotype import ArchSpec
from deepnetsbench.space.layout import (
    FACTORIZED_REDUCE,
    RELU_CONV_BN,
    STRIDE,
    CellPlan,
    NetPlan,
    plan_network,
    reduction_cells,
)
from deepnetsbench.space.ops import (
    FactorizedReduce,
    PosEnc,
    ReLUConvBN,
    Stride,
    bn_layer,
    conv,
    make_op,
)

__all__ = ["Cell", "Network", "build_model", "reduction_cells"]


def _preprocess(kind: str, c_in: int, c_out: int, norm: str | None) -> nn.Module:
    if kind == FACTORIZED_REDUCE:
        return FactorizedReduce(c_in, c_out, norm)
    if kind == RELU_CONV_BN:
        return ReLUConvBN(c_in, c_out, norm=norm)
    if kind == STRIDE:
        return Stride(2)
    return nn.Identity()


class Cell(nn.Module):
    """One cell: preprocess both inputs, run the steps, concatenate the ``concat`` states.

    Steps whose two ops are skipped (``none`` or reading an empty state) are empty; empty
    concat states become zeros shaped like the first non-empty one, as officially."""

    def __init__(self, plan: CellPlan, norm: str | None):
        super().__init__()
        self.plan = plan
        self.preprocess0 = _preprocess(plan.preprocess0, plan.c_pp, plan.c_out, norm)
        self.preprocess1 = _preprocess(plan.preprocess1, plan.c_p, plan.c_out, norm)
        self._ops = nn.ModuleList(make_op(op.name, op.c_in, op.c_out, op.stride, norm)
                                  for op in plan.ops)

    def forward(self, s0: torch.Tensor | None, s1: torch.Tensor | None) -> torch.Tensor:
        p = self.plan
        states: list[torch.Tensor | None] = [
            self.preprocess0(s0) if p.reads[0] else None,
            self.preprocess1(s1) if p.reads[1] else None,
        ]
        for step in range(p.steps):
            out = None
            for j in (2 * step, 2 * step + 1):
                if p.ops[j].live:
                    h = self._ops[j](states[p.ops[j].input])
                    out = h if out is None else out + h
            states.append(out)
        outs = [states[i] for i in p.concat]
        if any(o is None for o in outs):
            dummy = next(o for o in outs if o is not None) * 0
            outs = [dummy if o is None else o for o in outs]
        return torch.cat(outs, dim=1)


class Network(nn.Module):
    """A DeepNets-1M architecture built for ``num_classes`` and ``image_size``; returns logits."""

    def __init__(self, spec: ArchSpec, num_classes: int = 10, image_size: int = 32,
                 in_channels: int = 3):
        super().__init__()
        plan = plan_network(spec, num_classes, image_size)
        a = spec.args
        self.spec, self.plan = spec, plan
        self.num_classes, self.image_size = num_classes, image_size
        self.expected_input_sz = image_size
        st = plan.stem
        if st.kind == "vit":
            self.stem0 = conv(in_channels, a.C, st.kernel, st.stride, st.padding)
            self.pos_enc = PosEnc(a.C, st.side0)
        elif st.kind == "simple":
            self.stem = nn.Sequential(
                conv(in_channels, st.channels, st.kernel, st.stride, st.padding),
                bn_layer(st.channels, a.norm),
                nn.MaxPool2d(3, stride=2, padding=1) if st.pool else nn.Identity(),
            )
        else:
            half = a.C // 2
            self.stem0 = nn.Sequential(
                conv(in_channels, half, st.kernel, st.stride, st.padding),
                bn_layer(half, a.norm),
                nn.ReLU(inplace=True),
                conv(half, a.C, 3, st.stride, 1),
                bn_layer(a.C, a.norm),
            )
            # In place, as officially: it also rectifies s0, which cell 0 reads.
            self.stem1 = nn.Sequential(nn.ReLU(inplace=True), conv(a.C, a.C, 3, 2, 1),
                                       bn_layer(a.C, a.norm))
        self.cells = nn.ModuleList(Cell(c, a.norm) for c in plan.cells)
        cells = plan.cells
        self._stem1_live = bool(
            (len(cells) > 0 and cells[0].live and cells[0].reads[1])
            or (len(cells) > 1 and cells[1].live and cells[1].reads[0]))
        if plan.glob_avg:
            self.global_pooling = nn.AdaptiveAvgPool2d(1)
        self.classifier = _classifier(plan)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        kind = self.plan.stem.kind
        if kind == "vit":
            s0 = s1 = self.pos_enc(self.stem0(x))
        elif kind == "simple":
            s0 = s1 = self.stem(x)
        else:
            s0 = self.stem0(x)
            if self._stem1_live:
                s1 = self.stem1(s0)
            else:  # no live cell reads it (its weights are never predicted): only the
                s0, s1 = torch.relu_(s0), None  # in-place ReLU on s0 remains, as officially
        for cell in self.cells:
            s0, s1 = s1, (cell(s0, s1) if cell.plan.live else None)
        out = self.global_pooling(s1) if self.plan.glob_avg else s1
        return self.classifier(out.flatten(1))


def _classifier(plan: NetPlan) -> nn.Sequential:
    """Linear, then (ReLU, Dropout(0.5), Linear) per further layer: indices 0, 3, 6..."""
    layers: list[nn.Module] = []
    for i, (n_in, n_out) in enumerate(plan.classifier):
        if i:
            layers += [nn.ReLU(inplace=True), nn.Dropout(p=0.5)]
        layers.append(nn.Linear(n_in, n_out))
    return nn.Sequential(*layers)


def build_model(spec: ArchSpec, num_classes: int = 10, image_size: int = 32,
                C: int | None = None, fc_dim: int | None = None) -> Network:
    """Build the torch network; ``C``/``fc_dim`` override the spec's width (GHN training
    samples widths per step)."""
    changes = {k: v for k, v in (("C", C), ("fc_dim", fc_dim)) if v is not None}
    return Network(spec.with_args(**changes) if changes else spec, num_classes, image_size)
