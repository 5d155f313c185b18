"""Torch modules for the 15 DeepNets-1M cell operations and the building blocks around them.

Every parameterised submodule carries a ``graph_type`` attribute naming its node type in
the computational graph (``sep_conv``, ``dil_conv``, ``conv``, ``msa``, ``cse``), so that the
tracer in :mod:`deepnetsbench.graph.trace` labels nodes by the operation they belong to
rather than by the torch class that happens to implement them. Convolutions inside cells
have no bias (as in DARTS); the classifier's linear layers do.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn


def conv2d(cin: int, cout: int, k, stride=1, padding=0, dilation=1, groups=1,
           graph_type: str = "conv") -> nn.Conv2d:
    conv = nn.Conv2d(cin, cout, k, stride=stride, padding=padding, dilation=dilation,
                     groups=groups, bias=False)
    conv.graph_type = graph_type
    return conv


def norm2d(c: int, norm: str | None) -> nn.Module | None:
    return nn.BatchNorm2d(c) if norm == "bn" else None


def _apply(x: torch.Tensor, module: nn.Module | None) -> torch.Tensor:
    return x if module is None else module(x)


class ReLUConvNorm(nn.Module):
    """ReLU -> conv (k x k, or 1 x k then k x 1 when ``factorized``) -> norm."""

    def __init__(self, cin: int, cout: int, k: int, stride: int, norm: str | None,
                 factorized: bool = False):
        super().__init__()
        self.factorized = factorized
        if factorized:
            self.conv1 = conv2d(cin, cout, (1, k), stride=(1, stride), padding=(0, k // 2))
            self.conv2 = conv2d(cout, cout, (k, 1), stride=(stride, 1), padding=(k // 2, 0))
        else:
            self.conv = conv2d(cin, cout, k, stride=stride, padding=k // 2)
        self.norm = norm2d(cout, norm)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.relu(x)
        x = self.conv2(self.conv1(x)) if self.factorized else self.conv(x)
        return _apply(x, self.norm)


class SepConv(nn.Module):
    """Two rounds of ReLU -> depthwise k x k -> pointwise 1 x 1 -> norm (DARTS)."""

    def __init__(self, c: int, k: int, stride: int, norm: str | None):
        super().__init__()
        p = k // 2
        self.dw1 = conv2d(c, c, k, stride, p, groups=c, graph_type="sep_conv")
        self.pw1 = conv2d(c, c, 1, graph_type="sep_conv")
        self.norm1 = norm2d(c, norm)
        self.dw2 = conv2d(c, c, k, 1, p, groups=c, graph_type="sep_conv")
        self.pw2 = conv2d(c, c, 1, graph_type="sep_conv")
        self.norm2 = norm2d(c, norm)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = _apply(self.pw1(self.dw1(F.relu(x))), self.norm1)
        return _apply(self.pw2(self.dw2(F.relu(x))), self.norm2)


class DilConv(nn.Module):
    """ReLU -> depthwise k x k with dilation 2 -> pointwise 1 x 1 -> norm (DARTS)."""

    def __init__(self, c: int, k: int, stride: int, norm: str | None):
        super().__init__()
        self.dw = conv2d(c, c, k, stride, 2 * (k // 2), dilation=2, groups=c,
                         graph_type="dil_conv")
        self.pw = conv2d(c, c, 1, graph_type="dil_conv")
        self.norm = norm2d(c, norm)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return _apply(self.pw(self.dw(F.relu(x))), self.norm)


class FactorizedReduce(nn.Module):
    """Halve the resolution with two offset stride-2 1x1 convs whose outputs are
    concatenated (DARTS); odd sizes are padded so both halves agree."""

    def __init__(self, cin: int, cout: int, norm: str | None):
        super().__init__()
        self.conv1 = conv2d(cin, cout // 2, 1, stride=2)
        self.conv2 = conv2d(cin, cout - cout // 2, 1, stride=2)
        self.norm = norm2d(cout, norm)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.relu(x)
        a = self.conv1(x)
        b = self.conv2(F.pad(x, (0, 1, 0, 1))[:, :, 1:, 1:])
        return _apply(torch.cat([a, b], dim=1), self.norm)


class Pool(nn.Module):
    def __init__(self, kind: str, stride: int):
        super().__init__()
        self.kind, self.stride = kind, stride

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.kind == "max":
            return F.max_pool2d(x, 3, self.stride, 1)
        return F.avg_pool2d(x, 3, self.stride, 1, count_include_pad=False)


class Identity(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x


class Zero(nn.Module):
    """The ``none`` op: its edge is dropped (cells never evaluate it)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # pragma: no cover - never called
        raise RuntimeError("the 'none' op is never evaluated")


def msa_heads(c: int) -> int:
    return math.gcd(c, 4)


class MSA(nn.Module):
    """Multi-head self-attention over spatial positions, pre-LayerNorm, residual.

    With stride 2 the input is first 2x2 average pooled (the only way attention reduces)."""

    def __init__(self, c: int, stride: int):
        super().__init__()
        self.stride = stride
        self.heads = msa_heads(c)
        self.ln = nn.LayerNorm(c)
        self.qkv = nn.Linear(c, 3 * c)
        self.proj = nn.Linear(c, c)
        self.qkv.graph_type = self.proj.graph_type = "msa"

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.stride > 1:
            x = F.avg_pool2d(x, 3, self.stride, 1, count_include_pad=False)
        b, c, h, w = x.shape
        tokens = x.flatten(2).transpose(1, 2)
        q, k, v = self.qkv(self.ln(tokens)).chunk(3, dim=-1)
        split = lambda t: t.reshape(b, h * w, self.heads, c // self.heads).transpose(1, 2)  # noqa: E731
        att = F.scaled_dot_product_attention(split(q), split(k), split(v))
        out = tokens + self.proj(att.transpose(1, 2).reshape(b, h * w, c))
        return out.transpose(1, 2).reshape(b, c, h, w)


class CSE(nn.Module):
    """Channel squeeze-and-excitation: x * sigmoid(fc2(relu(fc1(global_avg(x)))))."""

    def __init__(self, c: int, stride: int, reduction: int = 4):
        super().__init__()
        self.stride = stride
        hidden = max(1, c // reduction)
        self.fc1 = conv2d(c, hidden, 1, graph_type="cse")
        self.fc2 = conv2d(hidden, c, 1, graph_type="cse")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.stride > 1:
            x = F.avg_pool2d(x, 3, self.stride, 1, count_include_pad=False)
        s = x.mean((2, 3), keepdim=True)
        return x * torch.sigmoid(self.fc2(F.relu(self.fc1(s))))


def make_op(name: str, c: int, stride: int, norm: str | None) -> nn.Module:
    """Instantiate a cell operation by its DeepNets-1M name."""
    if name == "none":
        return Zero()
    if name == "max_pool_3x3":
        return Pool("max", stride)
    if name == "avg_pool_3x3":
        return Pool("avg", stride)
    if name == "skip_connect":
        return Identity() if stride == 1 else FactorizedReduce(c, c, norm)
    if name.startswith("sep_conv_"):
        return SepConv(c, int(name[-1]), stride, norm)
    if name.startswith("dil_conv_"):
        return DilConv(c, int(name[-1]), stride, norm)
    if name == "conv_7x1_1x7":
        return ReLUConvNorm(c, c, 7, stride, norm, factorized=True)
    if name.startswith("conv_"):
        return ReLUConvNorm(c, c, int(name[-1]), stride, norm)
    if name == "msa":
        return MSA(c, stride)
    if name == "cse":
        return CSE(c, stride)
    raise ValueError(f"unknown primitive {name!r}")
