"""The shape plan of a DeepNets-1M network: widths, strides, resolutions and live parts.

The official builder decides these while it instantiates modules. Here the same rules are a
plain, torch-free plan that the torch builder (:mod:`deepnetsbench.space.network`) and the
graph derivation (:mod:`deepnetsbench.graph.derive`) both read, so they cannot disagree.

The official builder knows two inputs, 32 px (CIFAR) and 224 px (ImageNet). Any other size
is built the CIFAR way below :data:`LARGE_INPUT` px and the ImageNet way from it; the ViT
positional encoding and the flatten head take the sizes the layers actually produce (at 32
and 224 px these are the official 11/14 and 4/7/8/14). Odd sides, which the official
FactorizedReduce cannot halve, are handled by :class:`~deepnetsbench.space.ops.FactorizedReduce`.
"""

from __future__ import annotations

from dataclasses import dataclass

from deepnetsbench.space.genotype import ArchSpec

#: From this input size on, stems downsample like the official ImageNet (224 px) stems.
LARGE_INPUT = 128

#: ``preprocess0``/``preprocess1`` kinds (the official module each stands for).
FACTORIZED_REDUCE, RELU_CONV_BN, STRIDE, IDENTITY = ("factorized_reduce", "relu_conv_bn",
                                                     "stride", "identity")


def large_input(image_size: int) -> bool:
    """Whether the net is built as the official ``is_imagenet_input=True`` network."""
    return image_size >= LARGE_INPUT


def reduction_cells(n_cells: int) -> tuple[int, ...]:
    """Cells n//3 and 2n//3 reduce, cell 0 never (a 1- or 2-cell net has fewer reductions)."""
    return tuple(sorted({n_cells // 3, 2 * n_cells // 3} - {0}))


def conv_side(side: int, kernel: int, stride: int, padding: int, dilation: int = 1) -> int:
    """Output side of a convolution or pooling window (floor mode)."""
    return (side + 2 * padding - dilation * (kernel - 1) - 1) // stride + 1


def halve(side: int) -> int:
    """Side after a stride-2 op with 'same' padding, a [::2] subsampling or FactorizedReduce."""
    return (side + 1) // 2


def vit_patch(image_size: int) -> tuple[int, int]:
    """(kernel = stride, padding) of the ViT stem conv: 3/1 at 32 px (11x11), 16/0 at 224."""
    p = 16 if large_input(image_size) else 3
    return p, int(p < 4)


@dataclass(frozen=True)
class StemPlan:
    kind: str  # "vit", "simple" (type 0) or "imagenet" (type 1, DARTS)
    channels: int  # width of s0 and s1 entering cell 0 (C_stem for "simple", else C)
    kernel: int  # first conv: kernel, stride, padding
    stride: int
    padding: int
    pool: bool  # max-pool after the simple stem
    side0: int  # side of s0 and s1 entering cell 0
    side1: int


@dataclass(frozen=True)
class OpPlan:
    name: str  # primitive, e.g. "sep_conv_3x3"
    input: int  # state read (0, 1: cell inputs; 2..: steps)
    stride: int
    c_in: int
    c_out: int
    live: bool  # computed: not "none", its input exists and its result reaches the output


@dataclass(frozen=True)
class CellPlan:
    index: int
    reduction: bool
    reduction_prev: bool
    c_pp: int  # channels of s0, s1 entering the cell
    c_p: int
    c_out: int  # width of every op output (and of the preprocessed inputs with preproc)
    c_next: int  # what the next cell is told this one outputs: len(concat) * C_curr
    preprocess0: str
    preprocess1: str
    ops: tuple[OpPlan, ...]
    concat: tuple[int, ...]
    empty: tuple[bool, ...]  # per state (2 inputs + steps): None (nothing flows into it)
    reads: tuple[bool, bool]  # whether the (preprocessed) inputs are used
    live: bool  # the cell's output reaches the network output
    side_in: int  # side of the preprocessed inputs
    side_out: int

    @property
    def steps(self) -> int:
        return len(self.ops) // 2

    @property
    def output_empty(self) -> bool:
        return all(self.empty[i] for i in self.concat)


@dataclass(frozen=True)
class NetPlan:
    large: bool
    vit: bool
    stem: StemPlan
    cells: tuple[CellPlan, ...]
    side: int  # side of the last cell's output
    features: int  # classifier input
    classifier: tuple[tuple[int, int], ...]  # (in, out) of each Linear: classifier.0, .3, .6 ...
    glob_avg: bool


def _stem(spec: ArchSpec, image_size: int, large: bool) -> StemPlan:
    a = spec.args
    if a.is_vit:
        p, pad = vit_patch(image_size)
        side = conv_side(image_size, p, p, pad)
        return StemPlan("vit", a.C, p, p, pad, False, side, side)
    if a.stem_type == 0:
        stride = 4 if large else 1
        channels = 3 * a.C if (a.preproc and not large) else a.C
        side = conv_side(image_size, a.ks, stride, a.ks // 2)
        if a.stem_pool:
            side = conv_side(side, 3, 2, 1)
        return StemPlan("simple", channels, a.ks, stride, a.ks // 2, bool(a.stem_pool), side, side)
    if a.stem_type == 1:
        stride = 2 if large else 1
        side0 = conv_side(conv_side(image_size, a.ks, stride, a.ks // 2), 3, stride, 1)
        return StemPlan("imagenet", a.C, a.ks, stride, a.ks // 2, False, side0, halve(side0))
    raise ValueError(f"stem_type {a.stem_type} is not 0 (simple) or 1 (ImageNet-style)")


def _flow(cell, concat, in_empty: tuple[bool, bool]) -> tuple[list[bool], list[bool]]:
    """(empty per state, executed per op): an op runs unless it is ``none`` or its input is
    None; a step with no running op is None (the official cell's None states)."""
    empty = list(in_empty)
    runs = []
    for step in range(len(cell) // 2):
        pair = [op != "none" and not empty[idx] for op, idx in cell[2 * step:2 * step + 2]]
        runs += pair
        empty.append(not any(pair))
    return empty, runs


def _needed(cell, concat, empty, runs) -> tuple[list[bool], tuple[bool, bool]]:
    """Ops whose result reaches the cell output, and the inputs they read."""
    need = [False] * len(empty)
    for i in concat:
        need[i] = not empty[i]
    live = [False] * len(cell)
    for j in reversed(range(len(cell))):
        if runs[j] and need[j // 2 + 2]:
            live[j] = True
            need[cell[j][1]] = True
    return live, (need[0], need[1])


def plan_network(spec: ArchSpec, num_classes: int = 10, image_size: int = 32) -> NetPlan:
    """The official builder's decisions for ``spec`` at ``image_size``; ValueError when the
    official builder would fail (no output, widths it cannot build)."""
    a, g = spec.args, spec.genotype
    g.check()
    if a.norm not in (None, "bn", "bn-track"):
        raise ValueError(f"norm {a.norm!r} is not 'bn', 'bn-track' or None")
    steps = len(g.normal_concat)
    if (steps > 1 or a.C_mult > 1) and not a.preproc:
        raise ValueError("preproc=False needs C_mult=1 and one concatenated node (the cell "
                         "widths only match through the 1x1 preprocessing convs); set preproc")
    if a.fc_layers > 1 and a.fc_dim <= 0:
        raise ValueError(f"fc_layers={a.fc_layers} needs fc_dim > 0")
    large = large_input(image_size)
    vit = bool(a.is_vit)
    stem = _stem(spec, image_size, large)
    reductions = reduction_cells(a.n_cells)

    c_pp = c_p = stem.channels
    c_curr = a.C
    reduction_prev = a.stem_type == 1  # also in ViT nets, where it changes nothing
    side_pp, side_p = stem.side0, stem.side1
    empty_pp = empty_p = False
    raw = []
    for k in range(a.n_cells):
        reduction = k in reductions
        if reduction:
            c_curr *= a.C_mult
        reduction_next = (k + 1) in reductions
        c_in = c_curr if a.preproc else c_p
        c_out = c_curr * (a.C_mult if reduction_next and steps == 1 and not a.preproc else 1)
        cell, concat = (g.reduce, g.reduce_concat) if reduction else (g.normal, g.normal_concat)
        halves0 = reduction_prev and not vit
        if a.preproc:
            pre0 = FACTORIZED_REDUCE if halves0 else RELU_CONV_BN
            pre1 = RELU_CONV_BN
        else:
            pre0 = STRIDE if halves0 else IDENTITY
            pre1 = IDENTITY
        if pre0 == FACTORIZED_REDUCE and c_out % 2:
            raise ValueError(f"cell {k} halves its input 0 with a FactorizedReduce, which needs "
                             f"an even width (got {c_out}); use an even C")
        side_in = side_p
        if (halve(side_pp) if halves0 else side_pp) != side_in:
            raise ValueError(f"cell {k}: its inputs have sides {side_pp} and {side_in} "
                             f"(image size {image_size} does not fit this net)")
        strides = [2 if (reduction and idx < 2 and not vit) else 1 for _, idx in cell]
        for op, idx in cell:
            if op == "msa" and (c_in if idx <= 1 else c_out) < 8:
                raise ValueError(f"msa needs at least 8 channels (8 heads), cell {k} gives it "
                                 f"{c_in if idx <= 1 else c_out}; use C >= 8")
        empty, runs = _flow(cell, concat, (empty_pp, empty_p))
        raw.append(dict(index=k, reduction=reduction, reduction_prev=reduction_prev, c_pp=c_pp,
                        c_p=c_p, c_in=c_in, c_out=c_out, c_next=len(concat) * c_curr,
                        preprocess0=pre0, preprocess1=pre1, cell=cell, concat=tuple(concat),
                        strides=strides, empty=empty, runs=runs, side_in=side_in,
                        side_out=halve(side_in) if reduction and not vit else side_in))
        reduction_prev = reduction
        c_pp, c_p = c_p, len(concat) * c_curr
        side_pp, side_p = side_p, raw[-1]["side_out"]
        empty_pp, empty_p = empty_p, all(empty[i] for i in concat)
    if empty_p:
        raise ValueError("the network has no output: every path to its last cell goes through "
                         "'none' ops (the official builder raises on it)")
    cells = _liveness(raw)
    side = cells[-1].side_out if cells else stem.side1
    features = c_p if a.glob_avg else c_p * side * side
    classifier = [(features, a.fc_dim if a.fc_layers > 1 else num_classes)]
    for i in range(a.fc_layers - 1):
        classifier.append((a.fc_dim, a.fc_dim if i < a.fc_layers - 2 else num_classes))
    return NetPlan(large, vit, stem, tuple(cells), side, features, tuple(classifier),
                   bool(a.glob_avg))


def _liveness(raw: list[dict]) -> list[CellPlan]:
    """Walk back from the last cell: a cell is live if a live successor reads its output."""
    n = len(raw)
    out_needed = [False] * n
    if n:
        out_needed[-1] = True
    plans: list[CellPlan | None] = [None] * n
    for k in reversed(range(n)):
        r = raw[k]
        if out_needed[k]:
            live_ops, reads = _needed(r["cell"], r["concat"], r["empty"], r["runs"])
        else:
            live_ops, reads = [False] * len(r["cell"]), (False, False)
        if reads[1] and k >= 1:
            out_needed[k - 1] = True
        if reads[0] and k >= 2:
            out_needed[k - 2] = True
        ops = tuple(OpPlan(op, idx, s, r["c_in"] if idx <= 1 else r["c_out"], r["c_out"], lv)
                    for (op, idx), s, lv in zip(r["cell"], r["strides"], live_ops))
        plans[k] = CellPlan(r["index"], r["reduction"], r["reduction_prev"], r["c_pp"], r["c_p"],
                            r["c_out"], r["c_next"], r["preprocess0"], r["preprocess1"], ops,
                            r["concat"], tuple(r["empty"]), reads, out_needed[k], r["side_in"],
                            r["side_out"])
    return plans  # type: ignore[return-value]
