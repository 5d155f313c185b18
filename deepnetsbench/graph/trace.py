"""Build the computational graph of any ``nn.Module`` by tracing autograd.

One forward pass (eval mode) records the autograd graph; walking it from the output gives
every parameter's consumer and every structural op. The pass runs on a batch of *zero*
images: autograd records the same functions whatever the batch size, and the kernels then
compute nothing (a ResNet-50 at 32 px traces in ~4 ms instead of ~40 ms; the meta device is
no cheaper: its batch-norm, activation and addition kernels are Python decompositions, ~34
ms). Fused attention is the one function found to record something else on empty inputs
(sums of q, k and v): during that pass it is replaced by the plain formula, which records
what the fused call records on a real batch -- functions of q, k and v that the walk sees
through. A model that cannot take an empty batch (``x.view(x.size(0), -1)``) is traced on
one image instead. Every torchvision classification model and the DeepNets-1M nets give
the same graph either way (tests/graph/test_graph_trace_empty.py). Nodes are ordered by the
autograd sequence number, i.e. forward-execution order (a topological order; the official
order depends on the networkx version and is not reproduced).

The node semantics are those of the official DeepNets-1M graphs (ppuda ``Graph``):

* a function consuming parameters yields one node per parameter, chained (input -> weight
  -> bias -> consumers, also for Linear layers); norm-layer biases get no node;
* conv/linear weights are ``conv``, a grouped conv ``sep_conv`` (``dil_conv`` if dilated),
  their biases ``bias``; BatchNorm ``bn``; LayerNorm ``ln``; a positional encoding
  ``pos_enc``, a source node summed with the tensor it is added to;
* ``sum`` for an addition with two or more in-edges, ``concat`` likewise, counted as the
  official filter counts them (:class:`~deepnetsbench.graph.graph.Joins`); ``max_pool``/
  ``avg_pool`` with shape ``(1, 1, k, k)``, ``glob_avg`` for adaptive average pooling or a
  ``keepdim`` mean; every other function (activations, views, the squeeze of a cse, ...) is
  transparent: it passes on its inputs' nodes;
* ``msa`` and ``cse`` are found structurally in the DeepNets-1M modules
  (:class:`~deepnetsbench.space.ops.MSA`, :class:`~deepnetsbench.space.ops.CSE`): one
  parameter-free ``msa`` node between a block's ``to_qkv`` and ``to_out`` nodes, one ``cse``
  node for the gating product (inputs: the gated tensor and ``fc2``'s bias). The official
  code finds them by positional offsets that break under networkx >= 2.6 / einops >= 0.7;
  this is what it does on the versions it was written for.

Parameters of modules the official graph does not recognise (attention in_proj tables,
class tokens, layer scales, GroupNorm ...) get nodes too, so that every parameter can be
predicted: 2-D+ tables are ``pos_enc``, attention in-projections ``msa``, other vectors
``bn``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from torch.overrides import TorchFunctionMode

from deepnetsbench.graph.graph import Graph, Joins, Value, make_graph, merged, node_value
from deepnetsbench.space.ops import CSE, MSA
from deepnetsbench.space.primitives import NODE_INDEX

_BN = nn.modules.batchnorm._BatchNorm
_NORMS = (_BN, nn.LayerNorm, nn.GroupNorm, nn.modules.instancenorm._InstanceNorm)
_MAIN, _BIAS, _NORM_BIAS = 0, 1, 2
_POS = NODE_INDEX["pos_enc"]
_MSA, _CSE = NODE_INDEX["msa"], NODE_INDEX["cse"]
_POOLS = {"MaxPool2DWithIndicesBackward": NODE_INDEX["max_pool"],
          "AvgPool2DBackward": NODE_INDEX["avg_pool"]}
_GLOB_AVG = NODE_INDEX["glob_avg"]


def _conv_kind(module: nn.Module) -> str:
    if isinstance(module, nn.modules.conv._ConvNd) and module.groups > 1:
        return "dil_conv" if min(module.dilation) > 1 else "sep_conv"
    return "conv"


def _param_info(model: nn.Module) -> tuple[dict[int, tuple[str, int, int]], set[int], set[int]]:
    """(id(param) -> (name, node type, role), ids of the weights an ``msa`` node precedes,
    ids of the cse gate parameters (the last parameter of each cse module))."""
    info: dict[int, tuple[str, int, int]] = {}
    msa_before: set[int] = set()
    gates: set[int] = set()
    for mod_name, module in model.named_modules():
        prefix = f"{mod_name}." if mod_name else ""
        if isinstance(module, MSA):
            out = module.to_out
            out = out[0] if isinstance(out, nn.Sequential) else out
            msa_before.add(id(out.weight))
        elif isinstance(module, CSE):
            last = None
            for p in module.parameters():
                last = p
            if last is not None:
                gates.add(id(last))
        for p_name, p in module.named_parameters(recurse=False):
            if id(p) in info:
                continue
            full = prefix + p_name
            if isinstance(module, _NORMS):
                kind = "bn" if isinstance(module, _BN) else "ln"
                info[id(p)] = (full, NODE_INDEX[kind], _NORM_BIAS if p_name == "bias" else _MAIN)
                continue
            if isinstance(module, (nn.modules.conv._ConvNd, nn.Linear)):
                kind = "bias" if p_name == "bias" else _conv_kind(module)
            elif type(module).__name__ == "PosEnc":
                kind = "pos_enc"
            elif p_name.endswith("bias") and p.dim() == 1:
                kind = "bias"
            elif isinstance(module, nn.MultiheadAttention):
                kind = "msa"
            elif p.dim() >= 2:
                kind = "pos_enc"  # positional tables, class tokens
            else:
                kind = "bn"  # per-channel scales such as layer scale
            info[id(p)] = (full, NODE_INDEX[kind], _BIAS if kind == "bias" else _MAIN)
    return info, msa_before, gates


def trace_graph(model: nn.Module, image_size: int = 32, in_channels: int = 3,
                example: torch.Tensor | None = None) -> Graph:
    """Trace ``model`` on an empty batch of ``image_size`` images (one image if the model
    cannot take an empty batch), or on ``example``; works on the meta device too (pass a
    meta ``example``)."""
    params = list(model.parameters())
    info, msa_before, gates = _param_info(model)
    device = params[0].device if params else torch.device("cpu")
    dtype = next((p.dtype for p in params if p.is_floating_point()), torch.float32)
    # Eval mode (no dropout, no running-statistics updates), set on the flag directly:
    # Module.train() walks every module through the slow Module.__setattr__ (~5 ms on a
    # ResNet-50, twice per trace).
    training = [m for m in model.modules() if m.training]
    for m in training:
        m.__dict__["training"] = False
    try:
        x, out = None, None
        if example is None:
            x = torch.empty(0, in_channels, image_size, image_size, device=device, dtype=dtype)
            out = _output(model, x.requires_grad_(True), quiet=True)
            if out is None:
                example = torch.randn(1, in_channels, image_size, image_size)
        if out is None:
            x = example.to(device=device, dtype=dtype).requires_grad_(True)
            out = _output(model, x)
    finally:
        for m in training:
            m.__dict__["training"] = True
    return _walk(out.grad_fn, x, info, msa_before, gates, sum(p.numel() for p in params))


class _PlainAttention(TorchFunctionMode):
    """Fused attention on empty inputs as ``softmax(q k^T) v`` (module docstring); also
    inside ``nn.MultiheadAttention``, whose functional form (which the mode sees as one
    call) takes its plain path when asked for the attention weights."""

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        if func is F.scaled_dot_product_attention or func is F.multi_head_attention_forward:
            qkv = list(args[:3]) + [kwargs.get(k) for k in ("query", "key", "value")[len(args):]]
            if isinstance(qkv[0], torch.Tensor) and qkv[0].numel() == 0:
                if func is F.multi_head_attention_forward:
                    return func(*args, **{**kwargs, "need_weights": True})[0], None
                q, k, v = qkv
                return torch.matmul(torch.matmul(q, k.transpose(-2, -1)).softmax(-1), v)
        return func(*args, **kwargs)


def _output(model: nn.Module, x: torch.Tensor, quiet: bool = False) -> torch.Tensor | None:
    """The model's output tensor on ``x``; with ``quiet`` (the empty batch), ``None`` when
    the forward pass fails or gives no tensor that autograd recorded."""
    try:
        with torch.enable_grad():
            if quiet:
                with _PlainAttention():
                    out = model(x)
            else:
                out = model(x)
        if isinstance(out, (tuple, list)):
            out = out[0]
        if hasattr(out, "logits"):
            out = out.logits
        if quiet and not (isinstance(out, torch.Tensor) and out.grad_fn is not None):
            return None
        return out
    except Exception:  # noqa: BLE001 - any failure on the empty batch: trace one image
        if quiet:
            return None
        raise


#: The name the rest of the code base has used for :func:`trace_graph`.
graph_from_module = trace_graph


def _walk(root, x: torch.Tensor, info: dict, msa_before: set[int], gates: set[int],
          num_params: int) -> Graph:
    # Collect the autograd functions reachable from the output (iteratively: graphs are deep).
    fns: dict[int, object] = {}
    stack = [root]
    while stack:
        fn = stack.pop()
        if fn is None or id(fn) in fns:
            continue
        fns[id(fn)] = fn
        for nxt, _ in fn.next_functions:
            if nxt is not None and id(nxt) not in fns:
                stack.append(nxt)

    def leaf_var(fn):
        return getattr(fn, "variable", None)

    # A parameter reached from a function directly or through short single-input chains
    # (TBackward/ViewBackward/ExpandBackward of a weight) belongs to that function.
    param_cache: dict[int, object] = {}

    def param_of(fn, depth: int = 0):
        key = id(fn)
        if key in param_cache:
            return param_cache[key]
        var = leaf_var(fn)
        if var is not None:
            found = var if id(var) in info else None
        elif depth < 4 and len(fn.next_functions) == 1 and fn.next_functions[0][0] is not None:
            found = param_of(fn.next_functions[0][0], depth + 1)
        else:
            found = None
        param_cache[key] = found
        return found

    order = sorted((fn for fn in fns.values() if leaf_var(fn) is None),
                   key=lambda f: f._sequence_nr())
    param_fns = {id(nxt) for fn in order for nxt, _ in fn.next_functions
                 if nxt is not None and leaf_var(nxt) is None and param_of(nxt) is not None}

    types: list[int] = [NODE_INDEX["input"]]
    names: list[str | None] = [None]
    shapes: list[tuple[int, ...]] = [()]
    edges: set[tuple[int, int]] = set()
    outputs: dict[int, Value] = {}
    seen_params: dict[int, int] = {}
    gate_nodes: set[int] = set()
    input_value = node_value(0)
    nothing = Value(frozenset(), frozenset(), frozenset())

    def add_node(kind, preds, name=None, shape=()) -> int:
        idx = len(types)
        types.append(NODE_INDEX[kind] if isinstance(kind, str) else kind)
        names.append(name)
        shapes.append(tuple(shape))
        for p in preds:
            edges.add((p, idx))
        return idx

    joins = Joins(add_node)
    for fn in order:
        if id(fn) in param_fns:
            continue  # a view/transpose of a parameter, handled by its consumer
        values: list[Value] = []
        plist = []
        for nxt, _ in fn.next_functions:
            if nxt is None:
                continue
            p = param_of(nxt)
            if p is not None:
                plist.append(p)
                continue
            var = leaf_var(nxt)
            if var is not None:
                if var is x:
                    values.append(input_value)
                continue  # a leaf that is neither the input nor a parameter
            values.append(outputs.get(id(nxt), nothing))
        name = type(fn).__name__
        if not plist:
            outputs[id(fn)] = _structural(fn, name, values, add_node, joins, gate_nodes)
            continue
        chain = merged(values).nodes if values else frozenset()
        sources = []
        mains = [p for p in plist if info[id(p)][2] == _MAIN]
        biases = [p for p in plist if info[id(p)][2] == _BIAS]
        for p in mains + biases:
            if id(p) in seen_params:  # a shared parameter: link to its first node
                chain = frozenset([seen_params[id(p)]]) | chain
                continue
            p_name, kind, _ = info[id(p)]
            if kind == _POS:  # a source node, summed with the tensor it is added to
                idx = add_node(kind, (), p_name, p.shape)
                seen_params[id(p)] = idx
                sources.append(node_value(idx))
                continue
            if id(p) in msa_before:
                chain = frozenset([add_node(_MSA, chain)])
            idx = add_node(kind, chain, p_name, p.shape)
            seen_params[id(p)] = idx
            if id(p) in gates:
                gate_nodes.add(idx)
            chain = frozenset([idx])
        if not sources:
            outputs[id(fn)] = Value(chain, chain, chain)
            continue
        parts = ([Value(chain, chain, chain)] if chain else []) + sources
        if name.startswith("AddBackward"):
            outputs[id(fn)] = joins.add(parts)
        elif name.startswith("CatBackward"):
            outputs[id(fn)] = joins.cat(parts)
        else:
            outputs[id(fn)] = merged(parts)
    return make_graph(types, names, shapes, edges, num_params)


def _structural(fn, name: str, values: list[Value], add_node, joins: Joins,
                gate_nodes: set[int]) -> Value:
    """The output of a parameter-free function: a new node for the structural ops, what
    its inputs carry for everything else."""
    if not values:
        return Value(frozenset(), frozenset(), frozenset())
    if name.startswith("AddBackward"):
        return joins.add(values)
    if name.startswith("CatBackward"):
        return joins.cat(values)
    v = merged(values)
    if name.startswith("MulBackward") and gate_nodes and not gate_nodes.isdisjoint(v.nodes):
        gate_nodes.difference_update(v.nodes)
        return node_value(add_node(_CSE, v.nodes))
    if name.startswith("MeanBackward"):
        if getattr(fn, "_saved_keepdim", False):
            return node_value(add_node(_GLOB_AVG, v.nodes))
        return v
    if name.startswith("AdaptiveAvgPool2DBackward"):
        return node_value(add_node(_GLOB_AVG, v.nodes))
    kind = _POOLS.get(name.rstrip("0123456789"))
    if kind is not None:
        k = getattr(fn, "_saved_kernel_size", None) or (3, 3)
        k = tuple(int(d) for d in k)
        shape = (1, 1, *(k if len(k) == 2 else k * 2))
        return node_value(add_node(kind, v.nodes, None, shape))
    return v
