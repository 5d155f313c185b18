"""Convert between the original DeepNets-1M release (the ``ppuda`` layout) and ours.

The original stores one HDF5 group per architecture (``/<split>/<idx>/adj`` uint8 adjacency,
``/<split>/<idx>/nodes`` uint16 rows ``[primitive, cell, param-name]``) and a JSON sidecar per
split with genotypes and network arguments. We keep the *architectures* (genotype + args)
and re-derive graphs with our builder, so graphs of converted and generated splits share one
definition; the original node counts are kept for reference.
"""

from __future__ import annotations

import ast
import json
import re
from pathlib import Path

import h5py
import numpy as np

from deepnetsbench.errors import BenchError
from deepnetsbench.graph.derive import graph_from_spec
from deepnetsbench.space.genotype import ArchSpec, Genotype, NetArgs
from deepnetsbench.space.primitives import NODE_TYPES
from deepnetsbench.splits.codec import Columns
from deepnetsbench.splits.format import write_split

_ARG_KEYS = ("C", "n_cells", "stem_type", "stem_pool", "ks", "norm", "preproc", "glob_avg",
             "fc_layers", "fc_dim", "C_mult")


def _parse_genotype(g) -> Genotype:
    """A genotype as a dict, or as the original's ``Genotype(normal=[...], ...)`` string."""
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


def spec_from_ppuda(meta: dict) -> ArchSpec:
    genotype = _parse_genotype(meta["genotype"])
    net = meta.get("net_args", meta)
    args = {k: net[k] for k in _ARG_KEYS if k in net}
    norm = args.get("norm", "bn")
    args["norm"] = "bn" if norm in ("bn", "bn-track", True, 1) else None
    for k in ("stem_pool", "preproc", "glob_avg"):
        if k in args:
            args[k] = bool(args[k])
    args["is_vit"] = "msa" in genotype.ops()
    return ArchSpec(genotype, NetArgs(**{k: v for k, v in args.items()}))


def _load_meta(meta_path: Path) -> tuple[list[dict], dict]:
    try:
        meta = json.loads(Path(meta_path).read_text())
    except (OSError, json.JSONDecodeError) as err:
        raise BenchError(f"cannot read ppuda meta file {meta_path} ({err})",
                         "pass the deepnets1m_<split>_meta.json from deepnets1m_meta.tar.gz")
    tables = {k: meta.pop(k) for k in ("primitives_ext", "unique_op_names") if k in meta}
    items = meta.get("archs", meta)
    if isinstance(items, dict):
        items = [items[k] for k in sorted(items, key=int)]
    return items, tables


def convert_ppuda(h5_path: Path | None, meta_path: Path, split: str, out: Path) -> Path:
    """Write our split file from an original meta JSON (and its HDF5 for node counts)."""
    items, _ = _load_meta(meta_path)
    specs = [spec_from_ppuda(m) for m in items]
    graphs = [graph_from_spec(s, 10, 32) for s in specs]
    extra = {}
    if h5_path is not None:
        try:
            with h5py.File(h5_path, "r") as f:
                group = f[split]
                extra["ppuda_num_nodes"] = np.array(
                    [group[str(i)]["nodes"].shape[0] for i in range(len(specs))], np.int32)
        except (OSError, KeyError) as err:
            raise BenchError(f"{h5_path} is not a ppuda file with split {split!r} ({err})",
                             "pass the matching deepnets1m_*.hdf5")
    attrs = {"split": split, "num_items": len(specs), "generator_version": "ppuda",
             "seed": -1, "num_classes": 10, "image_size": 32, "source": "ppuda"}
    write_split(out, Columns.from_items(specs, graphs), attrs, extra=extra)
    return Path(out)


def export_ppuda(ds, h5_path: Path, meta_path: Path) -> None:
    """Write a split in the original layout (for tools built on the original release)."""
    op_names: dict[str, int] = {}
    metas = []
    with h5py.File(h5_path, "w") as f:
        group = f.create_group(ds.split)
        for i in range(len(ds)):
            rec = ds[i]
            g = rec.graph
            rows = np.zeros((g.num_nodes, 3), np.uint16)
            for k, name in enumerate(g.param_names):
                key = name or NODE_TYPES[g.node_types[k]]
                rows[k] = (g.node_types[k], _cell_index(name), op_names.setdefault(key, len(op_names)))
            item = group.create_group(str(i))
            item.create_dataset("adj", data=g.adjacency())
            item.create_dataset("nodes", data=rows)
            metas.append({"genotype": rec.spec.genotype.to_json(), "net_args": rec.spec.args.to_json(),
                          "num_nodes": g.num_nodes, "num_params": {"cifar10": rec.num_params}})
    meta = {"archs": metas, "primitives_ext": list(NODE_TYPES), "unique_op_names": list(op_names)}
    Path(meta_path).write_text(json.dumps(meta))


def _cell_index(name: str | None) -> int:
    m = re.match(r"cells\.(\d+)\.", name or "")
    return int(m.group(1)) if m else 65535
