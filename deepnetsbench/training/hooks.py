"""Evaluator extras: speedup over SGD/GC training and the fine-tuning protocol.

Both are per-record hooks for :func:`deepnetsbench.eval.runner.run_evaluation`: they see
the network holding the method's predicted parameters, the measured prediction time and
accuracy, and add ``speedup`` / ``finetune`` fields to the record. Reference curves are
trained once per (architecture, dataset, trainer, budget, hardware) and cached.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import torch

from deepnetsbench.training.trainer import Budget, TrainConfig


@dataclass
class TrainData:
    """Training tensors of a dataset, prepared once per run (not per architecture)."""

    limit: int | None = None
    _cache: dict = field(default_factory=dict)

    def get(self, dataset: Any, image_size: int) -> tuple[torch.Tensor, torch.Tensor]:
        key = (id(dataset), image_size)
        if key not in self._cache:
            if len(getattr(dataset, "train_y", ())) == 0:
                from deepnetsbench.errors import BenchError

                raise BenchError(f"{dataset.name} has no training images for reference training",
                                 "load the full dataset (`deepnets-bench download`) or drop --speedup")
            self._cache.clear()
            self._cache[key] = dataset.train_tensors(image_size=image_size, channels=3,
                                                     limit=self.limit)
        return self._cache[key]


def _arch_key(task: Any) -> str:
    arch = task.arch
    spec = getattr(arch, "spec", None)
    ident = spec.key(with_width=True) if spec is not None else str(arch.name)
    return f"{ident}@{task.num_classes}c{task.image_size}px"


def _fresh_model(ctx: Any, seed: int) -> torch.nn.Module:
    """The same architecture, randomly initialised (PyTorch default init) with ``seed``."""
    torch.manual_seed(seed)
    arch = ctx.task.arch
    return arch.build_model(ctx.task.num_classes, ctx.task.image_size)


@dataclass
class SpeedupHook:
    """Adds ``speedup``: reference training time to reach the prediction's top-1 divided by
    the prediction time, both on this device (docs/speedup.md)."""

    trainer: str = "sgd"
    budget: Budget = field(default_factory=lambda: Budget(epochs=1))
    cache_root: Path | None = None
    eval_every: float = 0.25
    config: TrainConfig | None = None
    data: TrainData = field(default_factory=TrainData)
    name: str = "speedup"

    def __call__(self, ctx: Any) -> dict | None:
        from deepnetsbench.results import SpeedupRecord
        from deepnetsbench.training.cache import CurveCache, CurveKey
        from deepnetsbench.training.curve import speedup, time_to_accuracy
        from deepnetsbench.training.hardware import hardware_id
        from deepnetsbench.training.trainer import train

        predict_s = ctx.record.get("predict_time_s")
        target = ctx.record.get("top1")
        if predict_s is None or target is None:
            return None
        device = ctx.task.device
        config = self.config or TrainConfig(optimizer=self.trainer, seed=ctx.task.seed)
        train_x, train_y = self.data.get(ctx.images.dataset, ctx.task.image_size)
        test_x, test_y = ctx.images.tensors(ctx.task.image_size)
        key = CurveKey.make(_arch_key(ctx.task), ctx.images.content_sha256, config,
                            hardware_id(device), self.budget, self.eval_every)

        def run():
            model = _fresh_model(ctx, config.seed).to(device)
            return train(model, train_x, train_y, test_x, test_y, config, device, self.budget,
                         eval_every=self.eval_every)

        cache = CurveCache(self.cache_root) if self.cache_root else None
        curve = cache.get_or_train(key, run) if cache else run()
        tta = time_to_accuracy(curve, target)
        sp = speedup(tta, predict_s)
        return {"speedup": SpeedupRecord(
            trainer=self.trainer, target_top1=float(target), train_seconds=sp.train_seconds,
            lower_bound=sp.is_lower_bound, value=sp.value, budget=str(self.budget))}


@dataclass
class FinetuneHook:
    """Adds ``finetune``: accuracy after ``epochs`` of reference training from the predicted
    parameters vs the same training from random init (GHN-2 study, GHN-3's "+1 epoch")."""

    epochs: float = 1.0
    trainer: str = "sgd"
    noise: float = 0.0  # post-processing: add noise with this beta before training
    orthogonal: bool = False  # post-processing: orthogonal re-init of wide layers
    config: TrainConfig | None = None
    data: TrainData = field(default_factory=TrainData)
    name: str = "finetune"

    def __call__(self, ctx: Any) -> dict | None:
        from deepnetsbench.training.finetune import finetune
        from deepnetsbench.training.postprocess import add_noise, orthogonal_reinit

        device = ctx.task.device
        config = self.config or TrainConfig(optimizer=self.trainer, seed=ctx.task.seed)
        config = replace(config, schedule_epochs=self.epochs)
        train_x, train_y = self.data.get(ctx.images.dataset, ctx.task.image_size)
        test_x, test_y = ctx.images.tensors(ctx.task.image_size)

        def post(model):
            if self.orthogonal:
                orthogonal_reinit(model)
            if self.noise > 0:
                add_noise(model, beta=self.noise)

        result = finetune(ctx.model, None, train_x, train_y, test_x, test_y, epochs=self.epochs,
                          config=config, device=device,
                          random_model=lambda: _fresh_model(ctx, config.seed),
                          postprocess=post if (self.noise > 0 or self.orthogonal) else None)
        return {"finetune": {
            "epochs": self.epochs, "trainer": self.trainer, "top1": result.top1,
            "top5": result.top5, "from_random_top1": result.from_random_top1,
            "from_random_top5": result.from_random_top5, "initial_top1": result.initial_top1,
            "noise": self.noise, "orthogonal": self.orthogonal}}
