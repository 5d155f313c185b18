"""From node states to parameter tensors: the convolutional decoder, the heads, tiling.

**Convolutional decoder** (every weight of 2+ dims but the classifier): ``fc =
Linear(hid -> 4 hid * S * S)`` then ReLU, viewed as ``4 hid`` channels on an ``S x S`` grid;
``conv = 1x1 Conv(4 hid -> 8 hid) -> ReLU -> 1x1 Conv(8 hid -> O * I)``: an ``O x I x S x S``
block ``B[o, i, y, x]`` per node (flat channel ``I * o + i``; ``O = I = 64``, ``S = 11`` on
CIFAR-10, 16 on ImageNet). A ``kh x kw`` kernel takes the top-left window
``B[:out, :in, :kh, :kw]``, a linear layer position ``(0, 0)``. The convolutions are 1x1,
so every grid position is independent: only the positions and the corner of the block a
node needs are computed (one column for a depthwise kernel, three for an RGB stem), with
the same numbers as slicing the full block.

**Classifier head** (the classifier weight): ``class_layer_predictor = ReLU -> 1x1 Conv(O ->
classes)`` applied along the out-axis of ``B[:, :, 0, 0]``:
``W[k, i] = b_k + sum_o P[k, o] relu(B[o, i, 0, 0])``.

**1-D head**: ``decoder_1d = Linear(hid -> 2 hid) -> ReLU -> Linear(-> 2 * max(O, I))``,
two rows (weights, biases); the classifier bias goes on through ``bias_class = ReLU ->
Linear(max(O, I) -> classes)``.

A prediction smaller than its target is **tiled**: repeated along every dimension by whole
periods and cut (wider layers repeat the block along channels; kernels larger than ``S``
repeat it spatially), then normalised (:mod:`baselines.ghn2.plan`).
"""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn import functional as F

from baselines.ghn2.plan import ParamPlan, WeightItem, fold4, weight_scale

__all__ = ["ConvDecoder", "tile_to", "decode"]


class ConvDecoder(nn.Module):
    """See the module docstring (attribute names: the released state dicts')."""

    def __init__(self, hid: int, max_shape: tuple[int, int, int, int], num_classes: int):
        super().__init__()
        o, i, s, s2 = (int(d) for d in max_shape)
        if s != s2:
            raise ValueError(f"the decoder grid must be square, got max_shape {max_shape}")
        self.c1, self.out, self.inp, self.s = 4 * hid, o, i, s
        self.num_classes = num_classes
        self.fc = nn.Sequential(nn.Linear(hid, self.c1 * s * s), nn.ReLU())
        self.conv = nn.Sequential(nn.Conv2d(self.c1, 8 * hid, 1), nn.ReLU(),
                                  nn.Conv2d(8 * hid, o * i, 1))
        self.class_layer_predictor = nn.Sequential(nn.ReLU(), nn.Conv2d(o, num_classes, 1))

    def blocks(self, h: torch.Tensor, kh: int, kw: int, rows: int, cols: int) -> torch.Tensor:
        """``[n, hid]`` -> ``[n, rows, cols, kh, kw]`` = ``B[:rows, :cols, :kh, :kw]``
        (``kh, kw <= S``, ``rows <= O``, ``cols <= I``), computing nothing else."""
        c, s = self.c1, self.s
        fc = self.fc[0]
        w = fc.weight.view(c, s, s, -1)[:, :kh, :kw]  # [c, kh, kw, hid]
        bias = fc.bias.view(c, s, s)[:, :kh, :kw]
        p = kh * kw
        # positions become rows: [n, c, kh, kw] -> [n * p, c]
        x = F.linear(h, w.reshape(c * p, -1), bias.reshape(c * p)).view(-1, c, p)
        x = F.relu(x).transpose(1, 2).reshape(-1, c)
        c0, c2 = self.conv[0], self.conv[2]
        x = F.relu(F.linear(x, c0.weight.flatten(1), c0.bias))
        w2, b2 = c2.weight.flatten(1), c2.bias
        if (rows, cols) != (self.out, self.inp):
            w2 = w2.view(self.out, self.inp, -1)[:rows, :cols].reshape(rows * cols, -1)
            b2 = b2.view(self.out, self.inp)[:rows, :cols].reshape(-1)
        x = F.linear(x, w2, b2)  # [n * p, rows * cols]
        return x.view(-1, kh, kw, rows, cols).permute(0, 3, 4, 1, 2)

    def classifier(self, h: torch.Tensor, cols: int) -> torch.Tensor:
        """``[n, hid]`` -> ``[n, classes, cols]``: the classifier head on ``B[:, :cols, 0, 0]``."""
        b = self.blocks(h, 1, 1, self.out, cols)[..., 0, 0]  # [n, O, cols]
        lin = self.class_layer_predictor[1]
        return (torch.einsum("ko,noc->nkc", lin.weight.flatten(1), F.relu(b))
                + lin.bias[None, :, None])


def tile_to(block: torch.Tensor, shape: tuple[int, ...],
            out: torch.Tensor | None = None) -> torch.Tensor:
    """Repeat ``block`` along every dim to cover ``shape`` (same number of dims) and cut.

    With ``out`` (contiguous, of ``shape``) the result is written there: first its leading
    ``block.shape[0]`` rows (the block tiled along the other dims, written in place), then
    those rows repeated along the rest as whole contiguous chunks -- close to a plain memory
    fill and no temporary, which matters since predicting ResNet-50 writes 94 MB."""
    shape = tuple(int(d) for d in shape)
    bshape = tuple(block.shape)
    if bshape == shape:
        return block if out is None else out.copy_(block)
    exact = all(t % b == 0 for t, b in zip(shape[1:], bshape[1:]))
    if out is None:
        if exact and shape[0] % bshape[0] == 0:
            return _tiled_view(block, shape).reshape(shape)
        reps = [-(-t // b) for t, b in zip(shape, bshape)]
        return block.repeat(reps)[tuple(slice(0, t) for t in shape)].contiguous()
    rows = min(bshape[0], shape[0])
    head, part = out.view(shape)[:rows], block[:rows]
    if bshape[1:] == shape[1:]:
        head.copy_(part)
    elif exact:
        head.view(_split_dims(head.shape, part.shape)).copy_(_tiled_view(part, head.shape))
    else:
        head.copy_(tile_to(part, head.shape))
    full, rest = divmod(shape[0], rows)
    flat = out.view(shape[0], -1)
    if full > 1:
        flat[rows: full * rows].view(full - 1, -1).copy_(
            flat[:rows].reshape(1, -1).expand(full - 1, -1))
    if rest:
        flat[full * rows:].copy_(flat[:rest])
    return out


def _split_dims(shape: tuple[int, ...], bshape: tuple[int, ...]) -> list[int]:
    """Each dim ``t`` as ``(t / b, b)``: the block index is the inner one."""
    return [d for t, b in zip(shape, bshape) for d in (t // b, b)]


def _tiled_view(block: torch.Tensor, shape: tuple[int, ...]) -> torch.Tensor:
    """``block`` repeated to ``shape`` (every dim a multiple) as a stride-0 view, laid out
    as :func:`_split_dims` (reshape it to ``shape`` to get the tiled tensor)."""
    bshape = tuple(block.shape)
    inter = [d for b in bshape for d in (1, b)]
    return block.reshape(inter).expand(_split_dims(shape, bshape))


def decode(ghn: nn.Module, h: torch.Tensor, plans: list[ParamPlan], offsets: list[int],
           outs: list[dict[str, torch.Tensor]] | None = None) -> list[dict[str, torch.Tensor]]:
    """Predict every planned tensor with ``ghn``'s decoders. ``h``: node states of the whole
    batch; graph ``g``'s node ``i`` is row ``offsets[g] + i``. With ``outs`` (dicts of
    existing tensors, e.g. the model's parameters) predictions are written into them."""
    dec: ConvDecoder = ghn.decoder
    norm = ghn.config.weight_norm
    results: list[dict[str, torch.Tensor]] = [{} for _ in plans]

    def emit(g: int, name: str, value: torch.Tensor, shape: tuple[int, ...], folded) -> None:
        dest = outs[g].get(name) if outs is not None else None
        if dest is not None:
            tile_to(value.to(dest.dtype), folded, dest.view(folded))
            results[g][name] = dest
        else:
            results[g][name] = tile_to(value, folded).reshape(shape)

    def rows_of(items) -> torch.Tensor:
        return torch.tensor([offsets[g] + it.node for g, it in items], device=h.device)

    # conv decoder, grouped by the window and the corner of the block each node needs
    groups: dict[tuple[int, int, int, int], list[tuple[int, WeightItem]]] = {}
    for g, plan in enumerate(plans):
        for item in plan.weights:
            o, i, kh, kw = fold4(item.shape)
            key = (min(kh, dec.s), min(kw, dec.s), min(o, dec.out), min(i, dec.inp))
            groups.setdefault(key, []).append((g, item))
    for (kh, kw, rows, cols), items in groups.items():
        # unbind: one autograd node for the group (per-node indexing would make the
        # backward pass allocate a full-size gradient per node)
        blocks = dec.blocks(h[rows_of(items)], kh, kw, rows, cols).unbind(0)
        for blk, (g, item) in zip(blocks, items):
            scale = weight_scale(item.shape) if norm else None
            if scale is not None:
                blk = blk * scale
            emit(g, item.name, blk, item.shape, fold4(item.shape))

    # classifier head, grouped by the input columns it needs
    cls_groups: dict[int, list[tuple[int, WeightItem]]] = {}
    for g, plan in enumerate(plans):
        if plan.classifier is not None:
            cls_groups.setdefault(min(plan.classifier.shape[1], dec.inp), []).append(
                (g, plan.classifier))
    for cols, items in cls_groups.items():
        out = dec.classifier(h[rows_of(items)], cols).unbind(0)
        for blk, (g, item) in zip(out, items):
            k, i = item.shape[0], math.prod(item.shape[1:])
            blk = blk[:min(k, dec.num_classes)]
            scale = weight_scale(item.shape) if norm else None
            if scale is not None:
                blk = blk * scale
            emit(g, item.name, blk, item.shape, (k, i))

    # 1-D head (and bias_class for the classifier bias)
    for last in (False, True):
        vecs = [(g, it) for g, p in enumerate(plans) for it in p.vectors if it.last == last]
        if not vecs:
            continue
        v = ghn.decoder_1d(h[rows_of(vecs)])
        v = v.view(len(vecs), 2, -1)
        if last:
            v = ghn.bias_class(v)
        if norm:
            v = torch.stack([2 * torch.sigmoid(0.5 * v[:, 0]), torch.tanh(0.2 * v[:, 1])], dim=1)
        dests, srcs = [], []  # in place and untiled: one fused copy for all of them
        for row, (g, item) in zip(v.unbind(0), vecs):
            n = max(1, math.prod(item.shape))
            vec = row[item.row]
            dest = outs[g].get(item.name) if outs is not None else None
            if dest is not None and n <= len(vec) and dest.dtype == vec.dtype:
                dests.append(dest.view(n))
                srcs.append(vec[:n])
                results[g][item.name] = dest
            else:
                emit(g, item.name, vec[:n] if n < len(vec) else vec, item.shape, (n,))
        if dests:
            torch._foreach_copy_(dests, srcs)
    return results
