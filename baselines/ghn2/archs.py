"""Training architectures and their widths: where they come from, how wide each is built
for a step, and the (model, graph) pair a step trains.

Widths follow the released training loader: ``C`` on the grid 32, 48, ..., 128 and
``fc_dim`` on 64, 128, ..., 512, smaller for bigger nets, decided by the net's size as the
official meta data records it (``num_params``: C = 32, 10 classes, at 32 px -- at 224 px
when training on ImageNet-size images):

* more than 0.8 M parameters, no global pooling, a 5x5/7x7 conv in a cell, or more than
  12 cells: C = 32;
* more than 0.4 M or more than 10 cells: C in {32, 48};
* more than 0.2 M or more than 8 cells: C in {32, 48, 64};
* otherwise any C of the grid;

fc_dim comes from the 4 smallest sizes (64..256), or from all 8 for a net of the last tier
drawn at C <= 64.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import nn

from baselines.ghn2.batch import virtual_edges
from baselines.ghn2.fastops import use_fast_ops
from baselines.ghn2.model import model_shapes
from deepnetsbench.errors import BenchError
from deepnetsbench.graph.derive import count_params, graph_from_spec
from deepnetsbench.graph.graph import Graph
from deepnetsbench.space.genotype import ArchSpec
from deepnetsbench.space.network import build_model
from deepnetsbench.space.primitives import BIG_CONV_OPS

__all__ = ["ArchSource", "sample_width", "width_grid", "Net", "build_net",
           "FC_ALL_MAX_WIDTH"]

#: A net of the last tier drawn at a width up to this one draws fc_dim from all sizes.
FC_ALL_MAX_WIDTH = 64


class ArchSource:
    """Training architectures by index: the packed DeepNets-1M train split when there is
    one, else the sampler (the same architectures: ``split_item("train", i)`` with the
    evaluation architectures excluded)."""

    def __init__(self, archs: str = "auto", root: str | None = None, num_archs: int = 1_000_000,
                 exclude_eval: bool = True):
        self.ds = None
        self.exclude: frozenset[str] = frozenset()
        self._exclude_eval = exclude_eval
        if archs not in ("auto", "sampler"):
            from deepnetsbench.splits import DeepNets1M

            path = Path(archs).expanduser()
            if not path.is_file():
                raise BenchError(f"architecture split file {path} does not exist",
                                 "pass --archs auto|sampler or a built split file")
            self.ds = DeepNets1M("train", path=path)
        elif archs == "auto":
            from deepnetsbench.paths import splits_dir
            from deepnetsbench.splits.format import split_path

            path = split_path(splits_dir(root), "train")
            if path.is_file():
                from deepnetsbench.splits import DeepNets1M

                self.ds = DeepNets1M("train", root=root)
        self.num_archs = len(self.ds) if self.ds is not None else int(num_archs)
        self._cache: OrderedDict[int, ArchSpec] = OrderedDict()

    @property
    def info(self) -> dict:
        from deepnetsbench.space.sampler import GENERATOR_VERSION

        if self.ds is not None:
            return {"source": "DeepNets1M:train", "path": str(self.ds.path),
                    "sha256": self.ds.sha256, "num_archs": self.num_archs,
                    "generator_version": self.ds.manifest.get("generator_version")}
        return {"source": "sampler", "num_archs": self.num_archs,
                "generator_version": GENERATOR_VERSION, "exclude_eval": self._exclude_eval}

    def nodes(self, i: int) -> int | None:
        """Node count when known without building (split files store it)."""
        return int(self.ds.num_nodes()[i]) if self.ds is not None else None

    def spec(self, i: int) -> ArchSpec:
        if i in self._cache:
            self._cache.move_to_end(i)
            return self._cache[i]
        if self.ds is not None:
            spec = self.ds[i].spec
        else:
            from deepnetsbench.space.sampler import eval_keys, split_item

            if self._exclude_eval and not self.exclude:
                self.exclude = eval_keys()
            spec = split_item("train", i, exclude=self.exclude)
        self._cache[i] = spec
        if len(self._cache) > 100_000:
            self._cache.popitem(last=False)
        return spec


def width_grid(lo: int, hi: int, step: int) -> np.ndarray:
    return np.arange(lo, hi + 1, step)


def sample_width(spec: ArchSpec, rng: np.random.Generator, widths: np.ndarray,
                 fc_dims: np.ndarray, large_images: bool = False) -> tuple[int, int]:
    """``(C, fc_dim)`` for one training step (module docstring; ``widths``/``fc_dims``: the
    grids, 32..128 step 16 and 64..512 step 64 in the released recipe)."""
    m = count_params(spec.with_args(C=32), 10, 224 if large_images else 32) / 1e6
    a = spec.args
    fc = int(fc_dims[rng.integers(min(4, len(fc_dims)))])
    big_conv = any(op in BIG_CONV_OPS for op in spec.genotype.ops())
    if m > 0.8 or not a.glob_avg or big_conv or a.n_cells > 12:
        k = 1
    elif m > 0.4 or a.n_cells > 10:
        k = 2
    elif m > 0.2 or a.n_cells > 8:
        k = 3
    else:
        k = len(widths)
    c = int(widths[rng.integers(min(k, len(widths)))])
    if k == len(widths) and c <= FC_ALL_MAX_WIDTH:
        fc = int(fc_dims[rng.integers(len(fc_dims))])
    return c, fc


@dataclass
class Net:
    """One training network: spec at its sampled width, meta-device module, graph."""

    index: int
    spec: ArchSpec
    model: nn.Module
    graph: Graph
    shapes: dict[str, tuple[int, ...]] = field(default_factory=dict)


def build_net(index: int, spec: ArchSpec, num_classes: int, image_size: int,
              vcache: OrderedDict | None = None, s_max: int = 50) -> Net:
    """Model on the meta device (no memory, no init: every parameter is predicted), with
    BatchNorm on batch statistics only (with NHWC gradients, :mod:`baselines.ghn2.fastops`),
    and its graph (virtual edges cached by topology: they do not depend on the width)."""
    with torch.device("meta"):
        model = use_fast_ops(build_model(spec, num_classes, image_size))
    for m in model.modules():
        if isinstance(m, nn.modules.batchnorm._BatchNorm):
            m.track_running_stats = False
    model.train()
    graph = graph_from_spec(spec, num_classes, image_size)
    if vcache is not None and s_max > 1:
        key = spec.key()
        if key in vcache:
            graph._virtual[s_max] = vcache[key]
            vcache.move_to_end(key)
        else:
            vcache[key] = virtual_edges(graph, s_max)
            if len(vcache) > 20_000:
                vcache.popitem(last=False)
    return Net(index, spec, model, graph, model_shapes(model))
