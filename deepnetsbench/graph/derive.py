"""Derive the graph and parameter count of a DeepNets-1M network from its spec alone.

This mirrors :mod:`deepnetsbench.space.network` op by op, following the tracing rules of
:mod:`deepnetsbench.graph.trace`, but never touches torch: it is what makes sampling (with
parameter caps) and packing a million architectures fast. Tests check that it agrees
exactly with tracing the instantiated model.
"""

from __future__ import annotations

from dataclasses import dataclass

from deepnetsbench.graph.graph import Graph, make_graph
from deepnetsbench.space.genotype import ArchSpec
from deepnetsbench.space.network import patch_size, reduction_cells, stem_channels, stem_stride
from deepnetsbench.space.primitives import NODE_INDEX


@dataclass(frozen=True)
class Sym:
    """A symbolic tensor: the graph nodes that produced it, channels and resolution."""

    nodes: frozenset
    c: int
    h: int
    w: int


def _conv_out(n: int, k: int, s: int, p: int, d: int = 1) -> int:
    return (n + 2 * p - d * (k - 1) - 1) // s + 1


class GraphBuilder:
    """Emits nodes in forward order with the tracer's chaining rules."""

    def __init__(self, with_graph: bool = True):
        self.with_graph = with_graph
        self.types: list[int] = []
        self.names: list[str | None] = []
        self.shapes: list[tuple[int, ...]] = []
        self.edges: set[tuple[int, int]] = set()
        self.num_params = 0

    def _node(self, kind: str, preds: frozenset, name=None, shape=()) -> int:
        idx = len(self.types)
        self.types.append(NODE_INDEX[kind])
        if self.with_graph:
            self.names.append(name)
            self.shapes.append(shape)
            for p in preds:
                self.edges.add((p, idx))
        return idx

    def input(self, c: int, h: int, w: int) -> Sym:
        return Sym(frozenset([self._node("input", frozenset())]), c, h, w)

    def params(self, preds: frozenset, params: list[tuple[str, str, tuple[int, ...]]],
               extra: int = 0) -> frozenset:
        """One autograd function consuming ``params`` ((kind, name, shape) each); ``extra``
        counts parameters merged into a node (norm biases)."""
        for kind, name, shape in params:
            n = 1
            for d in shape:
                n *= d
            self.num_params += n
            preds = frozenset([self._node(kind, preds, name, shape)])
        self.num_params += extra
        return preds

    def op(self, kind: str, preds: frozenset) -> frozenset:
        return frozenset([self._node(kind, preds)])

    # -- layers ------------------------------------------------------------------------
    def conv(self, x: Sym, name: str, cout: int, k, s=1, p=0, d=1, groups=1,
             kind="conv") -> Sym:
        kh, kw = (k, k) if isinstance(k, int) else k
        sh, sw = (s, s) if isinstance(s, int) else s
        ph, pw = (p, p) if isinstance(p, int) else p
        nodes = self.params(x.nodes, [(kind, f"{name}.weight", (cout, x.c // groups, kh, kw))])
        return Sym(nodes, cout, _conv_out(x.h, kh, sh, ph, d), _conv_out(x.w, kw, sw, pw, d))

    def norm(self, x: Sym, name: str, norm: str | None) -> Sym:
        if norm != "bn":
            return x
        nodes = self.params(x.nodes, [("bn", f"{name}.weight", (x.c,))], extra=x.c)
        return Sym(nodes, x.c, x.h, x.w)

    def pool(self, x: Sym, kind: str, k: int, s: int, p: int) -> Sym:
        return Sym(self.op(kind, x.nodes), x.c, _conv_out(x.h, k, s, p), _conv_out(x.w, k, s, p))

    def linear(self, x: Sym, name: str, cout: int, kind: str = "conv") -> Sym:
        nodes = self.params(x.nodes, [(kind, f"{name}.weight", (cout, x.c)),
                                      ("bias", f"{name}.bias", (cout,))])
        return Sym(nodes, cout, x.h, x.w)

    def graph(self) -> Graph:
        return make_graph(self.types, self.names, self.shapes, self.edges, self.num_params)


# -- ops (mirror deepnetsbench.space.ops) ---------------------------------------------------

def _relu_conv_norm(g: GraphBuilder, x: Sym, name: str, cout: int, k: int, s: int, norm,
                    factorized: bool = False) -> Sym:
    if factorized:
        x = g.conv(x, f"{name}.conv1", cout, (1, k), (1, s), (0, k // 2))
        x = g.conv(x, f"{name}.conv2", cout, (k, 1), (s, 1), (k // 2, 0))
    else:
        x = g.conv(x, f"{name}.conv", cout, k, s, k // 2)
    return g.norm(x, f"{name}.norm", norm)


def _factorized_reduce(g: GraphBuilder, x: Sym, name: str, cout: int, norm) -> Sym:
    a = g.conv(x, f"{name}.conv1", cout // 2, 1, 2)
    b = g.conv(Sym(x.nodes, x.c, x.h, x.w), f"{name}.conv2", cout - cout // 2, 1, 2)
    cat = Sym(g.op("concat", a.nodes | b.nodes), cout, a.h, a.w)
    return g.norm(cat, f"{name}.norm", norm)


def _op(g: GraphBuilder, op: str, x: Sym, name: str, s: int, norm) -> Sym:
    c = x.c
    if op == "max_pool_3x3":
        return g.pool(x, "max_pool", 3, s, 1)
    if op == "avg_pool_3x3":
        return g.pool(x, "avg_pool", 3, s, 1)
    if op == "skip_connect":
        return x if s == 1 else _factorized_reduce(g, x, name, c, norm)
    if op.startswith("sep_conv_"):
        k = int(op[-1])
        x = g.conv(x, f"{name}.dw1", c, k, s, k // 2, groups=c, kind="sep_conv")
        x = g.conv(x, f"{name}.pw1", c, 1, kind="sep_conv")
        x = g.norm(x, f"{name}.norm1", norm)
        x = g.conv(x, f"{name}.dw2", c, k, 1, k // 2, groups=c, kind="sep_conv")
        x = g.conv(x, f"{name}.pw2", c, 1, kind="sep_conv")
        return g.norm(x, f"{name}.norm2", norm)
    if op.startswith("dil_conv_"):
        k = int(op[-1])
        x = g.conv(x, f"{name}.dw", c, k, s, 2 * (k // 2), d=2, groups=c, kind="dil_conv")
        x = g.conv(x, f"{name}.pw", c, 1, kind="dil_conv")
        return g.norm(x, f"{name}.norm", norm)
    if op == "conv_7x1_1x7":
        return _relu_conv_norm(g, x, name, c, 7, s, norm, factorized=True)
    if op.startswith("conv_"):
        return _relu_conv_norm(g, x, name, c, int(op[-1]), s, norm)
    if op == "msa":
        if s > 1:
            x = g.pool(x, "avg_pool", 3, s, 1)
        ln = g.params(x.nodes, [("ln", f"{name}.ln.weight", (c,))], extra=c)
        qkv = g.params(ln, [("msa", f"{name}.qkv.weight", (3 * c, c)),
                            ("bias", f"{name}.qkv.bias", (3 * c,))])
        proj = g.params(qkv, [("msa", f"{name}.proj.weight", (c, c)),
                              ("bias", f"{name}.proj.bias", (c,))])
        return Sym(g.op("sum", x.nodes | proj), c, x.h, x.w)
    if op == "cse":
        if s > 1:
            x = g.pool(x, "avg_pool", 3, s, 1)
        hidden = max(1, c // 4)
        pooled = g.op("glob_avg", x.nodes)
        f1 = g.params(pooled, [("cse", f"{name}.fc1.weight", (hidden, c, 1, 1))])
        f2 = g.params(f1, [("cse", f"{name}.fc2.weight", (c, hidden, 1, 1))])
        return Sym(x.nodes | f2, c, x.h, x.w)
    raise ValueError(f"unknown primitive {op!r}")


def _cell(g: GraphBuilder, name: str, cell, concat, s0: Sym, s1: Sym, c: int, reduction: bool,
          reduction_prev: bool, preproc: bool, norm) -> Sym:
    used = {idx for op, idx in cell if op != "none"}
    if 0 not in used:
        pass
    elif reduction_prev:
        s0 = _factorized_reduce(g, s0, f"{name}.preproc0", c, norm)
    elif preproc or s0.c != c:
        s0 = _relu_conv_norm(g, s0, f"{name}.preproc0", c, 1, 1, norm)
    if 1 in used and (preproc or s1.c != c):
        s1 = _relu_conv_norm(g, s1, f"{name}.preproc1", c, 1, 1, norm)
    states = [s0, s1]
    for step in range(len(cell) // 2):
        hs = []
        for j in (2 * step, 2 * step + 1):
            op, idx = cell[j]
            if op == "none":
                continue
            stride = 2 if reduction and idx < 2 else 1
            hs.append(_op(g, op, states[idx], f"{name}.ops.{j}", stride, norm))
        if len(hs) == 2:
            states.append(Sym(g.op("sum", hs[0].nodes | hs[1].nodes), c, hs[0].h, hs[0].w))
        else:
            states.append(hs[0])
    outs = [states[i] for i in concat]
    if len(outs) == 1:
        return outs[0]
    nodes = frozenset().union(*(o.nodes for o in outs))
    return Sym(g.op("concat", nodes), c * len(outs), outs[0].h, outs[0].w)


def _body(g: GraphBuilder, spec: ArchSpec, image_size: int, in_channels: int = 3) -> Sym:
    a = spec.args
    c_stem = stem_channels(spec)
    s = stem_stride(image_size)
    x = g.input(in_channels, image_size, image_size)
    if a.is_vit:
        p = patch_size(image_size)
        x = g.conv(x, "stem", c_stem, p, p)
        s0 = s1 = Sym(g.params(x.nodes, [("pos_enc", "pos_enc", (1, c_stem, x.h, x.w))]),
                      c_stem, x.h, x.w)
        reduction_prev = False
    elif a.stem_type == 0:
        x = g.conv(x, "stem", c_stem, a.ks, s, a.ks // 2)
        s0 = s1 = g.norm(x, "stem_norm", a.norm)
        reduction_prev = False
    else:
        x = g.conv(x, "stem0.conv1", c_stem // 2, 3, s, 1)
        x = g.norm(x, "stem0.norm1", a.norm)
        x = g.conv(x, "stem0.conv2", c_stem, 3, s, 1)
        s0 = g.norm(x, "stem0.norm2", a.norm)
        s1 = _relu_conv_norm(g, s0, "stem1", c_stem, 3, s, a.norm)
        reduction_prev = s > 1
    if a.stem_pool and not a.is_vit:
        s0 = s1 = g.pool(s1, "max_pool", 3, 2, 1)
        reduction_prev = False
    c = a.C
    reductions = reduction_cells(a.n_cells)
    gen = spec.genotype
    for i in range(a.n_cells):
        reduction = i in reductions
        if reduction:
            c *= a.C_mult
        cell, concat = (gen.reduce, gen.reduce_concat) if reduction else (gen.normal, gen.normal_concat)
        out = _cell(g, f"cells.{i}", cell, concat, s0, s1, c, reduction, reduction_prev,
                    a.preproc, a.norm)
        s0, s1, reduction_prev = s1, out, reduction
    return s1


def final_resolution(spec: ArchSpec, image_size: int) -> int:
    """Spatial size of the last cell's output (the flatten head needs it)."""
    return _body(GraphBuilder(with_graph=False), spec, image_size).h


def _derive(spec: ArchSpec, num_classes: int, image_size: int, with_graph: bool) -> GraphBuilder:
    a = spec.args
    g = GraphBuilder(with_graph)
    x = _body(g, spec, image_size)
    if a.glob_avg:
        x = Sym(g.op("glob_avg", x.nodes), x.c, 1, 1)
    else:
        x = Sym(x.nodes, x.c * x.h * x.w, 1, 1)
    k = 0
    for _ in range(a.fc_layers - 1):
        x = g.linear(x, f"classifier.{k}", a.fc_dim)
        k += 2
    g.linear(x, f"classifier.{k}", num_classes)
    return g


def graph_from_spec(spec: ArchSpec, num_classes: int = 10, image_size: int = 32) -> Graph:
    """The graph of ``build_model(spec, num_classes, image_size)`` without building it."""
    return _derive(spec, num_classes, image_size, True).graph()


def count_params(spec: ArchSpec, num_classes: int = 10, image_size: int = 32) -> int:
    """Parameter count of the network, without torch."""
    return _derive(spec, num_classes, image_size, False).num_params


def count_nodes_params(spec: ArchSpec, num_classes: int = 10, image_size: int = 32) -> tuple[int, int]:
    g = _derive(spec, num_classes, image_size, False)
    return len(g.types), g.num_params
