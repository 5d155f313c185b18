"""Build the computational graph of any ``nn.Module`` by tracing autograd.

One forward pass (batch of one, eval mode) records the autograd graph; walking it gives
every parameter's consumer and every structural op (pooling, sum, concat, global average).
Nodes are ordered by the autograd sequence number, i.e. forward-execution order.

Rules (shared with :mod:`deepnetsbench.graph.derive`):

* each autograd function that consumes parameters yields one node per parameter, chained
  in registration order with biases last; a norm layer's bias is merged into its ``bn``/
  ``ln`` node;
* ``AddBackward`` with two or more non-parameter inputs is a ``sum`` node, ``CatBackward``
  a ``concat`` node, pooling a ``max_pool``/``avg_pool`` node, a spatial mean a
  ``glob_avg`` node; every other function is transparent: it passes on its inputs' nodes.

Node types come from the owning module: an explicit ``graph_type`` attribute wins
(DeepNets-1M ops set it), then torch classes (depthwise conv -> ``sep_conv``/``dil_conv``,
linear -> ``conv``, attention -> ``msa``, squeeze-excitation -> ``cse``).
Unlike the original builder, ``msa`` and ``cse`` nodes are never dropped.
"""

from __future__ import annotations

import torch
from torch import nn

from deepnetsbench.graph.graph import Graph, make_graph
from deepnetsbench.space.primitives import NODE_INDEX

_NORMS = (nn.modules.batchnorm._BatchNorm, nn.LayerNorm, nn.GroupNorm,
          nn.modules.instancenorm._InstanceNorm)


def _param_owner_types(model: nn.Module) -> dict[int, tuple[str, str, str]]:
    """id(param) -> (name, node type, role) where role is 'main', 'bias' or 'norm_bias'."""
    info: dict[int, tuple[str, str, str]] = {}
    for mod_name, module in model.named_modules():
        explicit = getattr(module, "graph_type", None)
        cls = type(module).__name__.lower()
        for p_name, p in module.named_parameters(recurse=False):
            full = f"{mod_name}.{p_name}" if mod_name else p_name
            if id(p) in info:
                continue
            if isinstance(module, _NORMS) or (cls.startswith("layernorm") and p.dim() == 1):
                kind = "bn" if isinstance(module, nn.modules.batchnorm._BatchNorm) else "ln"
                role = "norm_bias" if p_name == "bias" else "main"
                info[id(p)] = (full, kind, role)
                continue
            if p_name.endswith("bias") and p.dim() == 1:
                info[id(p)] = (full, "bias", "bias")
                continue
            if explicit:
                kind = explicit
            elif isinstance(module, nn.MultiheadAttention) or "attention" in cls:
                kind = "msa"
            elif "squeeze" in cls or "excitation" in cls or cls in ("semodule", "se"):
                kind = "cse"
            elif isinstance(module, nn.modules.conv._ConvNd):
                depthwise = module.groups > 1 and module.groups == module.in_channels
                kind = ("dil_conv" if max(module.dilation) > 1 else "sep_conv") if depthwise else "conv"
            elif isinstance(module, nn.Linear):
                kind = "conv"
            elif p.dim() >= 2:
                kind = "pos_enc"  # positional encodings, class tokens, relative-position tables
            else:
                kind = "bn"  # per-channel scales such as layer-scale
            info[id(p)] = (full, kind, "main")
    # Linear layers nested in attention modules are attention parameters.
    for mod_name, module in model.named_modules():
        if isinstance(module, nn.MultiheadAttention) or "attention" in type(module).__name__.lower():
            for sub_name, sub in module.named_modules():
                if isinstance(sub, nn.Linear) and getattr(sub, "graph_type", None) is None:
                    full = ".".join(x for x in (mod_name, sub_name, "weight") if x)
                    info[id(sub.weight)] = (full, "msa", "main")
        cls = type(module).__name__.lower()
        if "squeeze" in cls or "excitation" in cls:
            for sub_name, sub in module.named_modules():
                if isinstance(sub, (nn.Conv2d, nn.Linear)):
                    full = ".".join(x for x in (mod_name, sub_name, "weight") if x)
                    info[id(sub.weight)] = (full, "cse", "main")
    return info


def _structural_type(fn, n_inputs: int) -> str | None:
    name = type(fn).__name__
    if name.startswith("AddBackward") and n_inputs >= 2:
        return "sum"
    if name.startswith("CatBackward") and n_inputs >= 2:
        return "concat"
    if name.startswith("MaxPool") or name.startswith("AdaptiveMaxPool"):
        return "max_pool"
    if name.startswith("AvgPool") or name.startswith("AdaptiveAvgPool"):
        return "avg_pool"
    if name.startswith("MeanBackward"):
        dims = getattr(fn, "_saved_dim", None)
        sizes = getattr(fn, "_saved_self_sym_sizes", None)
        if sizes is not None and len(sizes) == 4 and dims is not None:
            dims = {d % 4 for d in dims}
            if dims == {2, 3}:
                return "glob_avg"
        if sizes is not None and len(sizes) == 3 and dims is not None and {d % 3 for d in dims} == {1}:
            return "glob_avg"  # token average (transformers)
    return None


def graph_from_module(model: nn.Module, image_size: int = 32, in_channels: int = 3,
                      example: torch.Tensor | None = None) -> Graph:
    """Trace ``model`` on one image of ``image_size`` (or on ``example``)."""
    params = dict(model.named_parameters())
    info = _param_owner_types(model)
    device = next((p.device for p in params.values()), torch.device("cpu"))
    dtype = next((p.dtype for p in params.values() if p.is_floating_point()), torch.float32)
    x = example if example is not None else torch.randn(1, in_channels, image_size, image_size)
    x = x.to(device=device, dtype=dtype).requires_grad_(True)
    was_training = model.training
    model.eval()
    try:
        with torch.enable_grad():
            out = model(x)
    finally:
        model.train(was_training)
    if isinstance(out, (tuple, list)):
        out = out[0]
    if hasattr(out, "logits"):
        out = out.logits
    return _walk(out.grad_fn, x, info, sum(p.numel() for p in params.values()))


def _walk(root, x: torch.Tensor, info: dict, num_params: int) -> Graph:
    # Collect autograd functions reachable from the output (iteratively: graphs are deep).
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
        return getattr(fn, "variable", None) if type(fn).__name__ == "AccumulateGrad" else None

    # Parameters reached from a function through transparent single-input chains
    # (e.g. TBackward/ViewBackward/ExpandBackward of a weight).
    def param_of(fn, depth=0):
        var = leaf_var(fn)
        if var is not None:
            return var if id(var) in info else None
        if depth < 4 and len(fn.next_functions) == 1 and fn.next_functions[0][0] is not None:
            return param_of(fn.next_functions[0][0], depth + 1)
        return None

    order = sorted((fn for fn in fns.values() if leaf_var(fn) is None),
                   key=lambda f: f._sequence_nr())
    types: list[int] = [NODE_INDEX["input"]]
    names: list[str | None] = [None]
    shapes: list[tuple[int, ...]] = [()]
    edges: set[tuple[int, int]] = set()
    outputs: dict[int, frozenset[int]] = {}
    seen_params: dict[int, int] = {}
    param_fns: set[int] = set()

    def inputs_of(fn) -> tuple[list[frozenset[int]], list]:
        node_sets, plist = [], []
        for nxt, _ in fn.next_functions:
            if nxt is None:
                continue
            p = param_of(nxt)
            if p is not None:
                plist.append(p)
                param_fns.add(id(nxt))
                continue
            var = leaf_var(nxt)
            if var is not None:
                if var is x:
                    node_sets.append(frozenset([0]))
                continue  # a leaf that is neither input nor a known parameter
            node_sets.append(outputs.get(id(nxt), frozenset()))
        return node_sets, plist

    def add_node(kind: str, preds, name=None, shape=()) -> int:
        idx = len(types)
        types.append(NODE_INDEX[kind])
        names.append(name)
        shapes.append(tuple(shape))
        for p in preds:
            edges.add((p, idx))
        return idx

    for fn in order:  # views/transposes of parameters belong to their consumer
        for nxt, _ in fn.next_functions:
            if nxt is not None and leaf_var(nxt) is None and param_of(nxt) is not None:
                param_fns.add(id(nxt))

    for fn in order:
        if id(fn) in param_fns:
            continue  # a view/transpose of a parameter, handled by its consumer
        node_sets, plist = inputs_of(fn)
        preds = frozenset().union(*node_sets) if node_sets else frozenset()
        chain_preds = preds
        made = False
        mains = [p for p in plist if info[id(p)][2] == "main"]
        biases = [p for p in plist if info[id(p)][2] == "bias"]
        for p in mains + biases:
            if id(p) in seen_params:  # a shared parameter: link to its first node
                chain_preds = frozenset([seen_params[id(p)]]) | chain_preds
                continue
            name, kind, _ = info[id(p)]
            idx = add_node(kind, chain_preds, name, p.shape)
            seen_params[id(p)] = idx
            chain_preds = frozenset([idx])
            made = True
        op = _structural_type(fn, len(node_sets))
        if op is not None:
            idx = add_node(op, chain_preds)
            chain_preds = frozenset([idx])
            made = True
        outputs[id(fn)] = chain_preds if made else preds
    return make_graph(types, names, shapes, edges, num_params)
