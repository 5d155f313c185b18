"""From node states to parameter tensors: the GHN-2 decoder, tiling and normalisation.

Every parameterised node of a graph maps to one or two model tensors (a norm node to its
weight and bias). Three heads decode them:

* the **convolutional decoder** (all weights of two or more dimensions but the classifier):
  ``Linear(hid -> C_dec * s * s)`` then 1x1 convolutions ``C_dec -> C_mid -> B * B`` give a
  ``B x B x s x s`` block per node (``B = 64``; ``s = 11`` for CIFAR-10, 16 for ImageNet).
  A ``kh x kw`` kernel takes the centred ``kh x kw`` window of the ``s x s`` grid. Because
  the convolutions are 1x1, every grid position is independent, so only the positions a
  node needs are computed, and only the corner of the block a small layer uses (e.g. one
  column for a depthwise kernel, three for an RGB stem);
* the **classifier head** (the last weight of the graph): ``Linear(hid -> classes * B)``;
* the **1-D head** (norm weights and biases, biases): ``Linear(hid -> 2 * B)``.

A block smaller than its target is tiled (repeated) along every dimension and cut to size
-- GHN-2's channel tiling. Predictions are then normalised per operation:
weights ``* sqrt(beta / fan_in)`` (``beta = 2`` for convolutions and hidden linear layers,
which feed a ReLU; 1 for the classifier, attention and positional encodings, which do not),
norm weights ``2 sigmoid(0.5 p)``, biases (norm biases included) ``tanh(0.2 p)``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch
from torch import nn
from torch.nn import functional as F

from deepnetsbench.graph.graph import Graph
from deepnetsbench.space.primitives import NODE_TYPES

__all__ = ["ParamPlan", "WeightItem", "VectorItem", "plan_params", "fold4", "tile_to",
           "Decoder", "NO_RELU_TYPES"]

#: Node types whose output does not go into a ReLU: fan-in scaling with beta = 1.
NO_RELU_TYPES = frozenset({"msa", "pos_enc"})
_NORM_TYPES = frozenset({"bn", "ln"})


def fold4(shape: tuple[int, ...]) -> tuple[int, int, int, int]:
    """A weight shape of 2+ dims as ``(out, in, kh, kw)``; dims past the 4th fold into kw."""
    s = tuple(int(d) for d in shape)
    kh = s[2] if len(s) > 2 else 1
    kw = math.prod(s[3:]) if len(s) > 3 else 1
    return s[0], s[1], kh, kw


@dataclass
class WeightItem:
    """A tensor of 2+ dims, decoded by the conv decoder (or the classifier head)."""

    node: int  # node index in its graph
    name: str
    shape: tuple[int, ...]
    beta: float


@dataclass
class VectorItem:
    """A 1-D (or scalar) tensor from the 1-D head; ``kind`` picks the output channel and
    the normalisation: ``norm_weight`` (channel 0, 2 sigmoid(p/2)) or ``bias`` (channel 1,
    tanh(p/5))."""

    node: int
    name: str
    shape: tuple[int, ...]
    kind: str


@dataclass
class ParamPlan:
    """What to predict for one graph: which node gives which tensor."""

    weights: list[WeightItem] = field(default_factory=list)
    classifier: WeightItem | None = None
    vectors: list[VectorItem] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)  # model tensors no node names

    @property
    def names(self) -> list[str]:
        out = [w.name for w in self.weights] + [v.name for v in self.vectors]
        return out + ([self.classifier.name] if self.classifier else [])


def plan_params(graph: Graph, shapes: dict[str, tuple[int, ...]] | None = None) -> ParamPlan:
    """Map the graph's nodes to tensors. ``shapes``: the model's parameter shapes (name ->
    shape); without it the graph's own shapes are used and every norm node is assumed to
    have a bias. Tensors of ``shapes`` that no node names are listed in ``missing``."""
    plan = ParamPlan()
    taken: set[str] = set()
    last_weight: WeightItem | None = None
    for i, name in enumerate(graph.param_names):
        if name is None or name in taken:
            continue
        kind = NODE_TYPES[int(graph.node_types[i])]
        if shapes is not None:
            if name not in shapes:
                continue  # a node the model does not have (mismatched graph): skipped
            shape = tuple(int(d) for d in shapes[name])
        else:
            shape = graph.param_shape(i)
        taken.add(name)
        if kind in _NORM_TYPES:
            plan.vectors.append(VectorItem(i, name, shape, "norm_weight"))
            if name.endswith("weight"):
                bias = name[: -len("weight")] + "bias"
                has_bias = (bias in shapes) if shapes is not None else True
                if has_bias and bias not in taken:
                    bshape = tuple(int(d) for d in shapes[bias]) if shapes is not None else shape
                    plan.vectors.append(VectorItem(i, bias, bshape, "bias"))
                    taken.add(bias)
        elif kind == "bias" or len(shape) < 2:
            plan.vectors.append(VectorItem(i, name, shape, "bias" if kind == "bias"
                                           else "norm_weight"))
        else:
            item = WeightItem(i, name, shape, 1.0 if kind in NO_RELU_TYPES else 2.0)
            plan.weights.append(item)
            last_weight = item
    if last_weight is not None:
        _, _, kh, kw = fold4(last_weight.shape)
        if kh * kw == 1:  # a linear (or 1x1 conv) classifier: its own head
            plan.weights.remove(last_weight)
            last_weight.beta = 1.0
            plan.classifier = last_weight
    if shapes is not None:
        plan.missing = [n for n in shapes if n not in taken]
    return plan


def tile_to(block: torch.Tensor, shape: tuple[int, ...],
            out: torch.Tensor | None = None) -> torch.Tensor:
    """Repeat ``block`` along every dim to cover ``shape`` (same number of dims) and cut.

    With ``out`` (contiguous, of ``shape``) the result is written there: first one slab of
    ``block.shape[0]`` rows (tiled along the other dims), then that slab repeated along the
    rows as whole contiguous chunks -- close to a plain memory fill, which matters since
    predicting ResNet-50 writes 94 MB."""
    shape = tuple(int(d) for d in shape)
    bshape = tuple(block.shape)
    if bshape == shape:
        return block if out is None else out.copy_(block)
    if out is None:
        if all(t % b == 0 for t, b in zip(shape, bshape)):
            inter, expand = [], []
            for t, b in zip(shape, bshape):
                inter += [1, b]
                expand += [t // b, b]
            return block.reshape(inter).expand(expand).reshape(shape)
        reps = [-(-t // b) for t, b in zip(shape, bshape)]
        return block.repeat(reps)[tuple(slice(0, t) for t in shape)].contiguous()
    rows = bshape[0]
    slab = tile_to(block, (rows,) + shape[1:]) if bshape[1:] != shape[1:] else block
    full, rest = divmod(shape[0], rows)
    flat = out.view(shape[0], -1)
    slab = slab.reshape(rows, -1)
    if full:
        flat[: full * rows].view(full, -1).copy_(slab.reshape(1, -1).expand(full, -1))
    if rest:
        flat[full * rows:].copy_(slab[:rest])
    return out


class Decoder(nn.Module):
    """The three heads; see the module docstring."""

    def __init__(self, hid: int, dec_channels: int = 128, dec_mid: int = 256, block: int = 64,
                 kernel: int = 11, num_classes: int = 10, normalize: bool = True):
        super().__init__()
        self.hid, self.c_dec, self.block, self.kernel = hid, dec_channels, block, kernel
        self.num_classes = num_classes
        self.normalize = normalize
        self.fc = nn.Linear(hid, dec_channels * kernel * kernel)
        self.conv1 = nn.Conv2d(dec_channels, dec_mid, 1)
        self.conv2 = nn.Conv2d(dec_mid, block * block, 1)
        self.cls_head = nn.Linear(hid, num_classes * block)
        self.vec_head = nn.Linear(hid, 2 * block)

    # -- the conv decoder on a subset of grid positions ----------------------------------------
    def conv_blocks(self, h: torch.Tensor, kh: int, kw: int, rows: int | None = None,
                    cols: int | None = None) -> torch.Tensor:
        """``[n, hid]`` -> ``[n, rows, cols, kh, kw]`` blocks (``kh, kw <= s``; ``rows,
        cols <= B``, default ``B``): the top-left ``rows x cols`` corner of the block at
        the centred ``kh x kw`` window of the ``s x s`` grid. Only these positions and
        channels are computed (the last 1x1 conv maps each position on its own)."""
        s, c, b = self.kernel, self.c_dec, self.block
        r0, c0 = (s - kh) // 2, (s - kw) // 2
        w = self.fc.weight.view(c, s, s, -1)[:, r0:r0 + kh, c0:c0 + kw]  # [c, kh, kw, hid]
        bias = self.fc.bias.view(c, s, s)[:, r0:r0 + kh, c0:c0 + kw]
        p = kh * kw
        # positions become rows: [n, c, kh, kw] -> [n * p, c]
        x = F.linear(h, w.reshape(c * p, -1), bias.reshape(c * p)).view(-1, c, p)
        x = F.relu(x).transpose(1, 2).reshape(-1, c)
        x = F.relu(F.linear(x, self.conv1.weight.flatten(1), self.conv1.bias))
        rows, cols = rows or b, cols or b
        w2 = self.conv2.weight.flatten(1)
        b2 = self.conv2.bias
        if (rows, cols) != (b, b):
            w2 = w2.view(b, b, -1)[:rows, :cols].reshape(rows * cols, -1)
            b2 = b2.view(b, b)[:rows, :cols].reshape(-1)
        x = F.linear(x, w2, b2)  # [n * p, rows * cols]
        return x.view(-1, kh, kw, rows, cols).permute(0, 3, 4, 1, 2)

    def decode(self, h: torch.Tensor, plans: list[ParamPlan], offsets: list[int],
               outs: list[dict[str, torch.Tensor]] | None = None) -> list[dict[str, torch.Tensor]]:
        """Predict every planned tensor. ``h``: node states of the whole batch; graph ``g``'s
        node ``i`` is row ``offsets[g] + i``. With ``outs`` (dicts of existing tensors, e.g.
        the model's parameters) predictions are written into them in place."""
        results: list[dict[str, torch.Tensor]] = [{} for _ in plans]
        s, b = self.kernel, self.block

        def emit(g: int, name: str, value: torch.Tensor, shape: tuple[int, ...]) -> None:
            dest = outs[g].get(name) if outs is not None else None
            if dest is not None:
                tile_to(value.to(dest.dtype), _fold_like(shape, value.dim()),
                        dest.view(_fold_like(shape, value.dim())))
                results[g][name] = dest
            else:
                results[g][name] = tile_to(value, _fold_like(shape, value.dim())).reshape(shape)

        # conv decoder, grouped by the window and the corner of the block each node needs
        groups: dict[tuple[int, int, int, int], list[tuple[int, WeightItem]]] = {}
        for g, plan in enumerate(plans):
            for item in plan.weights:
                o, i, kh, kw = fold4(item.shape)
                key = (min(kh, s), min(kw, s), min(o, b), min(i, b))
                groups.setdefault(key, []).append((g, item))
        for (kh, kw, o_b, i_b), items in groups.items():
            rows = torch.tensor([offsets[g] + it.node for g, it in items], device=h.device)
            # unbind: one autograd node for the group (per-node indexing would make the
            # backward pass allocate a full-size gradient per node)
            blocks = self.conv_blocks(h[rows], kh, kw, o_b, i_b).unbind(0)
            for blk, (g, item) in zip(blocks, items):
                _, i, kh_t, kw_t = fold4(item.shape)
                if self.normalize:
                    blk = blk * math.sqrt(item.beta / max(1, i * kh_t * kw_t))
                emit(g, item.name, blk, item.shape)

        # classifier head
        cls = [(g, p.classifier) for g, p in enumerate(plans) if p.classifier is not None]
        if cls:
            rows = torch.tensor([offsets[g] + it.node for g, it in cls], device=h.device)
            out = self.cls_head(h[rows]).view(len(cls), self.num_classes, b).unbind(0)
            for blk, (g, item) in zip(out, cls):
                o, i, _, _ = fold4(item.shape)
                blk = blk[:min(o, self.num_classes), :min(i, b)]
                if self.normalize:
                    blk = blk * math.sqrt(item.beta / max(1, i))
                emit(g, item.name, blk.reshape(blk.shape + (1,) * (len(item.shape) - 2)),
                     item.shape)

        # 1-D head
        vecs = [(g, it) for g, p in enumerate(plans) for it in p.vectors]
        if vecs:
            rows = torch.tensor([offsets[g] + it.node for g, it in vecs], device=h.device)
            out = self.vec_head(h[rows]).view(len(vecs), 2, b)
            if self.normalize:
                out = torch.stack([2 * torch.sigmoid(0.5 * out[:, 0]), torch.tanh(0.2 * out[:, 1])],
                                  dim=1)
            out = out.unbind(0)
            for row, (g, item) in zip(out, vecs):
                vec = row[0 if item.kind == "norm_weight" else 1]
                n = max(1, math.prod(item.shape))
                flat = vec[:n] if n <= b else vec
                emit(g, item.name, flat, item.shape)
        return results


def _fold_like(shape: tuple[int, ...], ndim: int) -> tuple[int, ...]:
    """The target shape in the block's layout: 1-D blocks cover the flattened tensor,
    2-D blocks (classifier) ``(out, in)``, 4-D/5-D blocks :func:`fold4`."""
    if ndim == 1:
        return (max(1, math.prod(shape)),)
    if ndim == 2:
        return (shape[0], math.prod(shape[1:]))
    o, i, kh, kw = fold4(shape)
    return (o, i, kh, kw) if ndim == 4 else (o, i, kh, kw)[:ndim]
