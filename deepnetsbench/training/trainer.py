"""Reference trainers: SGD and SGD with gradient centralization, recording a time curve.

The curve answers "how long does ordinary training take to reach the accuracy of the
predicted parameters?". To make that fair to training:

- the data sit on the device once, as tensors; augmentation (random crop with padding,
  horizontal flip) is done on the batch by tensor ops, so no decoding or loader overhead;
- the clock counts training only: it is device-synchronised and stopped around every
  evaluation;
- every evaluation uses :func:`deepnetsbench.eval.accuracy.evaluate_accuracy` (batch
  statistics for BatchNorm, batch 64), exactly like the evaluator scores predictions.

See docs/speedup.md for the protocol.
"""

from __future__ import annotations

import math
import re
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, fields
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from deepnetsbench.errors import BenchError
from deepnetsbench.eval.accuracy import evaluate_accuracy, resolve_device
from deepnetsbench.training.curve import Curve, CurvePoint
from deepnetsbench.training.gc import SGDGC
from deepnetsbench.training.hardware import cpu_model, hardware_id

__all__ = [
    "OPTIMIZERS",
    "Budget",
    "TrainConfig",
    "augment_batch",
    "make_optimizer",
    "synchronize",
    "train",
]

OPTIMIZERS = ("sgd", "gc")
AMP_MODES = ("auto", "bf16", "fp16", "off")
SCHEDULES = ("cosine", "constant")


@dataclass
class TrainConfig:
    """Hyper-parameters of a reference training run (defaults: the standard CIFAR recipe).

    ``lr`` is the rate for a batch of ``lr_ref_batch`` images and is scaled linearly with
    ``batch_size``. ``schedule_epochs``: length of the cosine schedule in epochs; None means
    the budget (its epochs, or its seconds when it has only seconds). ``amp``: "auto" = bf16
    autocast on CUDA (fp16 + GradScaler where bf16 is unsupported), nothing on CPU.
    ``hflip``: flip horizontally (turn off where it is not sensible, e.g. digits).
    """

    optimizer: str = "sgd"
    lr: float = 0.1
    lr_ref_batch: int = 128
    momentum: float = 0.9
    nesterov: bool = False
    weight_decay: float = 5e-4
    batch_size: int = 128
    schedule: str = "cosine"
    schedule_epochs: float | None = None
    augment: bool = True
    crop_padding: int = 4
    hflip: bool = True
    label_smoothing: float = 0.0
    amp: str = "auto"
    grad_clip: float | None = None
    seed: int = 0
    eval_batch_size: int = 64

    @property
    def scaled_lr(self) -> float:
        return self.lr * self.batch_size / self.lr_ref_batch

    def validate(self) -> None:
        def bad(what: str, fix: str) -> BenchError:
            return BenchError(f"invalid training config: {what}", fix)

        if self.optimizer not in OPTIMIZERS:
            raise bad(f"optimizer {self.optimizer!r}", f"use one of {', '.join(OPTIMIZERS)}")
        if self.amp not in AMP_MODES:
            raise bad(f"amp {self.amp!r}", f"use one of {', '.join(AMP_MODES)}")
        if self.schedule not in SCHEDULES:
            raise bad(f"schedule {self.schedule!r}", f"use one of {', '.join(SCHEDULES)}")
        if self.batch_size < 1 or self.eval_batch_size < 1 or self.lr_ref_batch < 1:
            raise bad("batch sizes must be >= 1", "use a positive batch size")
        if self.lr <= 0 or self.momentum < 0 or self.weight_decay < 0:
            raise bad("lr must be > 0, momentum and weight_decay >= 0", "fix the values")
        if self.nesterov and self.momentum <= 0:
            raise bad("nesterov needs momentum > 0", "set momentum or turn nesterov off")
        if self.crop_padding < 0 or not 0 <= self.label_smoothing < 1:
            raise bad("crop_padding >= 0 and 0 <= label_smoothing < 1", "fix the values")
        if self.schedule_epochs is not None and self.schedule_epochs <= 0:
            raise bad("schedule_epochs must be > 0", "omit it to use the budget")
        if self.grad_clip is not None and self.grad_clip <= 0:
            raise bad("grad_clip must be > 0", "omit it to disable clipping")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> TrainConfig:
        names = {f.name for f in fields(cls)}
        unknown = sorted(set(d) - names)
        if unknown:
            raise BenchError(f"unknown training config keys {unknown}",
                             f"use only {sorted(names)}")
        return cls(**d)


_BUDGET_RE = re.compile(r"^\s*([0-9]*\.?[0-9]+(?:e-?[0-9]+)?)\s*(ep|epochs?|s|sec|m|min|h)\s*$")


@dataclass(frozen=True)
class Budget:
    """How long to train: ``epochs`` and/or wall-clock training ``seconds``; first one wins."""

    epochs: float | None = None
    seconds: float | None = None

    def __post_init__(self) -> None:
        if self.epochs is None and self.seconds is None:
            raise BenchError("empty training budget", "give epochs and/or seconds, e.g. 5ep")
        for name in ("epochs", "seconds"):
            v = getattr(self, name)
            if v is not None and (not math.isfinite(v) or v <= 0):
                raise BenchError(f"budget {name} must be positive, got {v}",
                                 "e.g. --budget 5ep or --budget 300s")

    @classmethod
    def parse(cls, text: str) -> Budget:
        """``"5ep"``, ``"0.25ep"``, ``"300s"``, ``"10min"``, ``"1h"`` or ``"5ep,300s"``."""
        epochs = seconds = None
        for part in str(text).split(","):
            m = _BUDGET_RE.match(part.lower())
            if not m:
                raise BenchError(f"cannot parse budget {text!r}",
                                 "use e.g. 5ep, 0.5ep, 300s, 10min, 1h or 5ep,300s")
            value, unit = float(m.group(1)), m.group(2)
            if unit.startswith("ep"):
                epochs = value
            else:
                seconds = value * {"s": 1, "sec": 1, "m": 60, "min": 60, "h": 3600}[unit]
        return cls(epochs=epochs, seconds=seconds)

    def to_dict(self) -> dict[str, float | None]:
        return {"epochs": self.epochs, "seconds": self.seconds}

    def __str__(self) -> str:
        parts = []
        if self.epochs is not None:
            parts.append(f"{self.epochs:g}ep")
        if self.seconds is not None:
            parts.append(f"{self.seconds:g}s")
        return ",".join(parts)


def synchronize(device: torch.device) -> None:
    """Wait for queued device work, so that host clocks measure device time."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    elif device.type == "mps":
        torch.mps.synchronize()


def augment_batch(
    x: torch.Tensor,
    padding: int,
    hflip: bool,
    generator: torch.Generator,
) -> torch.Tensor:
    """Random crop (zero padding of ``padding`` pixels, i.e. the mean colour of normalized
    images) and random horizontal flip, per image, as tensor ops on the device.

    The random numbers come from the CPU ``generator`` so that the same seed gives the same
    augmentation on every device.
    """
    b, _, h, w = x.shape
    if padding > 0:
        offsets = torch.randint(0, 2 * padding + 1, (2, b), generator=generator).to(x.device)
        padded = F.pad(x, (padding, padding, padding, padding))
        rows = (offsets[0].view(b, 1) + torch.arange(h, device=x.device)).view(b, 1, h, 1)
        cols = (offsets[1].view(b, 1) + torch.arange(w, device=x.device)).view(b, 1, 1, w)
        batch = torch.arange(b, device=x.device).view(b, 1, 1, 1)
        chans = torch.arange(x.shape[1], device=x.device).view(1, -1, 1, 1)
        x = padded[batch, chans, rows, cols]
    if hflip:
        flip = (torch.rand(b, generator=generator) < 0.5).to(x.device).view(b, 1, 1, 1)
        x = torch.where(flip, x.flip(3), x)
    return x


def make_optimizer(params, config: TrainConfig) -> torch.optim.Optimizer:
    """SGD (``"sgd"``) or SGD with gradient centralization (``"gc"``) from ``config``."""
    kwargs = dict(lr=config.scaled_lr, momentum=config.momentum,
                  weight_decay=config.weight_decay, nesterov=config.nesterov)
    if config.optimizer == "gc":
        return SGDGC(params, **kwargs)
    return torch.optim.SGD(params, **kwargs)


def _amp_dtype(config: TrainConfig, device: torch.device) -> torch.dtype | None:
    if device.type != "cuda" or config.amp == "off":
        return None
    if config.amp == "fp16":
        return torch.float16
    if config.amp == "bf16" or torch.cuda.is_bf16_supported():
        return torch.bfloat16
    return torch.float16


def _check_data(name: str, x: torch.Tensor, y: torch.Tensor) -> None:
    if not isinstance(x, torch.Tensor) or not isinstance(y, torch.Tensor):
        raise BenchError(f"{name} images/labels must be tensors", "pass torch tensors")
    if x.dim() != 4 or not x.is_floating_point():
        raise BenchError(f"{name} images must be float NCHW, got {x.dtype} {tuple(x.shape)}",
                         "use ImageDataset.train_tensors()/test_tensors()")
    if y.dim() != 1 or y.shape[0] != x.shape[0] or y.is_floating_point():
        raise BenchError(f"{name} labels must be int64 [{x.shape[0]}], got {y.dtype} "
                         f"{tuple(y.shape)}", "pass one integer label per image")
    if x.shape[0] == 0:
        raise BenchError(f"{name} set is empty", "pass a non-empty data set")


def train(
    model: nn.Module,
    train_x: torch.Tensor,
    train_y: torch.Tensor,
    test_x: torch.Tensor,
    test_y: torch.Tensor,
    config: TrainConfig | None = None,
    device: str | torch.device = "cpu",
    budget: Budget | None = None,
    eval_every: float | None = 1.0,
    progress: bool = False,
    callback: Callable[[Curve], None] | None = None,
) -> Curve:
    """Train ``model`` in place and record its accuracy against training seconds.

    ``eval_every``: evaluate every that many epochs (fractions allowed, e.g. 0.25, so that
    short budgets have points; at least one step apart); None: only at the start and the end.
    The first point is at time 0 (the initial parameters); the last is where the budget
    ran out. ``callback(curve)`` is called after every point (e.g. to journal partial runs).
    Training stops early, with ``finished=False`` and ``status="diverged"``, when the loss
    is no longer finite.
    """
    config = config or TrainConfig()
    config.validate()
    budget = budget or Budget(epochs=1)
    if eval_every is not None and (not math.isfinite(eval_every) or eval_every <= 0):
        raise BenchError(f"eval_every must be positive, got {eval_every}",
                         "e.g. 1 (every epoch) or 0.25")
    _check_data("training", train_x, train_y)
    _check_data("test", test_x, test_y)
    dev = resolve_device(device)

    model.to(dev)
    train_x = train_x.to(dev, non_blocking=True)
    train_y = train_y.to(dev, non_blocking=True).long()
    test_x = test_x.to(dev, non_blocking=True)
    test_y = test_y.to(dev, non_blocking=True).long()

    n = train_x.shape[0]
    batch = min(config.batch_size, n)
    steps_per_epoch = n // batch  # the last partial batch of each epoch is dropped
    max_steps = (max(1, round(budget.epochs * steps_per_epoch))
                 if budget.epochs is not None else None)
    eval_steps = (max(1, round(eval_every * steps_per_epoch))
                  if eval_every is not None else None)
    if config.schedule_epochs is not None:
        horizon_steps: float | None = config.schedule_epochs * steps_per_epoch
    else:
        horizon_steps = float(max_steps) if max_steps is not None else None

    torch.manual_seed(config.seed)  # dropout and any other global randomness
    gen = torch.Generator().manual_seed(config.seed)  # data order and augmentation
    optimizer = make_optimizer(model.parameters(), config)
    base_lr = config.scaled_lr
    amp_dtype = _amp_dtype(config, dev)
    scaler = torch.amp.GradScaler("cuda") if amp_dtype == torch.float16 else None

    curve = Curve(
        config=config.to_dict(), device=str(dev), hardware=hardware_id(dev),
        budget=budget.to_dict(), finished=False, status="running",
        meta={
            "eval_every_epochs": eval_every, "eval_batch_size": config.eval_batch_size,
            "bn_mode": "batch", "num_train": n, "num_test": int(test_x.shape[0]),
            "batch_size": batch, "steps_per_epoch": steps_per_epoch,
            "amp_dtype": str(amp_dtype).replace("torch.", "") if amp_dtype else None,
            "torch": torch.__version__, "cpu": cpu_model(),
            "threads": torch.get_num_threads(),
        },
    )
    was_training = model.training

    def record(seconds: float, step: int, loss: float | None) -> None:
        top1, top5 = evaluate_accuracy(model, test_x, test_y, config.eval_batch_size, dev,
                                       bn_mode="batch")
        curve.points.append(CurvePoint(seconds=seconds, epochs=step / steps_per_epoch,
                                       steps=step, top1=top1, top5=top5, train_loss=loss))
        if callback is not None:
            callback(curve)

    def lr_at(step: int, seconds: float) -> float:
        if config.schedule == "constant":
            return base_lr
        if horizon_steps is not None:
            frac = step / horizon_steps
        else:
            frac = seconds / budget.seconds  # type: ignore[operator]
        return base_lr * 0.5 * (1.0 + math.cos(math.pi * min(1.0, frac)))

    bar = None
    if progress:
        from rich.progress import Progress

        bar = Progress(transient=True)
        bar.start()
        task = bar.add_task("training", total=max_steps)

    try:
        record(0.0, 0, None)
        step = 0
        elapsed = 0.0
        loss_sum = torch.zeros((), device=dev)
        loss_count = 0
        perm = torch.empty(0, dtype=torch.int64)
        model.train()
        synchronize(dev)
        t0 = time.perf_counter()
        while True:
            pos = step % steps_per_epoch
            if pos == 0:
                perm = torch.randperm(n, generator=gen)
            idx = perm[pos * batch:(pos + 1) * batch].to(dev, non_blocking=True)
            xb, yb = train_x[idx], train_y[idx]
            if config.augment:
                xb = augment_batch(xb, config.crop_padding, config.hflip, gen)
            for group in optimizer.param_groups:
                group["lr"] = lr_at(step, elapsed + time.perf_counter() - t0)
            with torch.autocast(device_type=dev.type, dtype=amp_dtype or torch.float32,
                                enabled=amp_dtype is not None):
                out = model(xb)
                if isinstance(out, (tuple, list)):
                    out = out[0]
                loss = F.cross_entropy(out.float(), yb, label_smoothing=config.label_smoothing)
            optimizer.zero_grad(set_to_none=True)
            if scaler is not None:
                scaler.scale(loss).backward()
                if config.grad_clip is not None:
                    scaler.unscale_(optimizer)
                    nn.utils.clip_grad_norm_(model.parameters(), config.grad_clip)
                scaler.step(optimizer)
                scaler.update()
            else:
                loss.backward()
                if config.grad_clip is not None:
                    nn.utils.clip_grad_norm_(model.parameters(), config.grad_clip)
                optimizer.step()
            loss_sum += loss.detach()
            loss_count += 1
            step += 1
            if bar is not None:
                bar.update(task, completed=step)

            # The seconds budget is checked on the host clock (no per-step sync); the time
            # recorded at every point below is synchronised.
            out_of_time = (budget.seconds is not None
                           and elapsed + time.perf_counter() - t0 >= budget.seconds)
            out_of_steps = max_steps is not None and step >= max_steps
            due = eval_steps is not None and step % eval_steps == 0
            if not (due or out_of_time or out_of_steps):
                continue
            synchronize(dev)
            elapsed += time.perf_counter() - t0
            mean_loss = float(loss_sum) / loss_count
            record(elapsed, step, mean_loss)
            loss_sum.zero_()
            loss_count = 0
            if not math.isfinite(mean_loss):
                curve.status = "diverged"
                break
            if out_of_time or out_of_steps:
                curve.status = "done"
                curve.finished = True
                break
            model.train()
            synchronize(dev)
            t0 = time.perf_counter()
    except KeyboardInterrupt:
        curve.status = "interrupted"
        raise
    finally:
        if bar is not None:
            bar.stop()
        model.train(was_training)
    return curve
