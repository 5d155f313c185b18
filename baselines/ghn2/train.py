"""Train GHN-2 on DeepNets-1M architectures and an image dataset (CIFAR-10 by default).

    python -m baselines.ghn2.train --data ../shared/data/cifar10.tar.gz --out runs/ghn2 \\
        --device cuda --time-budget 3600
    python -m baselines.ghn2.train --out runs/ghn2 --resume          # continue a run
    torchrun --nproc-per-node 4 -m baselines.ghn2.train ...          # several GPUs

The published recipe (Knyazev et al., 2021), all of it in :class:`TrainConfig`: meta-batches
of 8 training architectures, each built at a random width ``C`` (16..128, smaller for
bigger nets) and ``fc_dim`` (64..512); Adam (lr 1e-3, weight decay 1e-5), lr x0.1 at 2/3
and 5/6 of the schedule (epochs 200 and 250 of 300); gradient-norm clipping at 5; image
batches of 64 from 45,000 CIFAR-10 training images (5,000 held out for validation); one
step predicts the parameters of the meta-batch, runs every network on the image batch with
them and back-propagates the sum of the cross-entropy losses into the GHN. Meta-batches
over ``max_nodes`` (2,200) nodes are skipped.

Memory: each network runs forward and backward on its own (its predicted tensors are
detached leaves), then one backward pass carries all their gradients into the GHN; that
is the same gradient as one big backward, with one network's activations alive at a time.

Multi-GPU (``torchrun``): every rank predicts and runs its slice of the meta-batch
(``nets[rank::world]``) on the same image batch and the GHN gradients are summed over
ranks (all-reduce), which equals the single-process gradient of the whole meta-batch
(tested with two gloo processes on CPU). Only rank 0 validates, logs and writes
checkpoints; with ``--time-budget`` the slowest rank's clock decides when all stop.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import sys
import time
from collections import OrderedDict
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from baselines.ghn2.batch import virtual_edges
from baselines.ghn2.checkpoint import read_checkpoint, save_checkpoint
from baselines.ghn2.model import GHN2, GHN2Config, model_shapes
from deepnetsbench.errors import BenchError
from deepnetsbench.graph.derive import count_nodes_params, count_params, graph_from_spec
from deepnetsbench.graph.graph import Graph
from deepnetsbench.space.genotype import ArchSpec
from deepnetsbench.space.network import build_model
from deepnetsbench.space.primitives import BIG_CONV_OPS

__all__ = ["TrainConfig", "Trainer", "train", "main", "load_images", "ArchSource",
           "sample_width", "random_crop_flip"]


@dataclass
class TrainConfig:
    """Everything about a training run (the GHN's own sizes are in :class:`GHN2Config`)."""

    data: str = "cifar10"  # archive path, cached dataset name, or "synthetic"
    root: str | None = None  # deepnets-bench data root (splits, image cache)
    archs: str = "auto"  # "auto" (DeepNets1M train if built, else the sampler), "sampler",
    #                      or a path to a split file
    num_archs: int = 1_000_000  # architectures drawn from (sampler source)
    exclude_eval: bool = True  # sampler: skip architectures of the evaluation splits
    out: str = "runs/ghn2"  # folder for last.pt, best.pt, log.jsonl
    device: str = "cpu"
    seed: int = 0
    meta_batch: int = 8
    batch_size: int = 64
    epochs: int = 300  # one epoch = one pass over the training images
    max_steps: int | None = None  # overrides epochs
    time_budget: float | None = None  # seconds of training (validation excluded)
    lr: float = 1e-3
    weight_decay: float = 1e-5
    milestones: tuple[float, ...] = (2 / 3, 5 / 6)  # fractions of the schedule
    gamma: float = 0.1
    grad_clip: float = 5.0
    max_nodes: int = 2200  # skip meta-batches with more nodes in total
    width_range: tuple[int, int] = (16, 128)  # training widths C, see sample_width
    width_step: int = 16
    fc_dim_range: tuple[int, int] = (64, 512)
    fc_dim_step: int = 64
    val_images: int = 5000  # held out from the training images
    val_limit: int | None = None  # score on the first N held-out images (None: all)
    val_archs: int = 4
    val_every: int = 1000  # steps (0: only at the end)
    image_size: int | None = None  # default: the dataset's
    augment: bool = True  # random crop (pad 4) + horizontal flip
    amp: bool = True  # bf16 autocast for the networks, CUDA only
    channels_last: bool = True  # NHWC images for the networks (faster convolutions)
    log_every: int = 20
    ckpt_every: int = 500
    synthetic_images: int = 2000  # train images of --data synthetic
    progress: bool = True

    def to_dict(self) -> dict:
        d = asdict(self)
        d["milestones"] = list(self.milestones)
        d["width_range"] = list(self.width_range)
        d["fc_dim_range"] = list(self.fc_dim_range)
        return d

    @classmethod
    def from_dict(cls, d: dict) -> TrainConfig:
        known = {f.name for f in fields(cls)}
        d = {k: v for k, v in d.items() if k in known}
        for key in ("milestones", "width_range", "fc_dim_range"):
            if key in d:
                d[key] = tuple(d[key])
        return cls(**d)


# ----------------------------------------------------------------------------- images


def load_images(data: str, root: str | None = None, synthetic_images: int = 2000):
    """An :class:`~deepnetsbench.data.ImageDataset` from an archive path, a cached dataset
    name, or ``"synthetic"``."""
    from deepnetsbench.data import load_archive, load_dataset, synthetic_dataset

    if data == "synthetic":
        return synthetic_dataset(n_train=synthetic_images, n_test=200, seed=0)
    path = Path(data).expanduser()
    if path.exists():
        return load_archive(path, root=root, progress=False)
    return load_dataset(data, root=root)


def random_crop_flip(x: torch.Tensor, pad: int = 4, generator: torch.Generator | None = None
                     ) -> torch.Tensor:
    """CIFAR augmentation on a batch: zero-pad, random crop back to size, random h-flip."""
    b, c, h, w = x.shape
    dev = x.device
    xp = F.pad(x, (pad, pad, pad, pad))
    dy = torch.randint(0, 2 * pad + 1, (b,), generator=generator).to(dev)
    dx = torch.randint(0, 2 * pad + 1, (b,), generator=generator).to(dev)
    flip = (torch.rand(b, generator=generator) < 0.5).to(dev)
    rows = (dy[:, None] + torch.arange(h, device=dev)[None])  # [b, h]
    cols = dx[:, None] + torch.arange(w, device=dev)[None]  # [b, w]
    cols = torch.where(flip[:, None], cols.flip(1), cols)
    bi = torch.arange(b, device=dev)[:, None, None, None]
    ci = torch.arange(c, device=dev)[None, :, None, None]
    return xp[bi, ci, rows[:, None, :, None], cols[:, None, None, :]]


class ImageStream:
    """Shuffled batches of the training images (uint8 kept, converted per batch)."""

    def __init__(self, ds, indices: np.ndarray, batch_size: int, image_size: int,
                 device: torch.device, augment: bool, seed: int):
        self.ds, self.indices = ds, indices
        self.batch_size, self.image_size, self.device = batch_size, image_size, device
        self.augment = augment
        self.rng = np.random.default_rng([seed, 17])
        self.gen = torch.Generator().manual_seed(seed + 17)
        self.order = self.rng.permutation(indices)
        self.pos = 0
        self.epoch = 0
        mean, std = ds.stats(3)
        self.mean = torch.tensor(mean, dtype=torch.float32).view(1, 3, 1, 1)
        self.std = torch.tensor(std, dtype=torch.float32).view(1, 3, 1, 1)

    def convert(self, idx: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
        x = torch.from_numpy(np.ascontiguousarray(self.ds.train_x[idx])).permute(0, 3, 1, 2)
        if x.shape[1] == 1:
            x = x.expand(-1, 3, -1, -1)
        x = x.float().div_(255.0)
        if x.shape[-1] != self.image_size:
            x = F.interpolate(x, size=(self.image_size, self.image_size), mode="bilinear",
                              antialias=True, align_corners=False)
        x = ((x - self.mean) / self.std).to(self.device, non_blocking=True)
        y = torch.from_numpy(self.ds.train_y[idx]).to(self.device, non_blocking=True)
        return x, y

    def next(self) -> tuple[torch.Tensor, torch.Tensor]:
        if self.pos + self.batch_size > len(self.order):
            self.order = self.rng.permutation(self.indices)
            self.pos = 0
            self.epoch += 1
        idx = self.order[self.pos:self.pos + self.batch_size]
        self.pos += self.batch_size
        x, y = self.convert(idx)
        if self.augment:
            x = random_crop_flip(x, generator=self.gen)
        return x, y

    def state(self) -> dict:
        return {"rng": self.rng.bit_generator.state, "gen": self.gen.get_state(),
                "order": torch.from_numpy(self.order.copy()), "pos": self.pos,
                "epoch": self.epoch}

    def load_state(self, st: dict) -> None:
        self.rng.bit_generator.state = st["rng"]
        self.gen.set_state(st["gen"])
        self.order = st["order"].numpy().copy()
        self.pos, self.epoch = int(st["pos"]), int(st["epoch"])


def split_train_val(n: int, val: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """The 45k/5k split: a seeded permutation of the training images, the last ``val``
    held out. Independent of the training seed, so every run holds out the same images."""
    if not 0 <= val < n:
        raise BenchError(f"cannot hold out {val} of {n} training images",
                         "lower --val-images")
    perm = np.random.default_rng(seed).permutation(n)
    return np.sort(perm[: n - val]), np.sort(perm[n - val:])


# ----------------------------------------------------------------------------- architectures


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


def sample_width(spec: ArchSpec, rng: np.random.Generator, cfg: TrainConfig,
                 num_classes: int = 10, image_size: int = 32) -> tuple[int, int]:
    """``(C, fc_dim)`` for one training step, by the published GHN-2 rule ("smaller for
    bigger nets", docs/baselines.md): the widths are the grid ``width_range`` in steps of
    ``width_step`` (16, 32, ..., 128) and the fc sizes ``fc_dim_range`` in steps of
    ``fc_dim_step`` (64, ..., 512). How many of the smallest widths a net may draw from
    depends on its size at its stored width (C = 32 in the train split):

    * more than 0.8 M parameters, no global pooling, a 5x5/7x7 conv in a cell or more
      than 12 cells: the smallest width only;
    * more than 0.4 M or more than 10 cells: the 2 smallest; more than 0.2 M or more than
      8 cells: the 3 smallest; otherwise any width.

    fc_dim is drawn from the 4 smallest fc sizes, or from all of them for a small net
    drawn at one of the 4 smallest widths."""
    lo, hi = cfg.width_range
    grid = np.arange(lo, hi + 1, cfg.width_step)
    flo, fhi = cfg.fc_dim_range
    fgrid = np.arange(flo, fhi + 1, cfg.fc_dim_step)
    m = count_params(spec, num_classes, image_size) / 1e6
    a = spec.args
    big_conv = any(op in BIG_CONV_OPS for op in spec.genotype.ops())
    if m > 0.8 or not a.glob_avg or big_conv or a.n_cells > 12:
        k = 1
    elif m > 0.4 or a.n_cells > 10:
        k = 2
    elif m > 0.2 or a.n_cells > 8:
        k = 3
    else:
        k = len(grid)
    c = int(grid[rng.integers(min(k, len(grid)))])
    small_fc = k == len(grid) and c <= grid[min(3, len(grid) - 1)]
    fc_dim = int(fgrid[rng.integers(len(fgrid) if small_fc else min(4, len(fgrid)))])
    return c, fc_dim


# ----------------------------------------------------------------------------- one step


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
    BatchNorm on batch statistics only, and its graph (virtual edges cached by topology:
    they do not depend on the width)."""
    with torch.device("meta"):
        model = build_model(spec, num_classes, image_size)
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


def net_losses(ghn: GHN2, nets: list[Net], x: torch.Tensor, y: torch.Tensor,
               amp: bool = False, channels_last: bool = True
               ) -> tuple[torch.Tensor, list[float], list[float]]:
    """Predict, run every net, back-propagate into the GHN. Returns (summed loss, per-net
    losses, per-net accuracies). Gradients are left in ``ghn``'s ``.grad``.

    ``channels_last`` runs the networks on NHWC images: the same result, and oneDNN's
    convolutions (depthwise ones above all) are ~1.3x faster per CPU step that way."""
    if channels_last and x.dim() == 4:
        x = x.contiguous(memory_format=torch.channels_last)
    preds = ghn.predict_params([n.graph for n in nets], [n.shapes for n in nets])
    leaves, grads = [], []
    losses, accs = [], []
    use_amp = amp and x.device.type == "cuda"
    for net, params in zip(nets, preds):
        missing = set(net.shapes) - set(params)
        if missing:
            raise RuntimeError(f"GHN left {len(missing)} parameters of {net.spec.key()[:8]} "
                               f"unpredicted: {sorted(missing)[:3]}")
        detached = {k: v.detach().requires_grad_(True) for k, v in params.items()}
        with torch.autocast(device_type=x.device.type, dtype=torch.bfloat16, enabled=use_amp):
            logits = torch.func.functional_call(net.model, detached, (x,))
        loss = F.cross_entropy(logits.float(), y)
        loss.backward()
        losses.append(float(loss.detach()))
        accs.append(float((logits.detach().argmax(1) == y).float().mean()))
        for k, v in params.items():
            g = detached[k].grad
            if g is not None:
                leaves.append(v)
                grads.append(g)
    if leaves:
        torch.autograd.backward(leaves, grads)
    return torch.tensor(sum(losses)), losses, accs


# ----------------------------------------------------------------------------- trainer


def _dist() -> tuple[int, int]:
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        return torch.distributed.get_rank(), torch.distributed.get_world_size()
    return 0, 1


class Trainer:
    """State of a run; :meth:`run` trains until the step or time budget is spent."""

    def __init__(self, cfg: TrainConfig, ghn_cfg: GHN2Config | None = None,
                 resume: bool = False, images=None, archs: ArchSource | None = None,
                 val_specs: list[ArchSpec] | None = None):
        from deepnetsbench.eval.accuracy import resolve_device

        self.cfg = cfg
        self.out = Path(cfg.out)
        self.rank, self.world = _dist()
        self.device = resolve_device(cfg.device)
        if self.device.type == "cuda" and self.world > 1:
            self.device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", 0)))
            torch.cuda.set_device(self.device)
        torch.manual_seed(cfg.seed)
        ckpt = None
        if resume:
            last = self.out / "last.pt"
            ckpt = read_checkpoint(last)
            stored = GHN2Config.from_dict(dict(ckpt["config"]))
            if ghn_cfg is not None and ghn_cfg != stored:
                raise BenchError(f"--resume: {last} was trained with another GHN-2 config",
                                 "drop the --ghn-opt options or start a new --out folder")
            ghn_cfg = stored
        self.ghn = GHN2(ghn_cfg or GHN2Config()).to(self.device)
        self.opt = torch.optim.Adam(self.ghn.parameters(), lr=cfg.lr,
                                    weight_decay=cfg.weight_decay)
        self.images = images if images is not None else load_images(
            cfg.data, cfg.root, cfg.synthetic_images)
        if self.images.num_classes != self.ghn.config.num_classes:
            print(f"note: {self.images.num_classes} classes but the GHN's classifier head has "
                  f"{self.ghn.config.num_classes} rows (tiled)", file=sys.stderr)
        self.image_size = cfg.image_size or self.images.image_size
        n = len(self.images.train_x)
        self.train_idx, self.val_idx = split_train_val(n, min(cfg.val_images, n - 1), 0)
        self.stream = ImageStream(self.images, self.train_idx, cfg.batch_size, self.image_size,
                                  self.device, cfg.augment, cfg.seed)
        self.archs = archs or ArchSource(cfg.archs, cfg.root, cfg.num_archs, cfg.exclude_eval)
        self.rng = np.random.default_rng([cfg.seed, 1])
        self.vcache: OrderedDict = OrderedDict()
        self.val_specs = val_specs
        self.step = 0
        self.skipped = 0
        self.elapsed = 0.0
        self.history: list[dict] = []
        self.best = -1.0
        self.steps_per_epoch = max(1, math.ceil(len(self.train_idx) / cfg.batch_size))
        self.total_steps = cfg.max_steps or cfg.epochs * self.steps_per_epoch
        if ckpt is not None:
            self._restore(ckpt)

    # -- checkpoints ----------------------------------------------------------------------
    def _sections(self, resumable: bool) -> dict:
        val_sha = hashlib.sha256(self.val_idx.astype("<i8").tobytes()).hexdigest()
        train = {"step": self.step, "skipped": self.skipped, "elapsed_s": self.elapsed,
                 "config": self.cfg.to_dict(), "total_steps": self.total_steps}
        if resumable:
            train.update(optimizer=self.opt.state_dict(), stream=self.stream.state(),
                         rng=self.rng.bit_generator.state, torch_rng=torch.get_rng_state())
        return {
            "data": {"dataset": self.images.name, "source": self.images.source,
                     "content_sha256": self.images.content_sha256,
                     "train_images": int(len(self.train_idx)),
                     "val_images": int(len(self.val_idx)), "split_seed": 0,
                     "val_indices_sha256": val_sha, "image_size": self.image_size},
            "archs": self.archs.info,
            "train": train,
            "metrics": {"val": self.history, "best_top1": self.best},
        }

    def save(self, name: str = "last.pt", resumable: bool = True) -> Path | None:
        if self.rank != 0:
            return None
        return save_checkpoint(self.out / name, self.ghn, **self._sections(resumable))

    def _restore(self, ckpt: dict) -> None:
        self.ghn.load_state_dict(ckpt["state_dict"])
        tr = ckpt.get("train", {})
        if "optimizer" not in tr:
            raise BenchError("the checkpoint holds no optimizer state (not resumable)",
                             "resume from last.pt, not from a final/best checkpoint")
        data = ckpt.get("data", {})
        if data.get("content_sha256") not in (None, self.images.content_sha256):
            raise BenchError("--resume: the training images differ from the checkpoint's",
                             "pass the same --data as the original run")
        self.opt.load_state_dict(tr["optimizer"])
        self.stream.load_state(tr["stream"])
        self.rng.bit_generator.state = tr["rng"]
        torch.set_rng_state(tr["torch_rng"])
        self.step, self.skipped = int(tr["step"]), int(tr.get("skipped", 0))
        self.elapsed = float(tr["elapsed_s"])
        self.history = list(ckpt.get("metrics", {}).get("val", []))
        self.best = float(ckpt.get("metrics", {}).get("best_top1", -1.0))

    # -- schedule -------------------------------------------------------------------------
    def progress(self) -> float:
        p = self.step / max(1, self.total_steps)
        if self.cfg.time_budget:
            p = max(p, self.elapsed / self.cfg.time_budget)
        return min(1.0, p)

    def lr(self) -> float:
        passed = sum(self.progress() >= m for m in self.cfg.milestones)
        return self.cfg.lr * self.cfg.gamma ** passed

    def done(self) -> bool:
        if self.step >= self.total_steps:
            return True
        if not self.cfg.time_budget:
            return False
        elapsed = self.elapsed
        if self.world > 1:  # every rank must stop at the same step: the slowest one decides
            t = torch.tensor([elapsed], dtype=torch.float64, device=self.device)
            torch.distributed.all_reduce(t, op=torch.distributed.ReduceOp.MAX)
            elapsed = float(t)
        return elapsed >= self.cfg.time_budget

    # -- one step -------------------------------------------------------------------------
    def sample_nets(self) -> list[Net] | None:
        """A meta-batch, or None when it has too many nodes (skipped, as published)."""
        cfg = self.cfg
        idx = self.rng.integers(self.archs.num_archs, size=cfg.meta_batch)
        known = [self.archs.nodes(int(i)) for i in idx]
        if all(k is not None for k in known) and sum(known) > cfg.max_nodes:
            return None
        chosen = []
        for i in idx.tolist():
            spec = self.archs.spec(i)
            c, fc = sample_width(spec, self.rng, cfg, self.images.num_classes, self.image_size)
            chosen.append((i, spec.with_args(C=c, fc_dim=fc)))
        total = sum(count_nodes_params(spec, self.images.num_classes, self.image_size)[0]
                    for _, spec in chosen)
        if total > cfg.max_nodes:
            return None
        return [build_net(i, spec, self.images.num_classes, self.image_size, self.vcache,
                          self.ghn.config.s_max) for i, spec in chosen]

    def train_step(self) -> dict | None:
        nets = self.sample_nets()
        if nets is None:
            self.skipped += 1
            return None
        mine = nets[self.rank::self.world]
        x, y = self.stream.next()
        for group in self.opt.param_groups:
            group["lr"] = self.lr()
        self.opt.zero_grad(set_to_none=True)
        self.ghn.train()
        loss, losses, accs = net_losses(self.ghn, mine, x, y, self.cfg.amp,
                                        self.cfg.channels_last)
        if self.world > 1:
            for p in self.ghn.parameters():
                if p.grad is None:
                    p.grad = torch.zeros_like(p)
                torch.distributed.all_reduce(p.grad)
        norm = nn.utils.clip_grad_norm_(self.ghn.parameters(), self.cfg.grad_clip)
        self.opt.step()
        return {"loss": float(loss), "net_loss": float(np.mean(losses)),
                "acc": float(np.mean(accs)), "grad_norm": float(norm),
                "nodes": sum(n.graph.num_nodes for n in nets)}

    # -- validation -----------------------------------------------------------------------
    def validation_specs(self) -> list[ArchSpec]:
        if self.val_specs is None:
            specs = []
            try:
                from deepnetsbench.splits import DeepNets1M

                ds = DeepNets1M("val", root=self.cfg.root)
                specs = [ds[i].spec for i in range(min(self.cfg.val_archs, len(ds)))]
            except BenchError:
                from deepnetsbench.space.sampler import split_item

                specs = [split_item("val", i) for i in range(self.cfg.val_archs)]
            self.val_specs = specs
        return self.val_specs

    @torch.no_grad()
    def validate(self) -> dict:
        """Mean top-1 (percent) of predicted parameters on the held-out images, over a few
        validation architectures at their evaluation width (the protocol: BN batch stats).
        The global RNG is left as it was (building the networks draws from it)."""
        with torch.random.fork_rng(devices=[]):
            return self._validate()

    def _validate(self) -> dict:
        from deepnetsbench.eval.accuracy import evaluate_accuracy

        self.ghn.eval()
        idx = self.val_idx[: self.cfg.val_limit] if self.cfg.val_limit else self.val_idx
        x, y = self.stream.convert(idx)
        tops = []
        for spec in self.validation_specs():
            model = build_model(spec, self.images.num_classes, self.image_size).to(self.device)
            graph = graph_from_spec(spec, self.images.num_classes, self.image_size)
            self.ghn.predict(model, graph)
            top1, _ = evaluate_accuracy(model, x, y, batch_size=64, device=self.device,
                                        amp=self.cfg.amp)
            tops.append(top1)
        self.ghn.train()
        return {"step": self.step, "top1": float(np.mean(tops)), "per_arch": tops,
                "images": int(len(idx))}

    # -- loop -----------------------------------------------------------------------------
    def run(self, steps: int | None = None) -> dict:
        """Train until the schedule ends (or for ``steps`` more steps), validate, save
        ``last.pt`` (resumable) and ``final.pt`` (weights and provenance only)."""
        cfg = self.cfg
        stop = self.step + steps if steps is not None else None
        self.out.mkdir(parents=True, exist_ok=True)
        log_path = self.out / "log.jsonl"
        bar = _Bar(cfg.progress and self.rank == 0, self.total_steps, self.step)
        window: list[dict] = []
        last_val = self.step
        try:
            while not self.done() and (stop is None or self.step < stop):
                t0 = time.perf_counter()
                stats = self.train_step()
                if self.device.type == "cuda":
                    torch.cuda.synchronize(self.device)
                self.elapsed += time.perf_counter() - t0
                if stats is None:
                    continue
                self.step += 1
                window.append(stats)
                if self.rank == 0:
                    bar.update(self.step, stats, self.lr(), self.elapsed)
                if self.step % cfg.log_every == 0 and self.rank == 0:
                    rec = _mean_stats(window, self.step, self.lr(), self.elapsed, self.skipped)
                    window = []
                    _append_jsonl(log_path, rec)
                    bar.log(rec)
                if (cfg.val_every and cfg.val_archs and self.step - last_val >= cfg.val_every
                        and self.rank == 0):
                    self._validate_and_keep(log_path, bar)
                    last_val = self.step
                if cfg.ckpt_every and self.step % cfg.ckpt_every == 0:
                    self.save()
        except KeyboardInterrupt:
            bar.close()
            self.save()
            print(f"interrupted at step {self.step}; saved {self.out / 'last.pt'} "
                  f"(continue with --resume)", file=sys.stderr)
            raise
        bar.close()
        if self.rank == 0:
            if window:
                _append_jsonl(log_path, _mean_stats(window, self.step, self.lr(), self.elapsed,
                                                    self.skipped))
            if cfg.val_archs and (not self.history or self.history[-1]["step"] != self.step):
                self._validate_and_keep(log_path, bar)
            self.save("last.pt")
            self.save("final.pt", resumable=False)
        return {"step": self.step, "elapsed_s": self.elapsed, "skipped": self.skipped,
                "val": self.history[-1] if self.history else None, "best_top1": self.best}

    def _validate_and_keep(self, log_path: Path, bar: _Bar) -> None:
        rec = self.validate()
        self.history.append(rec)
        _append_jsonl(log_path, {"val": rec})
        bar.log({"step": rec["step"], "val_top1": rec["top1"]})
        if rec["top1"] > self.best:
            self.best = rec["top1"]
            self.save("best.pt", resumable=False)


def _mean_stats(window: list[dict], step: int, lr: float, elapsed: float, skipped: int) -> dict:
    keys = ("loss", "net_loss", "acc", "grad_norm", "nodes")
    rec = {k: float(np.mean([w[k] for w in window])) for k in keys}
    rec.update(step=step, lr=lr, elapsed_s=round(elapsed, 2), skipped=skipped)
    return rec


def _append_jsonl(path: Path, rec: dict) -> None:
    with open(path, "a") as f:
        f.write(json.dumps(rec) + "\n")


class _Bar:
    """A rich progress bar on a terminal; plain log lines otherwise (nohup, CI)."""

    def __init__(self, enabled: bool, total: int, done: int):
        from rich.console import Console

        self.console = Console(stderr=True)
        self.enabled = enabled
        self.live = enabled and self.console.is_terminal
        self.progress = None
        if self.live:
            from rich.progress import (
                BarColumn,
                MofNCompleteColumn,
                Progress,
                TextColumn,
                TimeElapsedColumn,
                TimeRemainingColumn,
            )

            self.progress = Progress(
                TextColumn("ghn2"), BarColumn(), MofNCompleteColumn(),
                TextColumn("loss {task.fields[loss]} acc {task.fields[acc]} lr {task.fields[lr]}"
                           " {task.fields[sps]} s/step"),
                TimeElapsedColumn(), TimeRemainingColumn(), console=self.console)
            self.task = self.progress.add_task("train", total=total, completed=done, loss="-",
                                               acc="-", lr="-", sps="-")
            self.progress.start()

    def update(self, step: int, stats: dict, lr: float, elapsed: float) -> None:
        if self.progress is not None:
            self.progress.update(self.task, completed=step, loss=f"{stats['net_loss']:.3f}",
                                 acc=f"{100 * stats['acc']:.1f}", lr=f"{lr:.0e}",
                                 sps=f"{elapsed / max(1, step):.2f}")

    def log(self, rec: dict) -> None:
        if not self.enabled:
            return
        text = " ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}"
                        for k, v in rec.items())
        self.console.print(text, highlight=False)

    def close(self) -> None:
        if self.progress is not None:
            self.progress.stop()
            self.progress = None


def train(cfg: TrainConfig, ghn_cfg: GHN2Config | None = None, resume: bool = False,
          **kwargs: Any) -> tuple[GHN2, dict]:
    """Train (or resume) and return ``(ghn, summary)``."""
    trainer = Trainer(cfg, ghn_cfg, resume=resume, **kwargs)
    summary = trainer.run()
    return trainer.ghn, summary


# ----------------------------------------------------------------------------- CLI


def _parse_opts(items: tuple[str, ...]) -> dict:
    from deepnetsbench.eval.methods import parse_method_options

    return parse_method_options(list(items))


def _cli():
    import click

    @click.command(context_settings={"help_option_names": ["-h", "--help"]})
    @click.option("--data", default="cifar10", show_default=True,
                  help="image archive path, cached dataset name, or 'synthetic'")
    @click.option("--root", default=None, help="deepnets-bench data root")
    @click.option("--archs", default="auto", show_default=True,
                  help="'auto' (built train split, else the sampler), 'sampler', or a split file")
    @click.option("--out", default="runs/ghn2", show_default=True, help="run folder")
    @click.option("--device", default="cpu", show_default=True)
    @click.option("--max-steps", type=int, default=None, help="stop after N steps")
    @click.option("--epochs", type=int, default=300, show_default=True)
    @click.option("--time-budget", type=float, default=None, help="seconds of training")
    @click.option("--meta-batch", type=int, default=8, show_default=True)
    @click.option("--batch-size", type=int, default=64, show_default=True)
    @click.option("--lr", type=float, default=1e-3, show_default=True)
    @click.option("--seed", type=int, default=0, show_default=True)
    @click.option("--resume", is_flag=True, help="continue from OUT/last.pt")
    @click.option("--synthetic", is_flag=True,
                  help="synthetic images and sampled architectures (smoke tests)")
    @click.option("--threads", type=int, default=None, help="torch CPU threads")
    @click.option("--opt", "train_opts", multiple=True, metavar="KEY=VALUE",
                  help="any other TrainConfig field, e.g. --opt val_every=200")
    @click.option("--ghn-opt", "ghn_opts", multiple=True, metavar="KEY=VALUE",
                  help="GHN2Config field, e.g. --ghn-opt hid=64 --ghn-opt kernel=16")
    def cli(data, root, archs, out, device, max_steps, epochs, time_budget, meta_batch,
            batch_size, lr, seed, resume, synthetic, threads, train_opts, ghn_opts):
        """Train the GHN-2 baseline (see baselines/ghn2/train.py and docs/baselines.md)."""
        if threads:
            torch.set_num_threads(threads)
        distributed = int(os.environ.get("WORLD_SIZE", "1")) > 1
        if distributed:
            backend = "nccl" if device.startswith("cuda") else "gloo"
            torch.distributed.init_process_group(backend)
        cfg = TrainConfig(data=data, root=root, archs=archs, out=out, device=device,
                          max_steps=max_steps, epochs=epochs, time_budget=time_budget,
                          meta_batch=meta_batch, batch_size=batch_size, lr=lr, seed=seed)
        if synthetic:
            cfg = replace(cfg, data="synthetic", archs="sampler", exclude_eval=False,
                          num_archs=1000, width_range=(8, 16), width_step=8,
                          fc_dim_range=(32, 64), fc_dim_step=32,
                          val_archs=1, val_every=0, val_images=200)
        extra = _parse_opts(train_opts)
        known = {f.name for f in fields(TrainConfig)}
        bad = sorted(set(extra) - known)
        if bad:
            raise BenchError(f"unknown training options {bad}",
                             f"use TrainConfig fields: {', '.join(sorted(known))}")
        cfg = TrainConfig.from_dict({**cfg.to_dict(), **extra})
        ghn_cfg = GHN2Config.from_dict(_parse_opts(ghn_opts)) if ghn_opts else None
        try:
            _, summary = train(cfg, ghn_cfg, resume=resume)
        except KeyboardInterrupt:
            sys.exit(130)
        finally:
            if distributed:
                torch.distributed.destroy_process_group()
        click.echo(json.dumps(summary))

    return cli


def main(argv: list[str] | None = None) -> None:
    """Entry point of ``python -m baselines.ghn2.train``; BenchErrors print one line."""
    try:
        _cli().main(args=argv, standalone_mode=False)
    except BenchError as err:
        print(f"error: {err.what}" + (f"; fix: {err.fix}" if err.fix else ""), file=sys.stderr)
        sys.exit(2)
    except Exception as err:
        import click

        if isinstance(err, click.ClickException):
            err.show()
            sys.exit(err.exit_code)
        raise


if __name__ == "__main__":
    main()
