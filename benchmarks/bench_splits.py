"""Split packing and random-access benchmark (issue: foundation performance targets).

Reports, measured in one run on this machine:
* packing rate (archs/s) with N workers, and the extrapolated time for 1,000,000 archs;
* bytes per architecture and the extrapolated size of the 1M train file vs the official 10.3 GB;
* random access (read one architecture + build its graph arrays): our flat layout vs the same
  architectures stored one-HDF5-group-per-architecture (the original layout, written here),
  as a ratio, and the absolute time per architecture.

Usage: python benchmarks/bench_splits.py [--num 20000] [--workers 2] [--reads 2000]
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import h5py
import numpy as np

from deepnetsbench.splits import DeepNets1M, build_split

OFFICIAL_TRAIN_BYTES = 10.3e9


def write_group_layout(ds: DeepNets1M, path: Path) -> None:
    """One group per architecture with a dense uint8 adjacency and uint16 node rows."""
    with h5py.File(path, "w") as f:
        for i in range(len(ds)):
            rec = ds[i]
            g = rec.stored_graph()
            grp = f.create_group(str(i))
            grp.create_dataset("adj", data=g.adjacency())
            nodes = np.zeros((g.num_nodes, 5), np.uint16)
            nodes[:, 0] = g.node_types
            nodes[:, 1:] = np.minimum(g.shapes, 65535)
            grp.create_dataset("nodes", data=nodes)


def read_group(f: h5py.File, i: int):
    grp = f[str(i)]
    adj = grp["adj"][()]
    nodes = grp["nodes"][()]
    src, dst = np.nonzero(adj)
    return nodes[:, 0], nodes[:, 1:], np.stack([src, dst], 1)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--num", type=int, default=20000)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--reads", type=int, default=2000)
    ap.add_argument("--json", type=str, default=None)
    ap.add_argument("--big", type=str, default=None,
                    help="root of a full TRAIN build: also time random reads on it")
    args = ap.parse_args()
    root = Path(tempfile.mkdtemp())

    t = time.perf_counter()
    path = build_split("train", args.num, root=root, workers=args.workers, shard_size=2000,
                       progress=False)
    pack_s = time.perf_counter() - t
    rate = args.num / pack_s
    size = path.stat().st_size
    ds = DeepNets1M("train", root=root)

    group_path = root / "group_layout.h5"
    n_group = len(ds)
    write_group_layout(ds, group_path)
    rng = np.random.default_rng(0)
    idx = rng.integers(0, n_group, args.reads)

    t = time.perf_counter()
    for i in idx:
        ds[int(i)].stored_graph()
    ours = (time.perf_counter() - t) / args.reads

    with h5py.File(group_path, "r") as f:
        t = time.perf_counter()
        for i in idx:
            read_group(f, int(i))
        group = (time.perf_counter() - t) / args.reads
    group_bytes = group_path.stat().st_size / n_group

    out = {
        "num": args.num, "workers": args.workers,
        "pack_archs_per_s": round(rate, 1),
        "pack_1M_minutes_extrapolated": round(1e6 / rate / 60, 1),
        "bytes_per_arch": round(size / args.num, 1),
        "train_1M_gb_extrapolated": round(size / args.num * 1e6 / 1e9, 3),
        "size_ratio_vs_official": round(OFFICIAL_TRAIN_BYTES / (size / args.num * 1e6), 1),
        "group_layout_bytes_per_arch": round(group_bytes, 1),
        "read_ms_ours": round(ours * 1e3, 4),
        "read_ms_group_layout": round(group * 1e3, 4),
        "read_speedup_vs_group_layout": round(group / ours, 2),
    }
    if args.big:
        big = DeepNets1M("train", root=args.big)
        idx = rng.integers(0, len(big), args.reads)
        big[0]
        t = time.perf_counter()
        for i in idx:
            big[int(i)].stored_graph()
        out["big_num"] = len(big)
        out["big_file_gb"] = round(big.path.stat().st_size / 1e9, 3)
        out["big_read_ms"] = round((time.perf_counter() - t) / args.reads * 1e3, 4)
    print(json.dumps(out, indent=2))
    if args.json:
        Path(args.json).write_text(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
