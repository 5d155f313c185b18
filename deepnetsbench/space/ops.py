"""Torch modules for the 15 DeepNets-1M cell operations and the blocks around them.

Structure, attribute names and submodule indices are those of the official release, so
that a state_dict of an official network loads into ours with ``strict=True`` and graphs
carry the official parameter names (``cells.3._ops.2.op.1.weight``, ``to_qkv.weight``...).
Convolutions inside cells, stems and preprocessing have no bias.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from deepnetsbench.space.primitives import parse_op

NORMS = (None, "bn", "bn-track")


def bn_layer(c: int, norm: str | None) -> nn.Module:
    """BatchNorm2d (running statistics only for ``"bn-track"``), or Identity when BN-free.

    An Identity keeps the positions of the other layers in their Sequential, as officially."""
    if norm is None:
        return nn.Identity()
    if norm not in NORMS:
        raise ValueError(f"norm {norm!r} is not 'bn', 'bn-track' or None")
    return nn.BatchNorm2d(c, track_running_stats=norm == "bn-track")


def conv(c_in: int, c_out: int, k, stride=1, padding=0, dilation=1, groups=1) -> nn.Conv2d:
    return nn.Conv2d(c_in, c_out, k, stride=stride, padding=padding, dilation=dilation,
                     groups=groups, bias=False)


class ReLUConvBN(nn.Module):
    """ReLU -> conv k x k -> BN; ``double``: 1 x k (c_in -> c_in) then k x 1 (-> c_out)."""

    def __init__(self, c_in: int, c_out: int, k: int = 1, stride: int = 1, padding: int = 0,
                 norm: str | None = "bn", double: bool = False):
        super().__init__()
        if double:
            convs = [conv(c_in, c_in, (1, k), (1, stride), (0, padding)),
                     conv(c_in, c_out, (k, 1), (stride, 1), (padding, 0))]
        else:
            convs = [conv(c_in, c_out, k, stride, padding)]
        self.op = nn.Sequential(nn.ReLU(inplace=False), *convs, bn_layer(c_out, norm))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.op(x)


class SepConv(nn.Module):
    """Two rounds of ReLU -> depthwise k x k -> pointwise 1x1 -> BN; only the first strides."""

    def __init__(self, c_in: int, c_out: int, k: int, stride: int, padding: int,
                 norm: str | None = "bn"):
        super().__init__()
        self.op = nn.Sequential(
            nn.ReLU(inplace=False),
            conv(c_in, c_in, k, stride, padding, groups=c_in),
            conv(c_in, c_in, 1),
            bn_layer(c_in, norm),
            nn.ReLU(inplace=False),
            conv(c_in, c_in, k, 1, padding, groups=c_in),
            conv(c_in, c_out, 1),
            bn_layer(c_out, norm),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.op(x)


class DilConv(nn.Module):
    """ReLU -> depthwise k x k dilated -> pointwise 1x1 -> BN."""

    def __init__(self, c_in: int, c_out: int, k: int, stride: int, padding: int, dilation: int,
                 norm: str | None = "bn"):
        super().__init__()
        self.op = nn.Sequential(
            nn.ReLU(inplace=False),
            conv(c_in, c_in, k, stride, padding, dilation=dilation, groups=c_in),
            conv(c_in, c_out, 1),
            bn_layer(c_out, norm),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.op(x)


class FactorizedReduce(nn.Module):
    """Halve the resolution: ReLU, two stride-2 1x1 convs (c_out/2 each) on x and on x shifted
    by one pixel, concatenated, BN. An odd side, which the official op cannot take, is
    zero-padded on the shifted branch so both halves agree; even sides are unchanged."""

    def __init__(self, c_in: int, c_out: int, norm: str | None = "bn", stride: int = 2):
        super().__init__()
        if c_out % 2:
            raise ValueError(f"FactorizedReduce needs an even output width, got {c_out}")
        self.stride = stride
        self.relu = nn.ReLU(inplace=False)
        self.conv_1 = conv(c_in, c_out // 2, 1, stride)
        self.conv_2 = conv(c_in, c_out // 2, 1, stride)
        self.bn = bn_layer(c_out, norm)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.relu(x)
        shifted = x
        if self.stride > 1:
            shifted = x[:, :, 1:, 1:]
            odd_h, odd_w = x.shape[-2] % 2, x.shape[-1] % 2
            if odd_h or odd_w:
                shifted = F.pad(shifted, (0, odd_w, 0, odd_h))
        return self.bn(torch.cat([self.conv_1(x), self.conv_2(shifted)], dim=1))


class Stride(nn.Module):
    """Parameter-free subsampling ``x[:, :, ::s, ::s]`` (preprocessing without 1x1 convs)."""

    def __init__(self, stride: int):
        super().__init__()
        self.stride = stride

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x if self.stride == 1 else x[:, :, ::self.stride, ::self.stride]


class Zero(nn.Module):
    """The ``none`` op. Cells never run it (its edge is absent); kept for the op indices."""

    def __init__(self, stride: int):
        super().__init__()
        self.stride = stride

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x[:, :, ::self.stride, ::self.stride].mul(0.0)


class FeedForward(nn.Module):
    """Linear -> GELU -> Dropout -> Linear -> Dropout (the transformer block's MLP)."""

    def __init__(self, dim: int, hidden: int, dropout: float = 0.0):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(dim, hidden), nn.GELU(), nn.Dropout(dropout),
                                 nn.Linear(hidden, dim), nn.Dropout(dropout))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


class MSA(nn.Module):
    """The ``msa`` op: a pre-LN transformer block over the spatial positions.

    LN -> 8-head self-attention (qkv without bias, output projection with bias) -> + input;
    LN -> FFN (dim -> dim_out -> dim, GELU) -> + input. A stride subsamples the result."""

    def __init__(self, dim: int, dim_out: int | None = None, heads: int = 8, stride: int = 1,
                 dropout: float = 0.0):
        super().__init__()
        dim_out = dim if dim_out is None else dim_out
        dim_head = dim // heads
        if dim_head < 1:
            raise ValueError(f"msa needs at least {heads} channels ({heads} heads), got {dim}")
        inner = dim_head * heads
        self.heads, self.stride = heads, stride
        self.scale = dim_head ** -0.5
        self.to_qkv = nn.Linear(dim, 3 * inner, bias=False)
        self.to_out = nn.Sequential(nn.Linear(inner, dim_out), nn.Dropout(dropout))
        self.ln1 = nn.LayerNorm(dim)
        self.ln2 = nn.LayerNorm(dim)
        self.ff = FeedForward(dim, dim_out)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        shape = x.shape
        if x.dim() == 4:
            x = x.flatten(2).permute(0, 2, 1)  # (B, HW, C) tokens
        q, k, v = (t.unflatten(-1, (self.heads, -1)).transpose(1, 2)
                   for t in self.to_qkv(self.ln1(x)).chunk(3, dim=-1))
        out = _attention(q, k, v, self.scale).transpose(1, 2).flatten(2)
        out = self.to_out(out) + x
        out = self.ff(self.ln2(out)) + out
        if len(shape) == 4:
            out = out.permute(0, 2, 1).reshape(shape)
            if self.stride > 1:
                out = out[:, :, ::self.stride, ::self.stride]
        return out


def _attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, scale: float) -> torch.Tensor:
    """``softmax(q k^T * scale) v`` per head, fused (no ``tokens x tokens`` score matrix in
    memory; the same result to float rounding, and 2-3x faster forward and backward on a CPU
    at the small head sizes of the space). Under CPU bf16 autocast it stays float32: the
    CPU's bf16 kernel is slower (measured 2x)."""
    if q.device.type == "cpu" and torch.is_autocast_enabled("cpu"):
        with torch.autocast("cpu", enabled=False):
            return F.scaled_dot_product_attention(q.float(), k.float(), v.float(), scale=scale)
    return F.scaled_dot_product_attention(q, k, v, scale=scale)


class CSE(nn.Module):
    """The ``cse`` op: channel squeeze-and-excitation with a Hardswish gate (as released).

    Spatial mean -> Linear(c, c/2) -> ReLU -> Linear(c/2, c) -> Hardswish, times the input;
    a stride subsamples the result."""

    def __init__(self, channels: int, dim_out: int | None = None, reduction: int = 2,
                 stride: int = 1):
        super().__init__()
        if dim_out is not None and dim_out != channels:
            raise ValueError(f"cse keeps the width ({channels} in, {dim_out} out asked)")
        reduced = channels // reduction
        self.stride = stride
        self.fc1 = nn.Linear(channels, reduced)
        self.fc2 = nn.Linear(reduced, channels)
        self.relu = nn.ReLU()
        self.gate = nn.Hardswish()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c = x.shape[:2]
        squeeze = x.flatten(2).mean(dim=2)
        gate = self.gate(self.fc2(self.relu(self.fc1(squeeze))))
        out = torch.mul(x, gate.view(b, c, 1, 1))
        if self.stride > 1:
            out = out[:, :, ::self.stride, ::self.stride]
        return out


class PosEnc(nn.Module):
    """Learned positional encoding added to the ViT stem output (init standard normal)."""

    def __init__(self, channels: int, side: int):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(1, channels, side, side))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.weight


def make_op(name: str, c_in: int, c_out: int, stride: int, norm: str | None) -> nn.Module:
    """Instantiate a cell operation by its DeepNets-1M name."""
    family, k = parse_op(name)
    if family == "none":
        return Zero(stride)
    if family == "skip_connect":
        return nn.Identity() if stride == 1 else FactorizedReduce(c_in, c_out, norm)
    if family == "max_pool":
        return nn.MaxPool2d(k, stride=stride, padding=k // 2)
    if family == "avg_pool":
        return nn.AvgPool2d(k, stride=stride, padding=k // 2, count_include_pad=False)
    if family == "conv":
        return ReLUConvBN(c_in, c_out, k, stride, k // 2, norm)
    if family == "conv2":
        return ReLUConvBN(c_in, c_out, k, stride, k // 2, norm, double=True)
    if family == "sep_conv":
        return SepConv(c_in, c_out, k, stride, k // 2, norm)
    if family == "dil_conv":
        return DilConv(c_in, c_out, k, stride, k - k % 2, 2, norm)
    if family == "msa":
        return MSA(c_in, c_out, stride=stride)
    if family == "cse":
        return CSE(c_in, c_out, stride=stride)
    raise ValueError(f"unknown primitive {name!r}")
