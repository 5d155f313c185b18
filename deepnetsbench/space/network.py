"""The DeepNets-1M network: a stem, a stack of DARTS-style cells, and a classifier head.

:func:`deepnetsbench.graph.derive.graph_from_spec` mirrors this file op by op to derive the
graph and parameter count without instantiating torch modules; a change here must be made
there too (the tests compare both on hundreds of random architectures).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from deepnetsbench.space.genotype import ArchSpec
from deepnetsbench.space.ops import FactorizedReduce, ReLUConvNorm, conv2d, make_op, norm2d


def stem_channels(spec: ArchSpec) -> int:
    """DARTS: a CIFAR-style stem (and the ViT patchifier) outputs 3C, an ImageNet stem C."""
    return spec.args.C if (spec.args.stem_type == 1 and not spec.args.is_vit) else 3 * spec.args.C


def stem_stride(image_size: int) -> int:
    """Stems downsample only large (ImageNet-sized) inputs."""
    return 2 if image_size >= 128 else 1


def patch_size(image_size: int) -> int:
    return max(1, image_size // 16)


def reduction_cells(n_cells: int) -> tuple[int, int]:
    return n_cells // 3, 2 * n_cells // 3


class Cell(nn.Module):
    def __init__(self, cell, concat, c_pp: int, c_p: int, c: int, reduction: bool,
                 reduction_prev: bool, preproc: bool, norm: str | None):
        super().__init__()
        used = {idx for op, idx in cell if op != "none"}  # unused inputs get no preprocessing
        if 0 not in used:
            self.preproc0 = None
        elif reduction_prev:
            self.preproc0 = FactorizedReduce(c_pp, c, norm)
        elif preproc or c_pp != c:
            self.preproc0 = ReLUConvNorm(c_pp, c, 1, 1, norm)
        else:
            self.preproc0 = None
        self.preproc1 = (ReLUConvNorm(c_p, c, 1, 1, norm)
                         if 1 in used and (preproc or c_p != c) else None)
        self.op_names = [op for op, _ in cell]
        self.inputs = [i for _, i in cell]
        self.concat = list(concat)
        self.ops = nn.ModuleList(
            make_op(op, c, 2 if reduction and idx < 2 else 1, norm)
            for op, idx in cell
        )
        self.out_channels = len(self.concat) * c

    def forward(self, s0: torch.Tensor, s1: torch.Tensor) -> torch.Tensor:
        states = [s0 if self.preproc0 is None else self.preproc0(s0),
                  s1 if self.preproc1 is None else self.preproc1(s1)]
        for step in range(len(self.ops) // 2):
            hs = [self.ops[j](states[self.inputs[j]])
                  for j in (2 * step, 2 * step + 1) if self.op_names[j] != "none"]
            states.append(hs[0] + hs[1] if len(hs) == 2 else hs[0])
        outs = [states[i] for i in self.concat]
        return torch.cat(outs, dim=1) if len(outs) > 1 else outs[0]


class Network(nn.Module):
    """A DeepNets-1M architecture built for ``num_classes`` and ``image_size``."""

    def __init__(self, spec: ArchSpec, num_classes: int = 10, image_size: int = 32,
                 in_channels: int = 3):
        super().__init__()
        _check_spec(spec)
        a = spec.args
        self.spec = spec
        self.num_classes, self.image_size = num_classes, image_size
        c_stem = stem_channels(spec)
        s = stem_stride(image_size)
        self.stem_type = "vit" if a.is_vit else a.stem_type
        if a.is_vit:
            p = patch_size(image_size)
            self.stem = conv2d(in_channels, c_stem, p, stride=p)
            n = image_size // p
            self.pos_enc = nn.Parameter(torch.randn(1, c_stem, n, n) * 0.02)
            reduction_prev = False
        elif a.stem_type == 0:
            self.stem = conv2d(in_channels, c_stem, a.ks, stride=s, padding=a.ks // 2)
            self.stem_norm = norm2d(c_stem, a.norm)
            reduction_prev = False
        else:
            self.stem0 = nn.Sequential()
            self.stem0.add_module("conv1", conv2d(in_channels, c_stem // 2, 3, s, 1))
            if a.norm:
                self.stem0.add_module("norm1", norm2d(c_stem // 2, a.norm))
            self.stem0.add_module("relu", nn.ReLU())
            self.stem0.add_module("conv2", conv2d(c_stem // 2, c_stem, 3, s, 1))
            if a.norm:
                self.stem0.add_module("norm2", norm2d(c_stem, a.norm))
            self.stem1 = ReLUConvNorm(c_stem, c_stem, 3, s, a.norm)
            reduction_prev = s > 1
        self.stem_pool = bool(a.stem_pool) and not a.is_vit
        if self.stem_pool:
            reduction_prev = False  # s0 and s1 are both the pooled stem output

        c_pp, c_p, c = c_stem, c_stem, a.C
        reductions = reduction_cells(a.n_cells)
        self.cells = nn.ModuleList()
        g = spec.genotype
        for i in range(a.n_cells):
            reduction = i in reductions
            if reduction:
                c *= a.C_mult
            cell_ops, concat = (g.reduce, g.reduce_concat) if reduction else (g.normal, g.normal_concat)
            cell = Cell(cell_ops, concat, c_pp, c_p, c, reduction, reduction_prev, a.preproc, a.norm)
            self.cells.append(cell)
            c_pp, c_p, reduction_prev = c_p, cell.out_channels, reduction

        self.glob_avg = a.glob_avg
        n_in = c_p if a.glob_avg else c_p * _final_hw(spec, image_size) ** 2
        layers: list[nn.Module] = []
        for _ in range(a.fc_layers - 1):
            layers += [nn.Linear(n_in, a.fc_dim), nn.ReLU()]
            n_in = a.fc_dim
        layers.append(nn.Linear(n_in, num_classes))
        self.classifier = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.stem_type == "vit":
            s0 = s1 = self.stem(x) + self.pos_enc
        elif self.stem_type == 0:
            s0 = self.stem(x)
            if self.stem_norm is not None:
                s0 = self.stem_norm(s0)
            s1 = s0
        else:
            s0 = self.stem0(x)
            s1 = self.stem1(s0)
        if self.stem_pool:
            s0 = s1 = F.max_pool2d(s1, 3, 2, 1)
        for cell in self.cells:
            s0, s1 = s1, cell(s0, s1)
        out = s1.mean((2, 3)) if self.glob_avg else s1.flatten(1)
        return self.classifier(out)


def _final_hw(spec: ArchSpec, image_size: int) -> int:
    from deepnetsbench.graph.derive import final_resolution

    return final_resolution(spec, image_size)


def _check_spec(spec: ArchSpec) -> None:
    g = spec.genotype
    for cell, concat in ((g.normal, g.normal_concat), (g.reduce, g.reduce_concat)):
        if len(cell) == 0 or len(cell) % 2:
            raise ValueError("a cell needs two (op, input) pairs per step")
        for j, (_op, idx) in enumerate(cell):
            if not 0 <= idx < j // 2 + 2:
                raise ValueError(f"op {j} reads state {idx}, which does not exist yet")
        for step in range(len(cell) // 2):
            if cell[2 * step][0] == "none" and cell[2 * step + 1][0] == "none":
                raise ValueError(f"step {step} has only 'none' ops")
        if not concat or any(not 2 <= i < len(cell) // 2 + 2 for i in concat):
            raise ValueError(f"bad concat list {concat}")


def build_model(spec: ArchSpec, num_classes: int = 10, image_size: int = 32,
                C: int | None = None, fc_dim: int | None = None) -> Network:
    """Build the torch network; ``C``/``fc_dim`` override the spec's width (GHN training
    samples widths per step)."""
    changes = {k: v for k, v in (("C", C), ("fc_dim", fc_dim)) if v is not None}
    return Network(spec.with_args(**changes) if changes else spec, num_classes, image_size)
