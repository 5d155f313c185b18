"""Post-processing of predicted parameters before fine-tuning.

Knyazev (2022, "Pretraining a Neural Network before Knowing Its Architecture") found that
GHN-2 predictions for recent architectures (ConvNeXt) fine-tune worse than random init
because the predicted weights lack diversity (e.g. rows repeated by the decoder's tiling).
Two cheap fixes help, applied to wide layers past a chosen depth:

- :func:`add_noise`: ``W += beta * std(W W^T) * N(0, 1)``, with ``W`` reshaped to
  ``(out, -1)`` and ``W W^T`` its (uncentred) row-correlation matrix;
- :func:`orthogonal_reinit`: replace ``W`` by the orthogonal factor ``Q`` of its own QR
  decomposition (keeps the predicted "directions", makes rows/columns orthonormal).

A layer is a conv (1-3 D, not transposed) or linear module; layers are counted in module
order from 0, and a layer is changed when its index is ``>= start_layer`` and it has
strictly more than ``min_channels`` output channels.
"""

from __future__ import annotations

import torch
from torch import nn

__all__ = ["add_noise", "orthogonal_factor", "orthogonal_reinit", "selected_layers"]

_LAYER_TYPES = (nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.Linear)


def selected_layers(model: nn.Module, min_channels: int = 64,
                    start_layer: int = 0) -> list[tuple[int, str, nn.Module]]:
    """``(layer index, module name, module)`` of the layers the post-processing changes."""
    chosen = []
    index = 0
    for name, m in model.named_modules():
        if not isinstance(m, _LAYER_TYPES) or getattr(m, "weight", None) is None:
            continue
        if index >= start_layer and m.weight.shape[0] > min_channels:
            chosen.append((index, name, m))
        index += 1
    return chosen


@torch.no_grad()
def add_noise(model: nn.Module, beta: float = 3e-5, min_channels: int = 64,
              start_layer: int = 0, generator: torch.Generator | None = None) -> int:
    """Add ``beta * std(W W^T) * N(0,1)`` to each selected weight, in place.

    Returns the number of layers changed. ``beta=0`` changes nothing. ``generator`` (CPU)
    makes the noise reproducible.
    """
    if beta == 0:
        return 0
    layers = selected_layers(model, min_channels, start_layer)
    for _, _, m in layers:
        w = m.weight
        w2 = w.detach().reshape(w.shape[0], -1).double()
        scale = beta * (w2 @ w2.T).std().item()
        noise = torch.randn(w.shape, generator=generator, dtype=torch.float32)
        w.add_(noise.to(device=w.device, dtype=w.dtype), alpha=scale)
    return len(layers)


def orthogonal_factor(w: torch.Tensor) -> torch.Tensor:
    """Orthogonal factor of the QR decomposition of ``w`` viewed as ``(out, -1)``.

    For ``out <= in`` the rows of the result are orthonormal (``Q^T`` of ``qr(W^T)``);
    otherwise its columns are (``Q`` of ``qr(W)``). Signs follow a positive diagonal of
    ``R``, which makes the factor unique and keeps each row/column's orientation. The
    result has ``w``'s shape, dtype and device.
    """
    out = w.shape[0]
    w2 = w.detach().reshape(out, -1).double()
    wide = out <= w2.shape[1]
    a = w2.T if wide else w2  # tall: (m, k) with m >= k
    q, r = torch.linalg.qr(a, mode="reduced")
    sign = torch.sign(torch.diagonal(r))
    sign[sign == 0] = 1.0
    q = q * sign
    q2 = q.T if wide else q
    return q2.reshape(w.shape).to(dtype=w.dtype, device=w.device)


@torch.no_grad()
def orthogonal_reinit(model: nn.Module, min_channels: int = 64, start_layer: int = 0,
                      keep_norm: bool = False) -> int:
    """Replace each selected weight by :func:`orthogonal_factor` of itself, in place.

    ``keep_norm``: rescale the result to the original weight's Frobenius norm (off by
    default: ``Q`` as is). Returns the number of layers changed.
    """
    layers = selected_layers(model, min_channels, start_layer)
    for _, _, m in layers:
        w = m.weight
        q = orthogonal_factor(w)
        if keep_norm:
            q = q * (w.norm() / q.norm().clamp_min(1e-12))
        w.copy_(q)
    return len(layers)
