"""One architecture, evaluator side: build, have it predicted, load, check, score, extras.

The evaluator builds its *own* network for the dataset; the method's :class:`Predictor`
(normally a separate worker process) returns tensors by name, checked against this network
(every parameter present, right shape); they are copied in, checked finite, and the network
is scored with :func:`~deepnetsbench.eval.accuracy.evaluate_accuracy` (batch 64, BatchNorm
batch statistics). A failure of the method fails that architecture only.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn

from deepnetsbench.eval.accuracy import eval_mode, evaluate_accuracy
from deepnetsbench.eval.isolation import PredictFailure, PredictJob, Predictor, expected_tensors
from deepnetsbench.eval.methods import Task, describe_error
from deepnetsbench.eval.worker import is_oom
from deepnetsbench.results import Record

__all__ = ["BN_MODE", "RecordContext", "RecordHook", "arch_seed", "count_macs", "evaluate_arch",
           "hook_name"]

BN_MODE = "batch"


@dataclass
class RecordContext:
    """What a per-record extras hook sees (speed-up, fine-tuning). Hooks run in the
    evaluator, on its own network holding the predicted parameters."""

    model: nn.Module  # the network with the predicted parameters, on the device
    task: Task
    record: dict[str, Any]  # the fields of the Record being built (top1, top5, ...)
    images: Any  # EvalImages
    config: Any  # EvalConfig


#: A hook returns Record fields to set (e.g. ``{"speedup": ..., "finetune": {...}}``) or None.
RecordHook = Callable[[RecordContext], Mapping[str, Any] | None]


def arch_seed(seed: int, index: int) -> int:
    """The seed of architecture ``index`` in a run with ``--seed seed`` (independent streams)."""
    state = np.random.SeedSequence([int(seed), int(index)]).generate_state(2, np.uint32)
    return int((int(state[0]) << 32 | int(state[1])) % (2**63))


_CONV = (nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.ConvTranspose1d, nn.ConvTranspose2d,
         nn.ConvTranspose3d)


def count_macs(model: nn.Module, image_size: int, device: torch.device, channels: int = 3) -> int:
    """Multiply-accumulates of conv and linear layers for one image (forward hooks)."""
    total = 0

    def hook(module: nn.Module, inputs: Any, output: torch.Tensor) -> None:
        nonlocal total
        if not isinstance(output, torch.Tensor):
            return
        per_out = output.numel() // max(1, output.shape[0])
        if isinstance(module, _CONV):
            k = math.prod(module.kernel_size)
            if isinstance(module, nn.Conv1d | nn.Conv2d | nn.Conv3d):
                total += per_out * (module.in_channels // module.groups) * k
            else:  # transposed: every input position scatters into out_channels/groups x k
                total += (inputs[0].numel() // max(1, inputs[0].shape[0])) * (
                    module.out_channels // module.groups) * k
        else:
            total += per_out * module.in_features

    handles = [m.register_forward_hook(hook) for m in model.modules()
               if isinstance(m, _CONV + (nn.Linear,))]
    try:
        with eval_mode(model, "running"), torch.no_grad():
            model(torch.zeros(1, channels, image_size, image_size, device=device))
    finally:
        for h in handles:
            h.remove()
    return int(total)


def _names(items: Sequence[str], k: int = 3) -> str:
    more = f" (and {len(items) - k} more)" if len(items) > k else ""
    return ", ".join(items[:k]) + more


def _load(model: nn.Module, tensors: Mapping[str, torch.Tensor]) -> None:
    """Copy checked tensors into the evaluator's network, by name."""
    targets = {**dict(model.named_buffers()), **dict(model.named_parameters())}
    with torch.no_grad():
        for name, value in tensors.items():
            targets[name].copy_(value)


def _finite(model: nn.Module) -> str | None:
    named = list(model.named_parameters())
    if not named:
        return None
    with torch.no_grad():
        flags = torch.stack([torch.isfinite(p).all() for _, p in named]).tolist()
    bad = [n for (n, _), ok in zip(named, flags) if not ok]
    return f"{len(bad)} predicted tensors contain NaN or Inf: " + _names(bad) if bad else None


def _free_cuda(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.empty_cache()


def _reporter(progress: Any, device: torch.device, total: int) -> Callable[[int], None] | None:
    """Tell ``progress`` the images scored; while it times the first batches, wait for an
    asynchronous device first, so that its clock measures computing, not queueing."""
    if progress is None:
        return None
    progress.images(0, total)

    def report(done: int) -> None:
        if device.type == "cuda" and progress.measuring:
            torch.cuda.synchronize(device)
        progress.images(done, total)

    return report


def hook_name(hook: Any) -> str:
    return str(getattr(hook, "name", None) or getattr(hook, "__name__", None)
               or type(hook).__name__)


def evaluate_arch(rec: Any, predictor: Predictor, images: Any, cfg: Any, device: torch.device,
                  hooks: Sequence[RecordHook] = (), support: tuple | None = None,
                  job_rec: Any = None, progress: Any = None) -> Record:
    """Predict, check and score one architecture; any failure becomes a failed Record.

    ``support`` is the episode's support set (episode suites); ``job_rec`` is what the
    method's worker gets as the architecture (default ``rec``); ``progress`` (a
    :class:`~deepnetsbench.eval.progress.RunProgress`) is told the images scored."""
    fields: dict[str, Any] = {"index": int(rec.index), "name": str(rec.name)}
    size = max(images.image_size, int(getattr(rec, "image_size", 0) or 0))
    if size != images.image_size:
        fields["extra"] = {"image_size": size}

    def failed(msg: str) -> Record:
        return Record(**fields, status="failed", error=msg)

    seed = arch_seed(cfg.seed, rec.index)
    predictor.submit(PredictJob(rec=job_rec if job_rec is not None else rec,
                                num_classes=images.num_classes, image_size=size,
                                classes=images.classes, dataset=images.name, seed=seed,
                                support=support))
    try:  # the worker builds its own copy meanwhile
        torch.manual_seed(seed)
        model = rec.build_model(num_classes=images.num_classes, image_size=size).to(device)
    except Exception as err:  # noqa: BLE001 - recorded, the run goes on
        predictor.cancel()
        _free_cuda(device)
        return failed(f"building the network failed: {describe_error(err)}")
    fields["num_params"] = sum(p.numel() for p in model.parameters())
    if cfg.flops:
        try:
            fields["flops"] = count_macs(model, size, device)
        except Exception:  # noqa: BLE001 - FLOPs are optional
            pass
    task = Task(arch=rec, dataset=images.name, num_classes=images.num_classes, image_size=size,
                classes=images.classes, device=device, seed=seed, support=support)

    limit = cfg.time_limit if cfg.time_limit and cfg.time_limit > 0 else None
    try:
        prediction = predictor.collect(limit, expected_tensors(model))
        _load(model, prediction.tensors)
        del prediction.tensors
        bad = _finite(model)
        if bad:
            return failed(bad)
    except PredictFailure as err:
        _free_cuda(device)
        return failed(str(err))
    except Exception as err:  # noqa: BLE001 - loading on the device (e.g. out of memory)
        _free_cuda(device)
        what = "out of memory loading the prediction" if is_oom(err) else "loading the prediction failed"
        return failed(f"{what}: {describe_error(err)}")
    fields["predict_time_s"] = prediction.predict_time_s
    if predictor.isolation == "process":
        fields.setdefault("extra", {})["predict_wall_s"] = round(prediction.wall_s, 6)

    x, y = images.tensors(size)
    try:
        top1, top5 = evaluate_accuracy(model, x, y, batch_size=cfg.batch_size, device=device,
                                       bn_mode=BN_MODE, on_batch=_reporter(progress, device,
                                                                           len(y)))
    except Exception as err:  # noqa: BLE001 - recorded, the run goes on
        _free_cuda(device)
        if is_oom(err):
            return failed(f"out of memory evaluating at batch size {cfg.batch_size} (the "
                          "protocol never lowers the batch size): " + describe_error(err))
        return failed(f"evaluation failed: {describe_error(err)}")
    fields.update(status="ok", top1=top1, top5=top5)
    for hook in hooks:
        try:
            update = hook(RecordContext(model, task, fields, images, cfg))
            if update:
                candidate = {**fields, **update}
                Record(**candidate)  # an invalid extra must not crash the run
                fields = candidate
        except Exception as err:  # noqa: BLE001 - an extra must not lose the accuracy
            fields.setdefault("extra", {})[f"{hook_name(hook)}_error"] = describe_error(err)
    return Record(**fields)
