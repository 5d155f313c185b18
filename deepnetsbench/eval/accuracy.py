"""The one accuracy protocol of the suite (GHN-2 evaluation).

Predicted parameters come without BatchNorm running statistics, so GHN-2 scores a network
with the statistics of each evaluation batch (batch size 64). Every number in the suite --
the evaluator, the reference trainers' curves, fine-tuning -- goes through
:func:`evaluate_accuracy` so that they are comparable.

``bn_mode="batch"``: every module is in eval mode (dropout off) except normalisation layers
with running statistics (BatchNorm, InstanceNorm with ``track_running_stats``), which
normalise with the statistics of the current batch. Their running buffers are neither
read nor written. ``bn_mode="running"``: plain ``model.eval()``.

The batch size is fixed and never changed silently; the last batch holds the remainder
(``len(x) % batch_size`` images) so that every image is scored.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager

import torch
from torch import nn
from torch.nn.modules.batchnorm import _NormBase

from deepnetsbench.data.images import RawImages
from deepnetsbench.errors import BenchError

BN_MODES = ("batch", "running")

__all__ = ["BN_MODES", "eval_mode", "evaluate_accuracy", "resolve_device", "topk_correct"]


def _topk_correct_tensor(logits: torch.Tensor, y: torch.Tensor, ks: Sequence[int]) -> torch.Tensor:
    """Counts of correct top-k predictions as one tensor on the logits' device (no sync)."""
    num_classes = logits.shape[-1]
    kmax = min(max(ks), num_classes)
    top = logits.topk(kmax, dim=1, largest=True, sorted=True).indices  # [B, kmax]
    hits = top.eq(y.view(-1, 1))  # [B, kmax]; at most one True per row
    cum = hits.cumsum(dim=1)
    return torch.stack([cum[:, min(k, num_classes) - 1].sum() for k in ks])


def topk_correct(logits: torch.Tensor, y: torch.Tensor, ks: Sequence[int] = (1, 5)) -> list[int]:
    """Number of rows of ``logits`` whose label ``y`` is among the k highest scores, per k.

    k is clipped to the number of classes (top-5 of a 3-class problem is top-3, i.e. 100%).
    """
    if logits.dim() != 2 or y.dim() != 1 or logits.shape[0] != y.shape[0]:
        raise BenchError(
            f"topk_correct needs logits [B, C] and labels [B], got {tuple(logits.shape)} "
            f"and {tuple(y.shape)}",
            "pass the model's 2-D output and a 1-D int64 label tensor",
        )
    if any(k < 1 for k in ks):
        raise BenchError(f"top-k needs k >= 1, got {list(ks)}", "use positive k")
    return [int(c) for c in _topk_correct_tensor(logits, y.to(logits.device), ks).tolist()]


@contextmanager
def eval_mode(model: nn.Module, bn_mode: str = "batch") -> Iterator[nn.Module]:
    """Put ``model`` in the evaluation state of the protocol; restore everything on exit.

    Restored: every module's ``training`` flag, the norm layers' ``track_running_stats``
    flags and their buffers (running mean/var, ``num_batches_tracked``), bit for bit.
    """
    if bn_mode not in BN_MODES:
        raise BenchError(f"unknown bn_mode {bn_mode!r}", f"use one of {', '.join(BN_MODES)}")
    flags = [(m, m.training) for m in model.modules()]
    norms = [m for m in model.modules() if isinstance(m, _NormBase)]
    tracked = [(m, m.track_running_stats) for m in norms]
    saved = [
        (m, {n: b.detach().clone() for n, b in m.named_buffers(recurse=False) if b is not None})
        for m in norms
    ]
    try:
        model.eval()
        if bn_mode == "batch":
            for m in norms:
                # training=True + track_running_stats=False: batch statistics, and torch
                # passes no running buffers to the kernel, so nothing is updated.
                m.train()
                m.track_running_stats = False
        yield model
    finally:
        for m, flag in flags:
            m.training = flag
        for m, flag in tracked:
            m.track_running_stats = flag
        with torch.no_grad():
            for m, buffers in saved:
                for name, value in buffers.items():
                    getattr(m, name).copy_(value)


def _check_inputs(x: torch.Tensor | RawImages, y: torch.Tensor, batch_size: int) -> None:
    if not isinstance(x, torch.Tensor | RawImages) or not isinstance(y, torch.Tensor):
        raise BenchError("images and labels must be torch tensors", "pass x, y as tensors")
    if x.shape[0] != y.shape[0]:
        raise BenchError(
            f"{x.shape[0]} images but {y.shape[0]} labels", "pass one label per image"
        )
    if x.shape[0] == 0:
        raise BenchError("no evaluation images", "pass a non-empty test set")
    if y.dim() != 1 or y.dtype not in (torch.int64, torch.int32, torch.int16, torch.uint8):
        raise BenchError(
            f"labels must be a 1-D integer tensor, got {y.dtype} {tuple(y.shape)}",
            "pass int64 class indices",
        )
    if isinstance(x, torch.Tensor) and not x.is_floating_point():
        raise BenchError(
            f"images must be a float tensor (normalized NCHW), got {x.dtype}",
            "convert with ImageDataset.test_tensors()",
        )
    if not isinstance(batch_size, int) or batch_size < 1:
        raise BenchError(f"batch_size must be a positive integer, got {batch_size!r}",
                         "use the protocol's 64")


def resolve_device(device: str | torch.device) -> torch.device:
    """``torch.device`` for ``device``; a CUDA device on a machine without one is a user error."""
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError) as err:
        raise BenchError(f"unknown device {device!r}", "use cpu, cuda or cuda:<index>") from err
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise BenchError(f"device {device!r} requested but CUDA is not available",
                         "use --device cpu or run on a machine with a GPU")
    return dev


def evaluate_accuracy(
    model: nn.Module,
    x: torch.Tensor | RawImages,
    y: torch.Tensor,
    batch_size: int = 64,
    device: str | torch.device = "cpu",
    bn_mode: str = "batch",
    amp: bool = False,
    channels_last: bool = True,
    on_batch: Callable[[int], None] | None = None,
) -> tuple[float, float]:
    """Top-1 and top-5 accuracy (percent) of ``model`` on ``(x, y)`` under the protocol.

    ``x``: float32 NCHW normalized images (CPU or already on ``device``), or
    :class:`~deepnetsbench.data.images.RawImages` (uint8, converted batch by batch on
    ``device``: memory-mapped ImageNet), ``y``: int64 labels.
    The model is moved to ``device`` (and stays there); its mode flags and buffers are
    restored afterwards. ``amp`` (bf16 autocast) applies on CUDA only. Top-5 uses
    ``k = min(5, num_classes)``. ``channels_last`` feeds the batches as NHWC: the same
    numbers, and oneDNN's convolutions run 1.3-2.3x faster on CPU that way
    (docs/protocol.md). ``on_batch(images_done)`` is called after each batch is queued
    (the progress bar; it does not wait for an asynchronous device).
    """
    _check_inputs(x, y, batch_size)
    dev = resolve_device(device)
    model.to(dev)
    use_amp = bool(amp) and dev.type == "cuda"
    raw = isinstance(x, RawImages)  # converted batch by batch on the device
    pin = dev.type == "cuda" and not raw and x.device.type == "cpu"
    n = x.shape[0]
    correct = torch.zeros(2, dtype=torch.int64, device=dev)
    with eval_mode(model, bn_mode), torch.no_grad():
        for start in range(0, n, batch_size):
            yb = y[start:start + batch_size]
            if raw:
                xb = x.batch(start, start + batch_size, dev)
            else:
                xb = x[start:start + batch_size]
                if pin:
                    xb = xb.pin_memory()
                xb = xb.to(dev, non_blocking=True)
            if channels_last and xb.dim() == 4:
                xb = xb.contiguous(memory_format=torch.channels_last)
            yb = yb.to(dev, non_blocking=True).long()
            with torch.autocast(device_type=dev.type, dtype=torch.bfloat16, enabled=use_amp):
                logits = model(xb)
            if isinstance(logits, (tuple, list)):  # e.g. (logits, aux_logits)
                logits = logits[0]
            if logits.dim() != 2 or logits.shape[0] != xb.shape[0]:
                raise BenchError(
                    f"model output has shape {tuple(logits.shape)}, expected "
                    f"[{xb.shape[0]}, num_classes]",
                    "make the model return class logits",
                )
            correct += _topk_correct_tensor(logits.float(), yb, (1, 5))
            if on_batch is not None:
                on_batch(min(n, start + batch_size))
    top1, top5 = (100.0 * c / n for c in correct.tolist())
    return float(top1), float(top5)
