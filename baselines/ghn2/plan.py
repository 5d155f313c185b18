"""Which graph node predicts which tensor of the target network, and how it is normalised.

A node whose parameter name is a parameter of the target model is *matched* (the first
node of a name wins; later ones, and nodes the model does not have, keep only their shape
feature). A matched node of

* the second-to-last position, a linear layer or 1x1 conv (the classifier weight) -> the
  classifier head;
* the last position with 1 dim (the classifier bias) -> the 1-D head then ``bias_class``;
* 1 dim elsewhere -> the 1-D head: row 0 for weights (a norm node also gives its layer's
  bias, row 1), row 1 for biases;
* 2+ dims elsewhere -> the convolutional decoder.

Parameters of the model that no node matches (dead preprocessing, dead ops) are listed in
``missing``; they are not predicted (the networks never read them).

Normalisation (GHN-2 and the MLP hypernetwork, ``weight_norm``), on the target tensor after
slicing and tiling: tensors of 2+ dims are multiplied by ``sqrt(beta / fan_in)`` with
``fan_in`` = all dims but the first and ``beta = 1`` for 4-D kernels with one input channel
or ``kh < kw`` (depthwise and 1x7 convolutions), ``beta = 2`` for all others (every linear
layer, the classifier included); a positional encoding (4-D, one output row, ``kh >= 11``)
is left as predicted; 1-D weights become ``2 sigmoid(p / 2)``, biases ``tanh(p / 5)``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from baselines.ghn2.shapes import to_4d
from deepnetsbench.graph.graph import Graph
from deepnetsbench.space.primitives import NODE_TYPES

__all__ = ["ParamPlan", "WeightItem", "VectorItem", "plan_params", "fold4", "weight_scale"]

_NORM_TYPES = frozenset({"bn", "ln"})


def fold4(shape: tuple[int, ...]) -> tuple[int, int, int, int]:
    """A weight shape of 2+ dims as ``(out, in, kh, kw)``; dims past the 4th fold into kw."""
    s = tuple(int(d) for d in shape)
    kh = s[2] if len(s) > 2 else 1
    kw = math.prod(s[3:]) if len(s) > 3 else 1
    return s[0], s[1], kh, kw


def weight_scale(shape: tuple[int, ...]) -> float | None:
    """The fan-in factor of a 2+-dim tensor, ``None`` for a positional encoding (kept)."""
    s = tuple(int(d) for d in shape)
    if len(s) > 2 and s[0] == 1 and s[2] >= 11:
        return None
    kw = s[3] if len(s) > 3 else None
    beta = 1.0 if len(s) > 2 and (s[1] == 1 or (kw is not None and s[2] < kw)) else 2.0
    return math.sqrt(beta / max(1, math.prod(s[1:])))


@dataclass
class WeightItem:
    """A tensor of 2+ dims from the conv decoder (or the classifier head)."""

    node: int  # node index in its graph
    name: str
    shape: tuple[int, ...]


@dataclass
class VectorItem:
    """A 1-D tensor from the 1-D head: ``row`` 0 (weights) or 1 (biases); ``last``: through
    ``bias_class`` (the classifier bias)."""

    node: int
    name: str
    shape: tuple[int, ...]
    row: int
    last: bool = False


@dataclass
class ParamPlan:
    """What to predict for one graph, and the shape feature of each of its nodes."""

    weights: list[WeightItem] = field(default_factory=list)
    classifier: WeightItem | None = None
    vectors: list[VectorItem] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)  # model tensors no node matches
    shapes4: np.ndarray | None = None  # [N, 4] shape feature per node, -1: none

    @property
    def names(self) -> list[str]:
        out = [w.name for w in self.weights] + [v.name for v in self.vectors]
        return out + ([self.classifier.name] if self.classifier else [])


def plan_params(graph: Graph, shapes: dict[str, tuple[int, ...]] | None = None) -> ParamPlan:
    """Map the graph's nodes to the model's tensors. ``shapes``: the model's parameter shapes
    (name -> shape); without it the graph's own shapes stand for the model's and every norm
    node is assumed to have a bias."""
    plan = ParamPlan()
    n = graph.num_nodes
    shapes4 = np.full((n, 4), -1, dtype=np.int64)
    taken: set[str] = set()
    for i, name in enumerate(graph.param_names):
        own = graph.param_shape(i)
        if name is None or name in taken or (shapes is not None and name not in shapes):
            if own:  # pools, and parameters nobody predicts here: their shape only
                shapes4[i] = to_4d(own)
            continue
        shape = tuple(int(d) for d in shapes[name]) if shapes is not None else own
        shapes4[i] = to_4d(shape)
        taken.add(name)
        kind = NODE_TYPES[int(graph.node_types[i])]
        if len(shape) <= 1:
            last = i == n - 1
            is_bias = kind == "bias" or name.endswith("bias")
            plan.vectors.append(VectorItem(i, name, shape, 1 if is_bias else 0, last))
            if kind in _NORM_TYPES and name.endswith("weight"):
                bias = name[: -len("weight")] + "bias"
                has_bias = (bias in shapes) if shapes is not None else True
                if has_bias and bias not in taken:
                    bshape = tuple(int(d) for d in shapes[bias]) if shapes is not None else shape
                    plan.vectors.append(VectorItem(i, bias, bshape, 1, last))
                    taken.add(bias)
        elif i == n - 2 and math.prod(shape[2:]) == 1:  # a linear (or 1x1 conv) classifier
            plan.classifier = WeightItem(i, name, shape)
        else:
            plan.weights.append(WeightItem(i, name, shape))
    plan.shapes4 = shapes4
    if shapes is not None:
        plan.missing = [k for k in shapes if k not in taken]
    return plan
