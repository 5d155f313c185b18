"""Plain, hashable descriptions of one DeepNets-1M architecture.

An :class:`ArchSpec` is everything needed to build the network: the DARTS-style genotype
(normal and reduction cells) plus the network-level arguments (:class:`NetArgs`). It has a
canonical JSON form, so its :meth:`ArchSpec.key` identifies an architecture across files,
processes and versions.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field, replace

from deepnetsbench.space.primitives import PRIMITIVES

Cell = tuple[tuple[str, int], ...]


@dataclass(frozen=True)
class Genotype:
    """Two ``(op, input_index)`` pairs per step; ``*_concat`` lists the nodes concatenated
    at the cell output (0, 1 are the cell inputs, 2.. the steps)."""

    normal: Cell
    normal_concat: tuple[int, ...]
    reduce: Cell
    reduce_concat: tuple[int, ...]

    def ops(self) -> tuple[str, ...]:
        return tuple(op for op, _ in self.normal) + tuple(op for op, _ in self.reduce)

    def check(self) -> None:
        """Refuse a malformed genotype with a one-line ValueError.

        Every genotype the official generator can emit passes: steps whose two ops are
        ``none``, dead ops and concat lists that leave nodes unread are all allowed (the
        network then computes what it can, like the official builder)."""
        for kind, cell, concat in (("normal", self.normal, self.normal_concat),
                                   ("reduce", self.reduce, self.reduce_concat)):
            if len(cell) == 0 or len(cell) % 2:
                raise ValueError(f"the {kind} cell has {len(cell)} ops; a cell needs two "
                                 "(op, input) pairs per step")
            for j, (op, idx) in enumerate(cell):
                if op not in PRIMITIVES:
                    raise ValueError(f"unknown primitive {op!r} in the {kind} cell; "
                                     f"use one of {', '.join(PRIMITIVES)}")
                if not 0 <= idx < j // 2 + 2:
                    raise ValueError(f"op {j} of the {kind} cell reads state {idx}, which does "
                                     f"not exist yet (step {j // 2} may read 0..{j // 2 + 1})")
            n_states = len(cell) // 2 + 2
            if not concat or any(not 2 <= i < n_states for i in concat):
                raise ValueError(f"bad {kind}_concat {list(concat)}: list step outputs, "
                                 f"indices 2..{n_states - 1}")

    def to_json(self) -> dict:
        return {
            "normal": [[op, i] for op, i in self.normal],
            "normal_concat": list(self.normal_concat),
            "reduce": [[op, i] for op, i in self.reduce],
            "reduce_concat": list(self.reduce_concat),
        }

    @classmethod
    def from_json(cls, d: dict) -> Genotype:
        def cell(items):
            return tuple((str(op), int(i)) for op, i in items)

        g = cls(
            normal=cell(d["normal"]),
            normal_concat=tuple(int(i) for i in d["normal_concat"]),
            reduce=cell(d["reduce"]),
            reduce_concat=tuple(int(i) for i in d["reduce_concat"]),
        )
        g.check()
        return g


@dataclass(frozen=True)
class NetArgs:
    """Network-level choices of the sampler (see docs/space.md)."""

    C: int = 32  # base width (channels of the first cells)
    n_cells: int = 8
    stem_type: int = 0  # 0: one conv of kernel ks (+ optional max-pool); 1: DARTS ImageNet stem
    stem_pool: bool = False
    ks: int = 3
    #: "bn": BatchNorm2d with batch statistics only (official 'bnorm'); "bn-track": with
    #: running statistics (official 'bn-track'); None: BN-free
    norm: str | None = "bn"
    preproc: bool = True  # 1x1 convs on the cell inputs even when shapes already match
    glob_avg: bool = True  # global average pooling head; False: flatten ("VGG-style") head
    fc_layers: int = 1
    fc_dim: int = 256
    C_mult: int = 2  # channel multiplier at each reduction cell
    #: patchifying stem + positional encoding, cells never stride; None: as the official
    #: builder, true iff a cell contains ``msa`` (resolved when the ArchSpec is made)
    is_vit: bool | None = None

    def to_json(self) -> dict:
        return asdict(self)

    @classmethod
    def from_json(cls, d: dict) -> NetArgs:
        names = set(cls.__dataclass_fields__)
        return cls(**{k: v for k, v in d.items() if k in names})


@dataclass(frozen=True)
class ArchSpec:
    genotype: Genotype
    args: NetArgs = field(default_factory=NetArgs)

    def __post_init__(self):
        if self.args.is_vit is None:
            object.__setattr__(self, "args",
                               replace(self.args, is_vit="msa" in self.genotype.ops()))

    @property
    def steps(self) -> int:
        return len(self.genotype.normal) // 2

    def to_json(self) -> dict:
        return {"genotype": self.genotype.to_json(), "args": self.args.to_json()}

    @classmethod
    def from_json(cls, d: dict) -> ArchSpec:
        return cls(Genotype.from_json(d["genotype"]), NetArgs.from_json(d["args"]))

    def canonical(self) -> str:
        return json.dumps(self.to_json(), sort_keys=True, separators=(",", ":"))

    def key(self, with_width: bool = False) -> str:
        """Stable identity (sha1 of the canonical JSON). By default the width ``C`` and
        ``fc_dim`` are left out: the same topology at another width is the same architecture."""
        d = self.to_json()
        if not with_width:
            d["args"] = {k: v for k, v in d["args"].items() if k not in ("C", "fc_dim")}
        blob = json.dumps(d, sort_keys=True, separators=(",", ":"))
        return hashlib.sha1(blob.encode()).hexdigest()

    def with_args(self, **changes) -> ArchSpec:
        return ArchSpec(self.genotype, replace(self.args, **changes))
