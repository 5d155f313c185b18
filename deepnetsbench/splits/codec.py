"""Compact array encoding of architecture specs and graphs (the body of a split file).

Specs become one row of small integers plus a flat list of ``(op, input)`` codes; graphs
become flat node/edge arrays with per-architecture offsets. See docs/format.md.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from deepnetsbench.graph.graph import Graph
from deepnetsbench.space.genotype import ArchSpec, Genotype, NetArgs
from deepnetsbench.space.primitives import PRIMITIVES

OP_INDEX = {op: i for i, op in enumerate(PRIMITIVES)}

#: Columns of the ``args`` table (all integers; norm: see :data:`NORM_CODES`).
ARG_COLUMNS = ("C", "n_cells", "stem_type", "stem_pool", "ks", "norm", "preproc", "glob_avg",
               "fc_layers", "fc_dim", "C_mult", "is_vit", "steps", "normal_concat",
               "reduce_concat")
ARGS_DTYPE = np.dtype([(c, np.int32) for c in ARG_COLUMNS])
#: ``norm`` column: 0 = none (BN-free), 1 = "bn" (official 'bnorm': BatchNorm without running
#: statistics), 2 = "bn-track" (official 'bn-track': with running statistics).
NORM_CODES: dict[str | None, int] = {None: 0, "bn": 1, "bn-track": 2}
_NORM_NAMES = {v: k for k, v in NORM_CODES.items()}


def _mask(nodes) -> int:
    m = 0
    for n in nodes:
        m |= 1 << n
    return m


def _unmask(m: int) -> tuple[int, ...]:
    return tuple(i for i in range(m.bit_length()) if m >> i & 1)


def encode_spec(spec: ArchSpec) -> tuple[tuple, np.ndarray]:
    """-> (args row, uint8 cell codes: normal then reduce, (op, input) per edge)."""
    a, g = spec.args, spec.genotype
    row = (a.C, a.n_cells, a.stem_type, int(a.stem_pool), a.ks, NORM_CODES[a.norm],
           int(a.preproc), int(a.glob_avg), a.fc_layers, a.fc_dim, a.C_mult, int(a.is_vit),
           len(g.normal) // 2, _mask(g.normal_concat), _mask(g.reduce_concat))
    codes = np.array([v for op, i in g.normal + g.reduce for v in (OP_INDEX[op], i)], np.uint8)
    return row, codes


def decode_spec(row, codes: np.ndarray) -> ArchSpec:
    (C, n_cells, stem_type, stem_pool, ks, norm, preproc, glob_avg, fc_layers, fc_dim, C_mult,
     is_vit, steps, normal_concat, reduce_concat) = row.tolist()
    c = codes.tolist()
    pairs = tuple(zip([PRIMITIVES[k] for k in c[0::2]], c[1::2]))
    n = 2 * steps
    genotype = Genotype(pairs[:n], _unmask(normal_concat), pairs[n:], _unmask(reduce_concat))
    args = NetArgs(C=C, n_cells=n_cells, stem_type=stem_type, stem_pool=bool(stem_pool), ks=ks,
                   norm=_NORM_NAMES[norm], preproc=bool(preproc), glob_avg=bool(glob_avg),
                   fc_layers=fc_layers, fc_dim=fc_dim, C_mult=C_mult, is_vit=bool(is_vit))
    return ArchSpec(genotype, args)


@dataclass
class Columns:
    """Flat arrays for a run of architectures (a shard, or a whole split)."""

    args: np.ndarray  # ARGS_DTYPE [n]
    cell_codes: np.ndarray  # uint8 [sum]
    cell_offset: np.ndarray  # int64 [n + 1]
    num_params: np.ndarray  # int64 [n]
    node_type: np.ndarray  # uint8 [sum]
    node_shape: np.ndarray  # int32 [sum, 4]
    node_offset: np.ndarray  # int64 [n + 1]
    edges: np.ndarray  # uint16 [sum, 2], local node indices
    edge_offset: np.ndarray  # int64 [n + 1]

    FIELDS = ("args", "cell_codes", "cell_offset", "num_params", "node_type", "node_shape",
              "node_offset", "edges", "edge_offset")

    def __len__(self) -> int:
        return len(self.args)

    @classmethod
    def from_items(cls, specs: list[ArchSpec], graphs: list[Graph]) -> Columns:
        rows, codes = zip(*(encode_spec(s) for s in specs)) if specs else ((), ())
        args = np.array(list(rows), dtype=ARGS_DTYPE)
        return cls(
            args=args,
            cell_codes=np.concatenate(codes) if codes else np.zeros(0, np.uint8),
            cell_offset=_offsets([len(c) for c in codes]),
            num_params=np.array([g.num_params for g in graphs], np.int64),
            node_type=np.concatenate([g.node_types.astype(np.uint8) for g in graphs])
            if graphs else np.zeros(0, np.uint8),
            node_shape=np.concatenate([g.shapes for g in graphs]).astype(np.int32)
            if graphs else np.zeros((0, 4), np.int32),
            node_offset=_offsets([g.num_nodes for g in graphs]),
            edges=np.concatenate([g.edges for g in graphs]).astype(np.uint16)
            if graphs else np.zeros((0, 2), np.uint16),
            edge_offset=_offsets([g.num_edges for g in graphs]),
        )

    @classmethod
    def concat(cls, parts: list[Columns]) -> Columns:
        def offs(name):
            out, base = [np.zeros(1, np.int64)], 0
            for p in parts:
                o = getattr(p, name)
                out.append(o[1:] + base)
                base += int(o[-1])
            return np.concatenate(out)

        return cls(
            args=np.concatenate([p.args for p in parts]),
            cell_codes=np.concatenate([p.cell_codes for p in parts]),
            cell_offset=offs("cell_offset"),
            num_params=np.concatenate([p.num_params for p in parts]),
            node_type=np.concatenate([p.node_type for p in parts]),
            node_shape=np.concatenate([p.node_shape for p in parts]),
            node_offset=offs("node_offset"),
            edges=np.concatenate([p.edges for p in parts]),
            edge_offset=offs("edge_offset"),
        )


def _offsets(lengths) -> np.ndarray:
    out = np.zeros(len(lengths) + 1, np.int64)
    np.cumsum(lengths, out=out[1:])
    return out
