"""Faster, numerically equivalent forwards for the networks a GHN trains on.

Training runs eight new networks per step, forward and backward; in nets with ``msa`` ops
the attention dominates: the space's :class:`~deepnetsbench.space.ops.MSA` materialises the
``tokens x tokens`` score matrix per head (a matmul, a scale, a softmax, a matmul -- and as
many again backward). :func:`F.scaled_dot_product_attention` computes the same attention
(to float rounding; tests/baselines/test_ghn2_recipe.py compares outputs and gradients)
with a fused kernel, 1.3x faster on a whole attention-heavy training net on one CPU thread.
:func:`use_fast_ops` swaps the class of every ``MSA`` module of a model; parameters, names
and the graph are untouched.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from deepnetsbench.space.ops import MSA

__all__ = ["FastMSA", "use_fast_ops"]


class FastMSA(MSA):
    """:class:`MSA` with the attention in one fused call (same parameters, same result)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        shape = x.shape
        if x.dim() == 4:
            x = x.reshape(shape[0], shape[1], -1).permute(0, 2, 1)  # (B, HW, C) tokens
        b, n, _ = x.shape
        q, k, v = (t.reshape(b, n, self.heads, -1).transpose(1, 2)
                   for t in self.to_qkv(self.ln1(x)).chunk(3, dim=-1))
        if q.device.type == "cpu" and torch.is_autocast_enabled("cpu"):
            # the CPU's bf16 flash kernel is slower than float32 (measured 2x): keep it fp32
            with torch.autocast("cpu", enabled=False):
                out = F.scaled_dot_product_attention(q.float(), k.float(), v.float(),
                                                     scale=self.scale)
        else:
            out = F.scaled_dot_product_attention(q, k, v, scale=self.scale)
        out = self.to_out(out.transpose(1, 2).reshape(b, n, -1)) + x
        out = self.ff(self.ln2(out)) + out
        if len(shape) == 4:
            out = out.permute(0, 2, 1).reshape(shape)
            if self.stride > 1:
                out = out[:, :, ::self.stride, ::self.stride]
        return out


def use_fast_ops(model: nn.Module) -> nn.Module:
    """Swap every exact ``MSA`` module of ``model`` to :class:`FastMSA`, in place."""
    for m in model.modules():
        if type(m) is MSA:
            m.__class__ = FastMSA
    return model
