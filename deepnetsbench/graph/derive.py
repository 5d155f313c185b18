"""Derive the graph and parameter count of a DeepNets-1M network from its spec alone.

Both read the shape plan of :mod:`deepnetsbench.space.layout`, as the torch builder does,
and emit what tracing the built network gives (:mod:`deepnetsbench.graph.trace`: the
official node semantics, forward-execution order) without touching torch: this is what makes
sampling with parameter caps and packing a million architectures fast. Tests check that the
two agree exactly on hundreds of architectures and against the official graphs.
"""

from __future__ import annotations

from deepnetsbench.graph.graph import Graph, Joins, Value, make_graph, merged, node_value
from deepnetsbench.space.genotype import ArchSpec
from deepnetsbench.space.layout import (
    FACTORIZED_REDUCE,
    RELU_CONV_BN,
    CellPlan,
    NetPlan,
    OpPlan,
    plan_network,
)
from deepnetsbench.space.primitives import NODE_INDEX, parse_op

_T = NODE_INDEX


class _Emitter:
    """Appends nodes in forward order; a tensor is a :class:`Value` (the nodes it comes
    from, and what an Add/Cat consuming it counts)."""

    def __init__(self, norm: str | None):
        self.norm = norm
        self.types: list[int] = []
        self.names: list[str | None] = []
        self.shapes: list[tuple[int, ...]] = []
        self.preds: list[frozenset] = []
        self.joins = Joins(self._new)

    def _new(self, kind: str, preds: frozenset, name: str | None = None,
             shape: tuple[int, ...] = ()) -> int:
        self.types.append(_T[kind])
        self.names.append(name)
        self.shapes.append(shape)
        self.preds.append(preds)
        return len(self.types) - 1

    def node(self, kind: str, x: Value | None, name: str | None = None,
             shape: tuple[int, ...] = ()) -> Value:
        return node_value(self._new(kind, x.nodes if x is not None else frozenset(), name, shape))

    def param(self, kind: str, x: Value, name: str, *shape: int) -> Value:
        return self.node(kind, x, name, shape)

    def bn(self, x: Value, name: str, c: int) -> Value:
        return x if self.norm is None else self.node("bn", x, name, (c,))

    def linear(self, x: Value, name: str, n_in: int, n_out: int) -> Value:
        x = self.param("conv", x, f"{name}.weight", n_out, n_in)
        return self.param("bias", x, f"{name}.bias", n_out)

    def graph(self, num_params: int) -> Graph:
        """Keep the nodes the output (the last node) depends on, renumbered in order."""
        n = len(self.types)
        alive = [False] * n
        alive[n - 1] = True
        for i in range(n - 1, -1, -1):
            if alive[i]:
                for p in self.preds[i]:
                    alive[p] = True
        new = [-1] * n
        k = 0
        for i in range(n):
            if alive[i]:
                new[i] = k
                k += 1
        keep = [i for i in range(n) if alive[i]]
        edges = [(new[p], new[i]) for i in keep for p in self.preds[i]]
        return make_graph([self.types[i] for i in keep], [self.names[i] for i in keep],
                          [self.shapes[i] for i in keep], edges, num_params)


# -- cell operations (mirror deepnetsbench.space.ops) ---------------------------------------

def _factorized_reduce(e: _Emitter, x: Value, name: str, c_in: int, c_out: int) -> Value:
    half = c_out // 2
    a = e.param("conv", x, f"{name}.conv_1.weight", half, c_in, 1, 1)
    b = e.param("conv", x, f"{name}.conv_2.weight", half, c_in, 1, 1)
    return e.bn(e.joins.cat([a, b]), f"{name}.bn.weight", c_out)


def _relu_conv_bn(e: _Emitter, x: Value, name: str, c_in: int, c_out: int, k: int = 1,
                  double: bool = False) -> Value:
    if double:
        x = e.param("conv", x, f"{name}.op.1.weight", c_in, c_in, 1, k)
        x = e.param("conv", x, f"{name}.op.2.weight", c_out, c_in, k, 1)
        return e.bn(x, f"{name}.op.3.weight", c_out)
    x = e.param("conv", x, f"{name}.op.1.weight", c_out, c_in, k, k)
    return e.bn(x, f"{name}.op.2.weight", c_out)


def _msa(e: _Emitter, x: Value, name: str, dim: int, dim_out: int) -> Value:
    inner = 8 * (dim // 8)
    h = e.param("ln", x, f"{name}.ln1.weight", dim)
    h = e.param("conv", h, f"{name}.to_qkv.weight", 3 * inner, dim)
    h = e.node("msa", h)
    h = e.linear(h, f"{name}.to_out.0", inner, dim_out)
    y = e.joins.add([h, x])
    h = e.param("ln", y, f"{name}.ln2.weight", dim)
    h = e.linear(h, f"{name}.ff.net.0", dim, dim_out)
    h = e.linear(h, f"{name}.ff.net.3", dim_out, dim)
    return e.joins.add([h, y])


def _cse(e: _Emitter, x: Value, name: str, c: int) -> Value:
    r = c // 2
    h = e.linear(x, f"{name}.fc1", c, r)
    h = e.linear(h, f"{name}.fc2", r, c)
    return e.node("cse", merged([x, h]))


def _op(e: _Emitter, op: OpPlan, x: Value, name: str) -> Value:
    family, k = parse_op(op.name)
    c_in, c_out = op.c_in, op.c_out
    if family == "skip_connect":
        return x if op.stride == 1 else _factorized_reduce(e, x, name, c_in, c_out)
    if family in ("max_pool", "avg_pool"):
        return e.node(family, x, None, (1, 1, k, k))
    if family == "conv":
        return _relu_conv_bn(e, x, name, c_in, c_out, k)
    if family == "conv2":
        return _relu_conv_bn(e, x, name, c_in, c_out, k, double=True)
    if family == "sep_conv":
        x = e.param("sep_conv", x, f"{name}.op.1.weight", c_in, 1, k, k)
        x = e.param("conv", x, f"{name}.op.2.weight", c_in, c_in, 1, 1)
        x = e.bn(x, f"{name}.op.3.weight", c_in)
        x = e.param("sep_conv", x, f"{name}.op.5.weight", c_in, 1, k, k)
        x = e.param("conv", x, f"{name}.op.6.weight", c_out, c_in, 1, 1)
        return e.bn(x, f"{name}.op.7.weight", c_out)
    if family == "dil_conv":
        x = e.param("dil_conv", x, f"{name}.op.1.weight", c_in, 1, k, k)
        x = e.param("conv", x, f"{name}.op.2.weight", c_out, c_in, 1, 1)
        return e.bn(x, f"{name}.op.3.weight", c_out)
    if family == "msa":
        return _msa(e, x, name, c_in, c_out)
    if family == "cse":
        return _cse(e, x, name, c_in)
    raise ValueError(f"op {op.name!r} cannot run (a 'none' op is never live)")


def _preprocess(e: _Emitter, kind: str, x: Value, name: str, c_in: int, c_out: int) -> Value:
    if kind == FACTORIZED_REDUCE:
        return _factorized_reduce(e, x, name, c_in, c_out)
    if kind == RELU_CONV_BN:
        return _relu_conv_bn(e, x, name, c_in, c_out)
    return x  # Stride(2) / identity: parameter-free, transparent


def _cell(e: _Emitter, cell: CellPlan, s0: Value | None, s1: Value | None) -> Value:
    k = cell.index
    states: list[Value | None] = [
        _preprocess(e, cell.preprocess0, s0, f"cells.{k}.preprocess0", cell.c_pp, cell.c_out)
        if cell.reads[0] else None,
        _preprocess(e, cell.preprocess1, s1, f"cells.{k}.preprocess1", cell.c_p, cell.c_out)
        if cell.reads[1] else None,
    ]
    for step in range(cell.steps):
        out = None
        for j in (2 * step, 2 * step + 1):
            op = cell.ops[j]
            if op.live:
                h = _op(e, op, states[op.input], f"cells.{k}._ops.{j}")
                out = h if out is None else e.joins.add([out, h])
        states.append(out)
    outs = [states[i] for i in cell.concat]
    dummy = next(o for o in outs if o is not None)  # empty states are zeros like this one
    return e.joins.cat([dummy if o is None else o for o in outs])


def _stems(e: _Emitter, plan: NetPlan, spec: ArchSpec, x: Value) -> tuple[Value, Value]:
    st, c = plan.stem, spec.args.C
    if st.kind == "vit":
        h = e.param("conv", x, "stem0.weight", c, 3, st.kernel, st.kernel)
        pos = e.node("pos_enc", None, "pos_enc.weight", (1, c, st.side0, st.side0))
        s = e.joins.add([h, pos])
        return s, s
    if st.kind == "simple":
        h = e.param("conv", x, "stem.0.weight", st.channels, 3, st.kernel, st.kernel)
        h = e.bn(h, "stem.1.weight", st.channels)
        if st.pool:
            h = e.node("max_pool", h, None, (1, 1, 3, 3))
        return h, h
    half = c // 2
    h = e.param("conv", x, "stem0.0.weight", half, 3, st.kernel, st.kernel)
    h = e.bn(h, "stem0.1.weight", half)
    h = e.param("conv", h, "stem0.3.weight", c, half, 3, 3)
    s0 = e.bn(h, "stem0.4.weight", c)
    h = e.param("conv", s0, "stem1.1.weight", c, c, 3, 3)
    return s0, e.bn(h, "stem1.2.weight", c)


def graph_from_spec(spec: ArchSpec, num_classes: int = 10, image_size: int = 32) -> Graph:
    """The graph of ``build_model(spec, num_classes, image_size)`` without building it."""
    plan = plan_network(spec, num_classes, image_size)
    e = _Emitter(spec.args.norm)
    s0, s1 = _stems(e, plan, spec, e.node("input", None))
    for cell in plan.cells:
        s0, s1 = s1, (_cell(e, cell, s0, s1) if cell.live else None)
    x = e.node("glob_avg", s1) if plan.glob_avg else s1
    for i, (n_in, n_out) in enumerate(plan.classifier):
        x = e.linear(x, f"classifier.{3 * i}", n_in, n_out)
    return e.graph(_count(plan, spec))


# -- parameter counts (every module the builder creates, dead ones included) ----------------

def _op_params(name: str, c_in: int, c_out: int, stride: int, bn: int) -> int:
    family, k = parse_op(name)
    if family == "skip_connect":
        return 0 if stride == 1 else 2 * (c_out // 2) * c_in + bn * c_out
    if family == "conv":
        return c_out * c_in * k * k + bn * c_out
    if family == "conv2":
        return c_in * c_in * k + c_out * c_in * k + bn * c_out
    if family == "sep_conv":
        return 2 * c_in * k * k + c_in * c_in + bn * c_in + c_out * c_in + bn * c_out
    if family == "dil_conv":
        return c_in * k * k + c_out * c_in + bn * c_out
    if family == "msa":
        inner = 8 * (c_in // 8)
        return (3 * inner * c_in + (inner + 1) * c_out + 4 * c_in
                + (c_in + 1) * c_out + (c_out + 1) * c_in)
    if family == "cse":
        r = c_in // 2
        return (c_in + 1) * r + (r + 1) * c_in
    return 0  # none, pools


def _preprocess_params(kind: str, c_in: int, c_out: int, bn: int) -> int:
    if kind == FACTORIZED_REDUCE:
        return 2 * (c_out // 2) * c_in + bn * c_out
    if kind == RELU_CONV_BN:
        return c_out * c_in + bn * c_out
    return 0


def _count(plan: NetPlan, spec: ArchSpec) -> int:
    a = spec.args
    bn = 0 if a.norm is None else 2
    st, c = plan.stem, a.C
    if st.kind == "vit":
        n = c * 3 * st.kernel ** 2 + c * st.side0 ** 2
    elif st.kind == "simple":
        n = st.channels * 3 * st.kernel ** 2 + bn * st.channels
    else:
        half = c // 2
        n = half * 3 * st.kernel ** 2 + bn * half + 9 * c * half + 9 * c * c + 2 * bn * c
    for cell in plan.cells:
        n += _preprocess_params(cell.preprocess0, cell.c_pp, cell.c_out, bn)
        n += _preprocess_params(cell.preprocess1, cell.c_p, cell.c_out, bn)
        for op in cell.ops:
            n += _op_params(op.name, op.c_in, op.c_out, op.stride, bn)
    return n + sum((n_in + 1) * n_out for n_in, n_out in plan.classifier)


def count_params(spec: ArchSpec, num_classes: int = 10, image_size: int = 32) -> int:
    """Parameter count of ``build_model(spec, num_classes, image_size)``, dead preprocessing
    and dead ops included (the official ``capacity``), without torch."""
    return _count(plan_network(spec, num_classes, image_size), spec)


def count_nodes_params(spec: ArchSpec, num_classes: int = 10,
                       image_size: int = 32) -> tuple[int, int]:
    """(graph nodes, parameters)."""
    g = graph_from_spec(spec, num_classes, image_size)
    return g.num_nodes, g.num_params
