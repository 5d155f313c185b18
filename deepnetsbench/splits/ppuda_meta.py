"""Reading the official meta JSON (``deepnets1m_<eval|train>_meta.json``) without loading it.

Layout (docs/format.md): ``{split: {"nets": [record, ...], "meta": {"primitives_ext": {...},
"unique_op_names": {...}}}}``. The TRAIN file holds a million records, so the file is walked
as a stream: the top two levels are parsed by hand and each record (and each table) is
decoded on its own, which keeps memory bounded by one record whatever the file size.
"""

from __future__ import annotations

import ast
import codecs
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import IO, Any

import numpy as np

from deepnetsbench.errors import BenchError
from deepnetsbench.space.genotype import ArchSpec, Genotype, NetArgs
from deepnetsbench.space.primitives import NODE_INDEX

_WS = re.compile(r"[ \t\n\r]*")
_CHUNK = 1 << 20

#: The network arguments every official record carries (the loader reads exactly these).
RECORD_KEYS = ("stem_type", "stem_pool", "norm", "preproc", "fc_layers", "glob_avg", "genotype",
               "n_cells", "ks", "C_mult", "fc_dim")
#: Parameter-free node types: their op-name entry is the type name, not a parameter.
PARAM_FREE = frozenset({"input", "sum", "concat", "msa", "cse", "max_pool", "avg_pool",
                        "glob_avg"})
#: WIDE nets are evaluated at this multiple of the meta's C on CIFAR-10 (the loader's rule).
WIDE_FACTOR = 4


class MetaError(BenchError):
    """The meta file does not have the official layout."""


class _Stream:
    """A JSON text read chunk by chunk, with just enough parsing to walk two levels."""

    def __init__(self, f: IO, name: str):
        self.f, self.name = f, name
        self.buf, self.pos, self.eof = "", 0, False
        self.decoder = json.JSONDecoder()
        self.utf8 = codecs.getincrementaldecoder("utf-8")()

    def _fill(self) -> bool:
        if self.eof:
            return False
        if self.pos > _CHUNK:
            self.buf, self.pos = self.buf[self.pos:], 0
        block = self.f.read(_CHUNK)
        if isinstance(block, bytes):
            block = self.utf8.decode(block, final=not block)
        if not block:
            self.eof = True
            return False
        self.buf += block
        return True

    def peek(self) -> str:
        while True:
            self.pos = _WS.match(self.buf, self.pos).end()
            if self.pos < len(self.buf):
                return self.buf[self.pos]
            if not self._fill():
                return ""

    def expect(self, ch: str) -> None:
        got = self.peek()
        if got != ch:
            self.fail(f"expected {ch!r}, found {got or 'the end of the file'!r}")
        self.pos += 1

    def separator(self, close: str) -> bool:
        """Consume ``,`` (True: another item follows) or ``close`` (False)."""
        got = self.peek()
        if got == ",":
            self.pos += 1
            return True
        self.expect(close)
        return False

    def value(self) -> Any:
        self.peek()
        while True:
            try:
                value, end = self.decoder.raw_decode(self.buf, self.pos)
            except json.JSONDecodeError as err:
                if self._fill():
                    continue
                self.fail(err.msg)
            if end >= len(self.buf) and not isinstance(value, dict | list | str) and self._fill():
                continue  # a number or literal cut at the end of the buffer
            self.pos = end
            return value

    def fail(self, msg: str):
        raise MetaError(f"{self.name} is not an official DeepNets-1M meta file ({msg})",
                        "pass the deepnets1m_*_meta.json from deepnets1m_meta.tar.gz, unmodified")


def iter_meta(f: IO, name: str = "meta file") -> Iterator[tuple[str, str, Any]]:
    """Events of an official meta file in file order: ``("net", split, record)`` for each
    architecture record and ``("tables", split, {"primitives_ext": ..., ...})``."""
    s = _Stream(f, name)
    s.expect("{")
    if s.peek() == "}":
        return
    while True:
        split = s.value()
        if not isinstance(split, str):
            s.fail("top-level keys must be split names")
        s.expect(":")
        s.expect("{")
        if s.peek() != "}":
            while True:
                key = s.value()
                s.expect(":")
                if key == "nets":
                    s.expect("[")
                    if s.peek() != "]":
                        while True:
                            yield "net", split, s.value()
                            if not s.separator("]"):
                                break
                    else:
                        s.expect("]")
                else:
                    value = s.value()
                    if key == "meta":
                        yield "tables", split, value
                if not s.separator("}"):
                    break
        else:
            s.expect("}")
        if not s.separator("}"):
            break


# ----------------------------------------------------------------------------- tables


def decode_type(name: str) -> str:
    """A stored primitive name as the official loader maps it to a node type
    (``conv_1x1`` -> ``conv``, older ``sep_conv_3x3`` -> ``sep_conv``, ``fc-b`` -> ``bias``)."""
    if name.startswith("conv_"):
        return "conv"
    if name.find("conv_") > 0 or name.find("pool_") > 0:
        return name[:-4]
    if name == "fc-b":
        return "bias"
    return name


def decode_name(name: str, cell: int) -> str:
    """A stored op name as the official loader restores the parameter name."""
    if name.startswith("classifier"):
        return name
    if not name:
        name = "input"
    elif name.endswith("to_out.0."):
        name += "weight"
    else:  # older files: `_ops.<j>.<n>` without the `op` level
        parts = name.split(".")
        for i, part in enumerate(parts):
            if part == "_ops" and i + 2 < len(parts) and parts[i + 2] != "op" \
                    and parts[i + 2].isdigit():
                parts.insert(i + 2, "op")
                name = ".".join(parts)
                break
    name = f"cells.{cell}.{name}"
    for anchor in ("stem", "pos_enc"):
        at = name.find(anchor)
        if at >= 0:
            return name[at:]
    return name


@dataclass
class Tables:
    """One split's id tables (``primitives_ext``, ``unique_op_names``), keyed by int id."""

    types: dict[int, int]  # primitive id -> index into NODE_TYPES
    names: dict[int, str]  # op-name id -> stored name
    raw_types: dict[int, str]

    @classmethod
    def from_json(cls, meta: Any, split: str) -> Tables:
        if not isinstance(meta, dict) or not all(
                isinstance(meta.get(k), dict) for k in ("primitives_ext", "unique_op_names")):
            raise MetaError(f"split {split!r} of the meta file has no primitives_ext / "
                            "unique_op_names tables", "pass the official meta file, unmodified")
        try:
            raw = {int(k): str(v) for k, v in meta["primitives_ext"].items()}
            names = {int(k): str(v) for k, v in meta["unique_op_names"].items()}
        except ValueError as err:
            raise MetaError(f"split {split!r}: table keys must be integers ({err})",
                            "pass the official meta file, unmodified") from None
        types = {}
        for k, v in raw.items():
            t = decode_type(v)
            if t not in NODE_INDEX:
                raise MetaError(f"split {split!r}: unknown primitive {v!r} in primitives_ext",
                                "this converter reads the DeepNets-1M node types only")
            types[k] = NODE_INDEX[t]
        return cls(types, names, raw)

    def __post_init__(self) -> None:
        from deepnetsbench.space.primitives import NODE_TYPES

        self._lut = np.full(max(self.types, default=-1) + 1, -1, np.int16)
        for k, t in self.types.items():
            self._lut[k] = t
        self._free = {k for k, t in self.types.items() if NODE_TYPES[t] in PARAM_FREE}
        self._decoded: dict[tuple[int, int], str] = {}

    def node(self, type_id: int, cell: int, name_id: int, where: str) -> tuple[int, str | None]:
        """(node type index, official parameter name or None) of one ``nodes`` row."""
        for table, key in ((self.types, type_id), (self.names, name_id)):
            if key not in table:
                raise MetaError(f"{where}: id {key} is not in the split's tables",
                                "the HDF5 and the meta file must come from the same release")
        if type_id in self._free:
            return self.types[type_id], None
        if (name_id, cell) not in self._decoded:
            self._decoded[name_id, cell] = decode_name(self.names[name_id], cell)
        return self.types[type_id], self._decoded[name_id, cell]

    def rows(self, rows: np.ndarray, where: str) -> tuple[np.ndarray, list[str | None]]:
        """Node types and parameter names of a ``nodes`` array (row k is node k)."""
        names = [self.node(t, c, n, f"{where} row {k}")[1]
                 for k, (t, c, n) in enumerate(rows.tolist())]
        return self._lut[rows[:, 0].astype(np.int64)], names


# ----------------------------------------------------------------------------- records


def _parse_genotype(g: Any) -> Genotype:
    """A genotype as the official dict, or as an older ``Genotype(normal=[...], ...)`` string."""
    if isinstance(g, str):
        body = g.strip()
        if body.startswith("Genotype(") and body.endswith(")"):
            body = body[len("Genotype("):-1]
        fields = {}
        for m in re.finditer(r"(\w+)\s*=\s*(\[[^=]*\]|range\(\d+,\s*\d+\))", body):
            value = m.group(2)
            r = re.fullmatch(r"range\((\d+),\s*(\d+)\)", value)
            fields[m.group(1)] = (list(range(int(r.group(1)), int(r.group(2)))) if r
                                  else ast.literal_eval(value))
        g = fields
    return Genotype.from_json(g)


def norm_from_meta(value: Any) -> str | None:
    """Official ``norm`` -> ours: None/''/'none' is BN-free; a value containing ``track`` keeps
    running statistics (``bn-track``); anything else (``bnorm``) is BN with batch statistics
    only (``bn``) -- the official ``bn_layer`` rule."""
    if value in (None, "", "none", False):
        return None
    return "bn-track" if "track" in str(value) else "bn"


def norm_to_meta(norm: str | None) -> str | None:
    return {None: None, "bn": "bnorm", "bn-track": "bn-track"}[norm]


def spec_from_record(rec: Any, split: str, index: int) -> ArchSpec:
    """The architecture of one official record, at the width it is evaluated at: the record's
    ``C`` (x4 for WIDE, as the loader does for CIFAR-10), or 32 for TRAIN (whose widths the
    loader samples per access)."""
    where = f"{split}[{index}]"
    if not isinstance(rec, dict):
        raise MetaError(f"{where} of the meta file is not a record", "pass the official meta file")
    missing = [k for k in RECORD_KEYS if k not in rec]
    if split != "train" and "C" not in rec:
        missing.append("C")
    if missing:
        raise MetaError(f"{where} of the meta file lacks {', '.join(missing)}",
                        "pass the official meta file (eval records carry C)")
    try:
        genotype = _parse_genotype(rec["genotype"])
        C = int(rec["C"]) if "C" in rec else 32
        if split == "wide":
            C *= WIDE_FACTOR
        args = NetArgs(C=C, n_cells=int(rec["n_cells"]), stem_type=int(rec["stem_type"]),
                       stem_pool=bool(rec["stem_pool"]), ks=int(rec["ks"]),
                       norm=norm_from_meta(rec["norm"]), preproc=bool(rec["preproc"]),
                       glob_avg=bool(rec["glob_avg"]), fc_layers=int(rec["fc_layers"]),
                       fc_dim=int(rec["fc_dim"]), C_mult=int(rec["C_mult"]),
                       is_vit="msa" in genotype.ops())
    except (KeyError, TypeError, ValueError) as err:
        raise MetaError(f"{where} of the meta file has a bad value ({err})",
                        "pass the official meta file, unmodified") from None
    return ArchSpec(genotype, args)


def record_from_spec(spec: ArchSpec, split: str, num_nodes: int,
                     num_params: dict[str, int]) -> dict:
    """The official record of ``spec`` (keys in the official order; eval records carry C:
    the evaluation width, divided by 4 for WIDE)."""
    a, g = spec.args, spec.genotype
    rec = {"stem_type": a.stem_type, "stem_pool": a.stem_pool, "norm": norm_to_meta(a.norm),
           "preproc": a.preproc, "fc_layers": a.fc_layers, "glob_avg": a.glob_avg,
           "genotype": g.to_json(), "n_cells": a.n_cells, "ks": a.ks, "C_mult": a.C_mult,
           "fc_dim": a.fc_dim, "num_nodes": int(num_nodes),
           "num_params": {k: int(v) for k, v in num_params.items()}}
    if split != "train":
        rec["C"] = a.C // WIDE_FACTOR if split == "wide" else a.C
    return rec
