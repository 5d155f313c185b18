"""Reading splits: :class:`DeepNets1M`, a torch ``Dataset`` of :class:`ArchRecord`.

The HDF5 file is opened lazily, once per process (so DataLoader workers each get their own
handle), and the small per-architecture tables are loaded in memory on first use; reading
one architecture is then a few slices of chunked arrays.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import h5py
import numpy as np
import torch
from torch import nn

from deepnetsbench.errors import BenchError
from deepnetsbench.graph.graph import Graph
from deepnetsbench.space.genotype import ArchSpec
from deepnetsbench.splits.codec import decode_spec
from deepnetsbench.splits.format import release_dir, split_path, verify_split


@dataclass
class ArchRecord:
    """One architecture of a split."""

    split: str
    index: int
    name: str
    spec: ArchSpec | None  # None for predefined (torchvision) models
    num_params: int  # at 10 classes, 32x32
    image_size: int = 32  # resolution the model is built at by default
    _arrays: tuple | None = field(default=None, repr=False)
    _graph: Graph | None = field(default=None, repr=False)
    _spec_src: tuple | None = field(default=None, repr=False, compare=False)
    _names: list | None = field(default=None, repr=False, compare=False)  # stored (ppuda) graphs

    def build_model(self, num_classes: int = 10, image_size: int | None = None) -> nn.Module:
        image_size = image_size or self.image_size
        if self.spec is not None:
            from deepnetsbench.space.network import Network

            return Network(self.spec, num_classes, image_size)
        from deepnetsbench.splits.predefined import build_predefined

        return build_predefined(self.name, num_classes, image_size)

    @property
    def graph(self) -> Graph:
        """The full graph (with parameter names) at 10 classes, 32x32 (or the model's size).
        For a converted official release it is the stored graph, as the official loader
        reads it."""
        if self._graph is None:
            if self._names is not None:
                self._graph = self.stored_graph()
            elif self.spec is not None:
                from deepnetsbench.graph.derive import graph_from_spec

                self._graph = graph_from_spec(self.spec, 10, 32)
            else:
                from deepnetsbench.graph.trace import graph_from_module

                self._graph = graph_from_module(self.build_model(10), self.image_size)
        return self._graph

    def graph_for(self, num_classes: int, image_size: int) -> Graph:
        """The graph of ``build_model(num_classes, image_size)`` (stored graphs: the stored
        nodes and edges with the built model's shapes, as the official loader does)."""
        if self._names is not None:
            from deepnetsbench.splits.ppuda import to_graph

            g = self.stored_graph()
            return to_graph(g.node_types, g.param_names, g.edges, self.spec, g.num_params,
                            num_classes, image_size)[0]
        if self.spec is not None:
            from deepnetsbench.graph.derive import graph_from_spec

            return graph_from_spec(self.spec, num_classes, image_size)
        from deepnetsbench.graph.trace import graph_from_module

        return graph_from_module(self.build_model(num_classes, image_size), image_size)

    def stored_graph(self) -> Graph:
        """The graph arrays as stored in the file (parameter names only where stored)."""
        types, shapes, edges = self._arrays
        names = list(self._names) if self._names is not None else [None] * len(types)
        return Graph(types.astype(np.int16), names, shapes, edges.astype(np.int32),
                     self.num_params)


def _get_spec(self: ArchRecord) -> ArchSpec | None:
    # Decoded on first use: reading graph arrays alone (GHN training) never pays for it.
    if self._spec is None and self._spec_src is not None:
        self._spec = decode_spec(*self._spec_src)
    return self._spec


def _set_spec(self: ArchRecord, value: ArchSpec | None) -> None:
    self._spec = value


ArchRecord.spec = property(_get_spec, _set_spec)  # type: ignore[assignment]


class DeepNets1M(torch.utils.data.Dataset):
    """Architectures of one split: ``DeepNets1M("test")[i] -> ArchRecord``.

    ``verify`` checks the file by content against its manifest (always for evaluation-sized
    files, by a full stat key for the TRAIN file; ``"full"`` always hashes), and
    :attr:`sha256` is the hash computed from the file, never the manifest's claim. A read
    error inside HDF5 (a damaged file) is a one-line BenchError, also mid-run."""

    def __init__(self, split: str = "test", root=None, path: str | os.PathLike | None = None,
                 verify: bool | str = True, release: str | None = None):
        self.split = split
        self.release = release
        self.path = Path(path) if path else split_path(release_dir(root, release), split)
        if release and not path and not self.path.exists():
            raise BenchError(f"release {release!r} has no {split} split ({self.path} not found)",
                             "convert the official files with `deepnets-bench convert-ppuda DIR`"
                             " (or fetch them with `deepnets-bench download`)")
        self.manifest = verify_split(self.path, split, full=verify == "full") if verify else {}
        self.sha256 = self.manifest.get("sha256")
        self._pid = None
        self._file = None
        try:
            with h5py.File(self.path, "r") as f:
                self.attrs = {k: (v.item() if hasattr(v, "item") else v)
                              for k, v in f.attrs.items()}
                self._len = int(f.attrs["num_items"])
                self.args = f["args"][()]
                self.cell_offset = f["cell_offset"][()]
                self.node_offset = f["node_offset"][()]
                self.edge_offset = f["edge_offset"][()]
                self.num_params = f["num_params"][()]
                self.names = ([n.decode() if isinstance(n, bytes) else n for n in f["names"][()]]
                              if "names" in f else None)
                self.image_sizes = f["image_size"][()] if "image_size" in f else None
                self.name_table = ([n.decode() if isinstance(n, bytes) else n
                                    for n in f["name_table"][()]] if "node_name" in f else None)
        except (OSError, KeyError, ValueError, TypeError) as err:
            raise self._corrupt(err) from None
        self.manifest.setdefault("generator_version", self.attrs.get("generator_version"))

    def _corrupt(self, err: BaseException) -> BenchError:
        what = " ".join(str(err).split())[:160] or type(err).__name__
        return BenchError(f"split file {self.path} is corrupt or unreadable ({what})",
                          f"delete it and run `deepnets-bench download` (or `deepnets-bench "
                          f"build --split {self.split}`)")

    def record_names(self) -> list[str]:
        """The name of every record, in index order (``test/00042``, ``resnet50``)."""
        if self.names is not None:
            return list(self.names)
        return [f"{self.split}/{i:05d}" for i in range(self._len)]

    def __len__(self) -> int:
        return self._len

    def _h5(self) -> h5py.File:
        if self._file is None or self._pid != os.getpid():
            self._file = h5py.File(self.path, "r", rdcc_nbytes=16 << 20)
            self._pid = os.getpid()
            self._ds = {k: self._file[k] for k in ("cell_codes", "node_type", "node_shape", "edges",
                                                   "node_name") if k in self._file}
        return self._file

    def __getitem__(self, i: int) -> ArchRecord:
        if not -self._len <= i < self._len:
            raise IndexError(f"{self.split} has {self._len} architectures, asked for {i}")
        i = int(i) % self._len
        try:
            self._h5()
            n0, n1 = self.node_offset[i], self.node_offset[i + 1]
            e0, e1 = self.edge_offset[i], self.edge_offset[i + 1]
            arrays = (self._ds["node_type"][n0:n1], self._ds["node_shape"][n0:n1],
                      self._ds["edges"][e0:e1])
            if self.names is not None:
                size = int(self.image_sizes[i]) if self.image_sizes is not None else 32
                return ArchRecord(self.split, i, self.names[i], None, int(self.num_params[i]),
                                  size, arrays)
            c0, c1 = self.cell_offset[i], self.cell_offset[i + 1]
            codes = self._ds["cell_codes"][c0:c1]
            names = None
            if self.name_table is not None:
                names = [None if k < 0 else self.name_table[k]
                         for k in self._ds["node_name"][n0:n1].tolist()]
        except (OSError, KeyError, ValueError) as err:  # h5py: "Can't synchronously read data"
            raise self._corrupt(err) from None
        return ArchRecord(self.split, i, f"{self.split}/{i:05d}", None, int(self.num_params[i]),
                          32, arrays, _spec_src=(self.args[i], codes), _names=names)

    def __getstate__(self):
        state = self.__dict__.copy()
        state["_file"], state["_pid"] = None, None
        state.pop("_ds", None)
        return state

    def num_nodes(self) -> np.ndarray:
        return np.diff(self.node_offset)

    def meta_batches(self, batch_size: int, shuffle: bool = True, seed: int = 0,
                     max_nodes: int | None = None):
        """Yield lists of indices (meta-batches); ``max_nodes`` skips batches whose total
        node count is larger (GHN-2 skipped meta-batches over ~2,200 nodes)."""
        return MetaBatchSampler(self, batch_size, shuffle, seed, max_nodes)


class MetaBatchSampler(torch.utils.data.Sampler):
    """Meta-batches of architecture indices, usable as a DataLoader ``batch_sampler``."""

    def __init__(self, ds: DeepNets1M, batch_size: int, shuffle: bool = True, seed: int = 0,
                 max_nodes: int | None = None):
        self.nodes = ds.num_nodes()
        self.batch_size, self.shuffle, self.seed, self.max_nodes = batch_size, shuffle, seed, max_nodes
        self.epoch = 0

    def __iter__(self):
        n = len(self.nodes)
        order = (np.random.default_rng([self.seed, self.epoch]).permutation(n) if self.shuffle
                 else np.arange(n))
        self.epoch += 1
        for s in range(0, n - self.batch_size + 1, self.batch_size):
            batch = order[s:s + self.batch_size]
            if self.max_nodes and int(self.nodes[batch].sum()) > self.max_nodes:
                continue
            yield [int(i) for i in batch]

    def __len__(self) -> int:
        return len(self.nodes) // self.batch_size


def generate_split(split: str, num: int, root=None, seed: int | None = None,
                   progress: bool = False) -> Path:
    """Build a (small) split file quickly, e.g. for ``--mock`` runs and tests."""
    from deepnetsbench.splits.build import build_split

    if split not in ("train", "val", "test", "wide", "deep", "dense", "bnfree", "predefined"):
        raise BenchError(f"unknown split {split!r}", "use train/val/test/wide/deep/dense/bnfree")
    return build_split(split, num, root=root, seed=seed, progress=progress)
