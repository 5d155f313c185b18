"""The GHN training loop: the released recipe (Knyazev et al., 2021), every number in
:class:`TrainConfig`.

Meta-batches of 8 training architectures (a batch of more than 2,200 nodes is skipped and
the next drawn), each built at a width sampled as the released loader does
(:mod:`baselines.ghn2.archs`: C in 32..128, fc_dim in 64..512, smaller for bigger nets);
Adam (lr 1e-3, weight decay 1e-5), lr x0.1 after 2/3 and 5/6 of the schedule (epochs 200
and 250 of 300), gradient-norm clipping at 5; image batches of 64 with the official split
and augmentation (:mod:`baselines.ghn2.data`); loss = mean cross-entropy over the
meta-batch, label-smoothed on ImageNet (:mod:`baselines.ghn2.step`).

Multi-GPU (``torchrun``): every rank predicts and runs its slice of the meta-batch
(``nets[rank::world]``) on the same image batch and the GHN gradients are summed over
ranks (all-reduce) -- each rank divides by the global meta-batch size, so the sum is the
single-process gradient of the whole meta-batch (tested with two gloo processes on CPU).
Only rank 0 validates, logs and writes checkpoints; with ``--time-budget`` the slowest
rank's clock decides when all stop.
"""

from __future__ import annotations

import hashlib
import math
import os
import sys
import time
from collections import OrderedDict
from dataclasses import asdict, dataclass, fields
from pathlib import Path

import numpy as np
import torch
from torch import nn

from baselines.ghn2.archs import ArchSource, Net, build_net, sample_width, width_grid
from baselines.ghn2.checkpoint import config_from_checkpoint, read_checkpoint, save_checkpoint
from baselines.ghn2.data import ImageStream, is_imagenet_like, load_images, split_train_val
from baselines.ghn2.log import ProgressBar, append_jsonl, mean_stats
from baselines.ghn2.model import GHN2, GHN2Config
from baselines.ghn2.step import net_losses
from deepnetsbench.errors import BenchError
from deepnetsbench.graph.derive import count_nodes_params, graph_from_spec
from deepnetsbench.space.genotype import ArchSpec
from deepnetsbench.space.network import build_model

__all__ = ["TrainConfig", "Trainer", "default_ghn_config"]


@dataclass
class TrainConfig:
    """Everything about a training run (the GHN's own architecture is a
    :class:`GHN2Config`). Defaults: the released recipe (module docstring)."""

    data: str = "cifar10"  # archive path, cached dataset name, or "synthetic"
    root: str | None = None  # deepnets-bench data root (splits, image cache)
    archs: str = "auto"  # "auto" (DeepNets1M train if built, else the sampler), "sampler",
    #                      or a path to a split file
    num_archs: int = 1_000_000  # architectures drawn from (sampler source)
    exclude_eval: bool = True  # sampler: skip architectures of the evaluation splits
    out: str = "runs/ghn2"  # folder for last.pt, best.pt, log.jsonl
    device: str = "cpu"
    seed: int = 0
    ghn: str = "ghn2"  # the released model trained when no GHN2Config is given
    meta_batch: int = 8  # 1 for GHN-1, as released
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
    width_range: tuple[int, int] = (32, 128)  # training widths C (archs.sample_width)
    width_step: int = 16
    fc_dim_range: tuple[int, int] = (64, 512)
    fc_dim_step: int = 64
    val_images: int | None = None  # the last N training images held out (None: the last
    #                                tenth; ImageNet-size images: the last 50 per class)
    val_limit: int | None = None  # score on the first N held-out images (None: all)
    val_archs: int = 4
    val_every: int = 1000  # steps (0: only at the end)
    image_size: int | None = None  # default: the dataset's
    augment: bool = True  # crop (pad 4) + flip; ImageNet-size: resized crop, flip, jitter
    label_smoothing: float | None = None  # None: 0.1 on ImageNet-size images, else 0
    amp: bool = True  # bf16 autocast for the networks on CUDA
    amp_cpu: bool = False  # also on CPU (AMX/AVX512-BF16: ~1.4x faster steps; the released
    #                        recipe trains in float32)
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


def _dist() -> tuple[int, int]:
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        return torch.distributed.get_rank(), torch.distributed.get_world_size()
    return 0, 1


class Trainer:
    """State of a run; :meth:`run` trains until the step or time budget is spent."""

    def __init__(self, cfg: TrainConfig, ghn_cfg: GHN2Config | dict | None = None,
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
        self.images = images if images is not None else load_images(
            cfg.data, cfg.root, cfg.synthetic_images)
        self.image_size = cfg.image_size or self.images.image_size
        self.large = is_imagenet_like(self.image_size)
        explicit = ghn_cfg is not None
        if not isinstance(ghn_cfg, GHN2Config):  # None or changes to the cfg.ghn preset
            ghn_cfg = default_ghn_config(cfg.ghn, self.images.num_classes, self.large,
                                         **(ghn_cfg or {}))
        ckpt = None
        if resume:
            last = self.out / "last.pt"
            ckpt = read_checkpoint(last)
            stored = config_from_checkpoint(ckpt, str(last))
            if explicit and ghn_cfg != stored:
                raise BenchError(f"--resume: {last} was trained with another GHN config",
                                 "drop the --ghn/--ghn-opt options or start a new --out folder")
            ghn_cfg = stored
        torch.manual_seed(cfg.seed)
        self.ghn = GHN2(ghn_cfg).to(self.device)
        self.opt = torch.optim.Adam(self.ghn.parameters(), lr=cfg.lr,
                                    weight_decay=cfg.weight_decay)
        if self.images.num_classes != self.ghn.config.num_classes:
            print(f"note: {self.images.num_classes} classes but the GHN's classifier head has "
                  f"{self.ghn.config.num_classes} rows (tiled)", file=sys.stderr)
        self.amp = cfg.amp and (self.device.type == "cuda" or cfg.amp_cpu)
        self.label_smoothing = (cfg.label_smoothing if cfg.label_smoothing is not None
                                else 0.1 if self.large else 0.0)
        n = len(self.images.train_x)
        if self.large and cfg.val_images is None:
            self.train_idx, self.val_idx = split_train_val(n, labels=self.images.train_y)
        else:
            self.train_idx, self.val_idx = split_train_val(n, cfg.val_images)
        self.stream = ImageStream(self.images, self.train_idx, cfg.batch_size, self.image_size,
                                  self.device, cfg.augment, cfg.seed)
        self.widths = width_grid(*cfg.width_range, cfg.width_step)
        self.fc_dims = width_grid(*cfg.fc_dim_range, cfg.fc_dim_step)
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
                     "val_images": int(len(self.val_idx)), "split": "last",
                     "val_indices_sha256": val_sha, "image_size": self.image_size},
            "archs": self.archs.info,
            "train": train,
            "metrics": {"val": self.history, "best_top1": self.best},
        }

    def save(self, name: str = "last.pt", resumable: bool = True) -> Path | None:
        if self.rank != 0:
            return None
        epoch = self.step // self.steps_per_epoch - 1  # the last completed one (official)
        return save_checkpoint(self.out / name, self.ghn, epoch, **self._sections(resumable))

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
            c, fc = sample_width(spec, self.rng, self.widths, self.fc_dims, self.large)
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
        seeds = np.random.SeedSequence([self.cfg.seed, self.step]).generate_state(len(nets))
        seeds = [int(v) for v in seeds[self.rank::self.world]]  # dropout masks, per net
        x, y = self.stream.next()
        for group in self.opt.param_groups:
            group["lr"] = self.lr()
        self.opt.zero_grad(set_to_none=True)
        self.ghn.train()
        loss, losses, accs = net_losses(self.ghn, mine, x, y, self.amp,
                                        self.cfg.channels_last, self.label_smoothing, len(nets),
                                        seeds)
        if self.world > 1:
            for p in self.ghn.parameters():
                if p.grad is None:
                    p.grad = torch.zeros_like(p)
                torch.distributed.all_reduce(p.grad)
        norm = nn.utils.clip_grad_norm_(self.ghn.parameters(), self.cfg.grad_clip)
        finite = bool(torch.isfinite(norm))
        if finite:
            self.opt.step()
        # else: an overflowing gradient would turn into NaN weights once clipped (inf * 0);
        # the step is dropped, as the released recipe's GradScaler and NaN-loss skip do
        return {"loss": float(loss), "net_loss": float(np.mean(losses)),
                "acc": float(np.mean(accs)), "grad_norm": float(norm),
                "nonfinite": int(not finite), "nodes": sum(n.graph.num_nodes for n in nets)}

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
        bar = ProgressBar(cfg.progress and self.rank == 0, self.total_steps, self.step)
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
                    rec = mean_stats(window, self.step, self.lr(), self.elapsed, self.skipped)
                    window = []
                    append_jsonl(log_path, rec)
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
                append_jsonl(log_path, mean_stats(window, self.step, self.lr(), self.elapsed,
                                                    self.skipped))
            if cfg.val_archs and (not self.history or self.history[-1]["step"] != self.step):
                self._validate_and_keep(log_path, bar)
            self.save("last.pt")
            self.save("final.pt", resumable=False)
        return {"step": self.step, "elapsed_s": self.elapsed, "skipped": self.skipped,
                "val": self.history[-1] if self.history else None, "best_top1": self.best}

    def _validate_and_keep(self, log_path: Path, bar: ProgressBar) -> None:
        rec = self.validate()
        self.history.append(rec)
        append_jsonl(log_path, {"val": rec})
        bar.log({"step": rec["step"], "val_top1": rec["top1"]})
        if rec["top1"] > self.best:
            self.best = rec["top1"]
            self.save("best.pt", resumable=False)


def default_ghn_config(kind: str, num_classes: int, large_images: bool, **changes
                       ) -> GHN2Config:
    """The released model ``kind`` (ghn2/ghn1/mlp) for a dataset: the CIFAR-10 config
    (11 x 11 grid) or, for ImageNet-size images, the ImageNet one (16 x 16), with the
    dataset's number of classes, as the official trainer sets it (plus ``changes``)."""
    return GHN2Config.preset(kind, "imagenet" if large_images else "cifar10",
                             **{"num_classes": num_classes, **changes})
