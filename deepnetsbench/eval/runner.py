"""The evaluation loop: predict, check, score every architecture of a split; journal; resume.

One run = one method x one split x one image dataset (docs/protocol.md). For each
architecture the model is built for the dataset, the method predicts its parameters (timed,
device-synchronised, under a per-architecture time limit), the prediction is checked (every
parameter present, right shape, finite) and the network is scored with
:func:`~deepnetsbench.eval.accuracy.evaluate_accuracy` (batch 64, BatchNorm batch statistics).
A failure of the method fails that architecture only.

Every finished record is appended to a JSON-lines journal beside ``--out``
(``results.json.journal``, fsync'd) whose header pins the run's identity; re-running the same
command skips what the journal holds, and the results JSON is rebuilt from the journal at the
end (also on Ctrl-C or a crash, marked incomplete).
"""

from __future__ import annotations

import json
import math
import os
import signal
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from deepnetsbench.errors import BenchError
from deepnetsbench.eval.accuracy import eval_mode, evaluate_accuracy, resolve_device
from deepnetsbench.eval.methods import LoadedMethod, Task, describe_error
from deepnetsbench.results import (
    DatasetInfo,
    Protocol,
    Record,
    Results,
    SplitInfo,
    aggregate,
    environment_info,
    save_results,
    utc_now,
)

__all__ = [
    "DEFAULT_TIME_LIMIT", "PROTOCOL_VERSION", "ArchSuite", "EvalConfig", "EvalImages",
    "Journal", "MethodTimeout", "RecordContext", "RecordHook", "arch_seed", "check_out",
    "count_macs", "evaluate", "journal_path", "open_images", "open_mock", "open_split",
    "run_evaluation", "run_journaled", "select_indices", "summary_table",
]

PROTOCOL_VERSION = "1"
DEFAULT_TIME_LIMIT = 300.0
BN_MODE = "batch"
JOURNAL_KIND = "deepnets-bench-eval-journal"
JOURNAL_VERSION = 1
MOCK_ARCHS = 4
MOCK_WIDTH = 8
MOCK_IMAGES = 128
FLOPS_DEFINITION = "multiply-accumulates of conv and linear layers, one image (attention matmuls excluded)"
TIMING_DEFINITION = ("perf_counter around predict() plus loading its output into the model, "
                     "device-synchronised; checks and evaluation excluded")


# ----------------------------------------------------------------------------- config


@dataclass
class EvalConfig:
    """The options of one ``deepnets-bench eval`` run (see docs/protocol.md)."""

    suite: str = "deepnets1m"
    split: str = "test"
    release: str | None = None  # a named split release such as "ppuda" (None: the default)
    dataset: str = "cifar10"
    device: str = "cpu"
    limit: int | None = None
    archs: Sequence[int] | None = None
    seed: int = 0
    out: str | os.PathLike = "results.json"
    root: str | os.PathLike | None = None
    batch_size: int = 64
    time_limit: float | None = DEFAULT_TIME_LIMIT  # seconds per architecture; None: no limit
    eval_images: int | None = None  # first N test images (None: the official full test set)
    mock: bool = False
    restart: bool = False
    flops: bool = True
    progress: bool = True


@dataclass
class ArchSuite:
    """The architectures of a run: an indexable split plus what the results record about it."""

    records: Any  # DeepNets1M or any sequence of ArchRecord
    info: SplitInfo
    transform: Callable[[Any], Any] | None = None  # e.g. the mock's narrowing
    extra: dict[str, Any] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.records)

    def __getitem__(self, i: int) -> Any:
        rec = self.records[i]
        return self.transform(rec) if self.transform else rec


class EvalImages:
    """The test images, converted to normalized tensors once and reused for every network.

    On CUDA the tensors live on the GPU when they fit (else in pinned host memory), so no
    architecture pays for decoding, normalizing or re-uploading them."""

    def __init__(self, dataset: Any, image_size: int, device: torch.device,
                 limit: int | None = None):
        self.dataset = dataset
        self.name = dataset.name
        self.classes = list(getattr(dataset, "class_names", None) or dataset.classes)
        self.num_classes = len(dataset.classes)
        self.image_size = int(image_size)
        self.device = device
        n_test = len(dataset.test_y)
        if limit is not None and not 1 <= limit <= n_test:
            raise BenchError(f"--eval-images {limit} is outside 1..{n_test}",
                             f"pass at most {n_test} (the dataset's test set)")
        self.limit = limit
        self.num_test = n_test
        self.eval_images = limit or n_test
        self._cache: OrderedDict[int, tuple[torch.Tensor, torch.Tensor]] = OrderedDict()

    @property
    def content_sha256(self) -> str:
        return self.dataset.content_sha256

    def tensors(self, image_size: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """(x, y) at ``image_size`` (default the protocol's), prepared on first use."""
        size = int(image_size or self.image_size)
        if size in self._cache:
            self._cache.move_to_end(size)
            return self._cache[size]
        x, y = self.dataset.test_tensors(image_size=size, channels=3, limit=self.limit)
        x, y = _place(x, self.device), _place(y, self.device)
        self._cache[size] = (x, y)
        while len(self._cache) > 2:  # a predefined model at another size keeps both
            self._cache.popitem(last=False)
        return x, y


def _place(t: torch.Tensor, device: torch.device) -> torch.Tensor:
    if device.type != "cuda":
        return t
    free, _ = torch.cuda.mem_get_info(device)
    if t.nbytes <= min(4 << 30, free // 4):
        return t.to(device)
    return t.pin_memory()


# ----------------------------------------------------------------------------- hooks


@dataclass
class RecordContext:
    """What a per-record extras hook sees (speed-up, fine-tuning: later suites)."""

    model: nn.Module  # the network with the predicted parameters, on the device
    task: Task
    record: dict[str, Any]  # the fields of the Record being built (top1, top5, ...)
    images: EvalImages
    config: EvalConfig


#: A hook returns Record fields to set (e.g. ``{"speedup": ..., "finetune": {...}}``) or None.
RecordHook = Callable[[RecordContext], Mapping[str, Any] | None]


# ----------------------------------------------------------------------------- opening inputs


def select_indices(n: int, archs: Sequence[int] | None = None,
                   limit: int | None = None) -> list[int]:
    """The architecture indices a run evaluates, in order (``--arch``, then ``--limit``)."""
    if archs:
        bad = [i for i in archs if not 0 <= int(i) < n]
        if bad:
            raise BenchError(f"--arch {bad[0]} is outside the split (0..{n - 1})",
                             f"pick indices between 0 and {n - 1}")
        chosen = list(dict.fromkeys(int(i) for i in archs))
    else:
        chosen = list(range(n))
    if limit is not None:
        if limit < 1:
            raise BenchError(f"--limit must be positive, got {limit}", "pass --limit 1 or more")
        chosen = chosen[:limit]
    return chosen


def open_split(split: str, root: str | os.PathLike | None = None,
               release: str | None = None) -> ArchSuite:
    """The published (or locally built) split ``split`` of ``release``, pinned by its file's
    sha256."""
    from deepnetsbench.splits.dataset import DeepNets1M

    ds = DeepNets1M(split=split, root=root, release=release)
    man = ds.manifest or {}
    info = SplitInfo(name=split, sha256=str(ds.sha256 or man.get("sha256") or ""),
                     generator_version=str(man.get("generator_version") or ""),
                     num_items=len(ds))
    return ArchSuite(ds, info)


def open_images(dataset: str, root: str | os.PathLike | None = None):
    """(ImageDataset, evaluation image size) of a named dataset from the local cache."""
    try:
        from deepnetsbench.data import load_dataset
    except ImportError as err:
        raise BenchError("image datasets are not available in this install",
                         "update deepnets-bench (deepnetsbench.data.load_dataset)") from err
    ds = load_dataset(dataset, root=root)
    return ds, _eval_size(ds.name, ds.image_size)


def _eval_size(name: str, native: int) -> int:
    from deepnetsbench.data.registry import DATASETS, canonical_name

    info = DATASETS.get(canonical_name(name))
    return int(info.eval_size) if info is not None else int(native)


def open_mock(split: str, dataset: str = "cifar10", root: str | os.PathLike | None = None,
              seed: int = 0):
    """A tiny run: the first 4 architectures of ``split`` at width C=8 (32 for WIDE) and 128
    synthetic test images with the dataset's class count and resolution. Seconds on a CPU."""
    from deepnetsbench.data.registry import DATASETS, canonical_name
    from deepnetsbench.data.synthetic import synthetic_dataset
    from deepnetsbench.paths import data_root
    from deepnetsbench.splits.dataset import DeepNets1M, generate_split

    if split == "predefined":
        raise BenchError("--mock runs on generated splits only (predefined models are large)",
                         "use --split test (or val/wide/deep/dense/bnfree) with --mock")
    mock_root = data_root(root) / "mock"
    try:
        ds = DeepNets1M(split=split, root=mock_root)
        if len(ds) != MOCK_ARCHS:
            raise BenchError("stale mock split")
    except BenchError:
        generate_split(split, MOCK_ARCHS, root=mock_root)
        ds = DeepNets1M(split=split, root=mock_root)
    width = MOCK_WIDTH * (4 if split == "wide" else 1)
    info = SplitInfo(name=split, sha256=str(ds.sha256), num_items=len(ds),
                     generator_version=str(ds.manifest.get("generator_version") or ""))
    suite = ArchSuite(ds, info, transform=_narrow(width), extra={"mock": True, "mock_width": width})
    known = DATASETS.get(canonical_name(dataset))
    classes, size = (known.num_classes, known.eval_size) if known else (10, 32)
    images = synthetic_dataset(classes, size, n_train=2 * MOCK_IMAGES, n_test=MOCK_IMAGES, seed=seed)
    return suite, images, size


def _narrow(width: int) -> Callable[[Any], Any]:
    def narrow(rec: Any) -> Any:
        if rec.spec is None:
            return rec
        from deepnetsbench.graph.derive import count_params

        spec = rec.spec.with_args(C=width)
        return replace(rec, spec=spec, num_params=int(count_params(spec, 10, 32)),
                       _arrays=None, _graph=None)
    return narrow


# ----------------------------------------------------------------------------- journal


def journal_path(out: str | os.PathLike) -> Path:
    out = Path(out)
    return out.with_name(out.name + ".journal")


class Journal:
    """Append-only JSON lines: a header with the run identity, then one finished record per
    line, each flushed and fsync'd, so a killed run loses at most the architecture in flight."""

    def __init__(self, path: str | os.PathLike, identity: dict[str, Any], restart: bool = False):
        self.path = Path(path)
        self.identity = json.loads(json.dumps(identity))  # normalized, JSON-comparable
        self.records: dict[int, Record] = {}
        self.started_at: datetime = utc_now()
        self._f = None
        if restart and self.path.exists():
            self.path.unlink()
        if self.path.exists():
            self._read()
        else:
            self._create()

    def _create(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        header = {"kind": JOURNAL_KIND, "version": JOURNAL_VERSION,
                  "started_at": self.started_at.isoformat(), "identity": self.identity}
        tmp = self.path.with_name(self.path.name + ".tmp")
        with open(tmp, "w", encoding="utf-8") as f:
            f.write(json.dumps(header, sort_keys=True) + "\n")
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, self.path)

    def _read(self) -> None:
        fix = "use another --out, or --restart to discard it"
        data = self.path.read_bytes()
        lines = data.split(b"\n")
        complete = lines[:-1]  # the part after the last newline is a torn write (or empty)
        if lines[-1].strip():
            with open(self.path, "r+b") as f:  # drop the torn tail before appending
                f.truncate(len(data) - len(lines[-1]))
        try:
            header = json.loads(complete[0]) if complete else None
        except json.JSONDecodeError:
            header = None
        if not isinstance(header, dict) or header.get("kind") != JOURNAL_KIND:
            raise BenchError(f"{self.path} is not an evaluation journal", fix)
        if header.get("version") != JOURNAL_VERSION:
            raise BenchError(f"{self.path} has journal version {header.get('version')}", fix)
        diff = _first_difference(header.get("identity"), self.identity)
        if diff and not any(line.strip() for line in complete[1:]):
            # A journal without records holds nothing to lose (e.g. setup failed, the file
            # was fixed): start this run afresh.
            self.path.unlink()
            self._create()
            return
        if diff:
            raise BenchError(f"{self.path} belongs to a different run ({diff})", fix)
        self.started_at = datetime.fromisoformat(header["started_at"])
        for lineno, line in enumerate(complete[1:], start=2):
            if not line.strip():
                continue
            try:
                rec = Record.model_validate(json.loads(line)["record"])
            except (json.JSONDecodeError, KeyError, TypeError, ValueError) as err:
                raise BenchError(f"{self.path} line {lineno} is corrupt ({type(err).__name__})",
                                 fix) from None
            self.records[rec.index] = rec

    def append(self, record: Record) -> None:
        if self._f is None:
            self._f = open(self.path, "a", encoding="utf-8")
        self._f.write(json.dumps({"record": record.model_dump(mode="json")}) + "\n")
        self._f.flush()
        os.fsync(self._f.fileno())
        self.records[record.index] = record

    def close(self) -> None:
        if self._f is not None:
            self._f.close()
            self._f = None


def _first_difference(a: Any, b: Any, where: str = "") -> str | None:
    if isinstance(a, dict) and isinstance(b, dict):
        for key in sorted(set(a) | set(b), key=str):
            d = _first_difference(a.get(key), b.get(key), f"{where}.{key}" if where else key)
            if d:
                return d
        return None
    if a != b:
        return f"{where or 'identity'}: journal has {_short(a)}, this run has {_short(b)}"
    return None


def _short(v: Any) -> str:
    s = json.dumps(v)
    return s if len(s) <= 24 else s[:21] + "..."


# ----------------------------------------------------------------------------- per architecture


class MethodTimeout(BaseException):
    """Raised inside predict() when the per-architecture time limit passes.

    A BaseException so that a method's own ``except Exception`` cannot swallow it."""


class _Failure(Exception):
    """A per-architecture failure with its one-line message."""


@contextmanager
def _deadline(seconds: float | None) -> Iterator[bool]:
    """Interrupt the block after ``seconds`` (SIGALRM, main thread, POSIX). Yields whether
    the limit is enforced by interruption; elsewhere it is checked afterwards."""
    usable = (seconds is not None and seconds > 0 and hasattr(signal, "setitimer")
              and threading.current_thread() is threading.main_thread())
    if not usable:
        yield False
        return

    def on_alarm(signum, frame):
        raise MethodTimeout()

    previous = signal.signal(signal.SIGALRM, on_alarm)
    start = time.monotonic()
    old_delay, old_interval = signal.setitimer(signal.ITIMER_REAL, float(seconds))
    try:
        yield True
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
        if old_delay > 0:  # someone else's timer (e.g. a test timeout) keeps running
            left = max(1e-3, old_delay - (time.monotonic() - start))
            signal.setitimer(signal.ITIMER_REAL, left, old_interval)


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


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


def _check_state(out: Any, model: nn.Module) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """Pairs (target, value) to copy; a _Failure names what is wrong with the prediction."""
    if not isinstance(out, Mapping):
        raise _Failure(f"predict returned {type(out).__name__}; expected a dict of "
                       "parameter tensors (state dict) or None after filling the model in place")
    params = dict(model.named_parameters())
    buffers = dict(model.named_buffers())
    missing = [n for n in params if n not in out]
    if missing:
        raise _Failure(f"prediction misses {len(missing)} of {len(params)} parameters: "
                       + _names(missing))
    unexpected = [str(k) for k in out if k not in params and k not in buffers]
    if unexpected:
        raise _Failure(f"prediction has {len(unexpected)} unknown keys: " + _names(unexpected))
    pairs, wrong = [], []
    for name, value in out.items():
        target = params.get(name)
        if target is None:
            target = buffers[name]
        if not isinstance(value, torch.Tensor):
            raise _Failure(f"prediction for {name} is a {type(value).__name__}, not a tensor")
        if value.shape != target.shape:
            wrong.append(f"{name} {tuple(value.shape)} (expected {tuple(target.shape)})")
        pairs.append((target, value))
    if wrong:
        raise _Failure(f"{len(wrong)} predicted tensors have the wrong shape: " + _names(wrong))
    return pairs


def _names(items: Sequence[str], k: int = 3) -> str:
    more = f" (and {len(items) - k} more)" if len(items) > k else ""
    return ", ".join(items[:k]) + more


def _check_in_place(model: nn.Module, expected: dict[str, torch.Size]) -> None:
    got = {n: p.shape for n, p in model.named_parameters()}
    if got.keys() != expected.keys():
        gone = [n for n in expected if n not in got] + [n for n in got if n not in expected]
        raise _Failure("predict changed the model's set of parameters: " + _names(gone))
    wrong = [f"{n} {tuple(got[n])} (expected {tuple(s)})" for n, s in expected.items()
             if got[n] != s]
    if wrong:
        raise _Failure(f"predict changed {len(wrong)} parameter shapes: " + _names(wrong))


def _check_finite(model: nn.Module) -> None:
    named = [(n, p) for n, p in model.named_parameters()]
    if not named:
        return
    with torch.no_grad():
        flags = torch.stack([torch.isfinite(p).all() for _, p in named]).tolist()
    bad = [n for (n, _), ok in zip(named, flags) if not ok]
    if bad:
        raise _Failure(f"{len(bad)} predicted tensors contain NaN or Inf: " + _names(bad))


def _is_oom(err: BaseException) -> bool:
    return isinstance(err, torch.cuda.OutOfMemoryError) or "out of memory" in str(err).lower()


def _free_cuda(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.empty_cache()


def evaluate_arch(rec: Any, method: LoadedMethod, images: EvalImages, cfg: EvalConfig,
                  device: torch.device, hooks: Sequence[RecordHook] = ()) -> Record:
    """Predict, check and score one architecture; any failure becomes a failed Record."""
    fields: dict[str, Any] = {"index": int(rec.index), "name": str(rec.name)}
    size = max(images.image_size, int(getattr(rec, "image_size", 0) or 0))
    if size != images.image_size:
        fields["extra"] = {"image_size": size}

    def failed(msg: str) -> Record:
        return Record(**fields, status="failed", error=msg)

    seed = arch_seed(cfg.seed, rec.index)
    try:
        torch.manual_seed(seed)
        model = rec.build_model(num_classes=images.num_classes, image_size=size).to(device)
    except Exception as err:  # noqa: BLE001 - recorded, the run goes on
        _free_cuda(device)
        return failed(f"building the network failed: {describe_error(err)}")
    fields["num_params"] = sum(p.numel() for p in model.parameters())
    if cfg.flops:
        try:
            fields["flops"] = count_macs(model, size, device)
        except Exception:  # noqa: BLE001 - FLOPs are optional
            pass
    expected = {n: p.shape for n, p in model.named_parameters()}
    task = Task(arch=rec, dataset=images.name, num_classes=images.num_classes, image_size=size,
                classes=images.classes, device=device, seed=seed)

    limit = cfg.time_limit if cfg.time_limit and cfg.time_limit > 0 else None
    stage = "predict"
    try:
        with _deadline(limit) as interruptible:
            torch.manual_seed(seed)
            _sync(device)
            t0 = time.perf_counter()
            out = method.method.predict(model, task)
            _sync(device)
            t1 = time.perf_counter()
            stage = "check"
            pairs = _check_state(out, model) if out is not None else None
            if pairs is None:
                _check_in_place(model, expected)
            del out
            stage = "load"
            t2 = time.perf_counter()
            if pairs:
                with torch.no_grad():
                    for target, value in pairs:
                        target.copy_(value)
            _sync(device)
            t3 = time.perf_counter()
            del pairs
            _check_finite(model)
        elapsed = (t1 - t0) + (t3 - t2)
        if limit is not None and not interruptible and elapsed > limit:
            return failed(f"prediction took {elapsed:.1f} s, over the time limit of {limit:g} s "
                          "(--time-limit)")
        fields["predict_time_s"] = elapsed
    except MethodTimeout:
        _free_cuda(device)
        return failed(f"prediction exceeded the time limit of {limit:g} s (--time-limit); "
                      "a method stuck in C code is interrupted only when it returns to Python")
    except _Failure as err:
        return failed(str(err))
    except Exception as err:  # noqa: BLE001 - the method's bug fails this architecture only
        _free_cuda(device)
        if _is_oom(err):
            return failed(f"out of memory during {stage}: {describe_error(err, method.path)}")
        if stage == "predict":
            return failed(f"predict raised {describe_error(err, method.path)}")
        return failed(f"{stage} of the prediction failed: {describe_error(err, method.path)}")

    x, y = images.tensors(size)
    try:
        top1, top5 = evaluate_accuracy(model, x, y, batch_size=cfg.batch_size, device=device,
                                       bn_mode=BN_MODE)
    except Exception as err:  # noqa: BLE001 - recorded, the run goes on
        _free_cuda(device)
        if _is_oom(err):
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
            fields.setdefault("extra", {})[f"{_hook_name(hook)}_error"] = describe_error(err)
    return Record(**fields)


def _hook_name(hook: Any) -> str:
    return str(getattr(hook, "name", None) or getattr(hook, "__name__", None)
               or type(hook).__name__)


# ----------------------------------------------------------------------------- the run


def _identity(method: LoadedMethod, suite: ArchSuite, images: EvalImages, cfg: EvalConfig,
              device: torch.device, hooks: Sequence[RecordHook]) -> dict[str, Any]:
    return {
        "protocol": PROTOCOL_VERSION,
        "suite": cfg.suite,
        "method": {"key": method.key, "options": method.options},
        "split": {"name": suite.info.name, "sha256": suite.info.sha256, **suite.extra},
        "dataset": {"name": images.name, "content_sha256": images.content_sha256,
                    "eval_images": images.eval_images, "image_size": images.image_size},
        "batch_size": cfg.batch_size, "bn_mode": BN_MODE, "seed": cfg.seed,
        "time_limit_s": cfg.time_limit or None, "device": str(device), "flops": cfg.flops,
        "extras": [_hook_name(h) for h in hooks],
    }


def run_evaluation(method: LoadedMethod, suite: ArchSuite, dataset: Any, cfg: EvalConfig,
                   image_size: int | None = None, hooks: Sequence[RecordHook] = (),
                   console: Any = None) -> Results:
    """Evaluate ``method`` on the selected architectures of ``suite`` with ``dataset``'s test
    images; journal records beside ``cfg.out``, write the results JSON there, return it."""
    device = resolve_device(cfg.device)
    if device.type == "cuda" and device.index is None:  # "cuda" and "cuda:0" are one device
        device = torch.device("cuda", torch.cuda.current_device())
    if not isinstance(cfg.batch_size, int) or cfg.batch_size < 1:
        raise BenchError(f"--batch-size must be a positive integer, got {cfg.batch_size}",
                         "use the protocol's 64")
    out = Path(cfg.out)
    jpath = check_out(out, cfg.restart)
    indices = select_indices(len(suite), cfg.archs, cfg.limit)
    images = EvalImages(dataset, image_size or dataset.image_size, device, cfg.eval_images)
    journal = Journal(jpath, _identity(method, suite, images, cfg, device, hooks), cfg.restart)
    todo = [i for i in indices if i not in journal.records]

    def setup() -> None:
        method.setup(device)
        images.tensors()  # prepared once, before the first architecture

    return run_journaled(
        journal, todo, len(indices), out,
        describe=lambda i: str(suite[i].name),
        evaluate_one=lambda i: evaluate_arch(suite[i], method, images, cfg, device, hooks),
        finish=lambda status: _results(method, suite, images, cfg, device, journal, indices,
                                       status),
        setup=setup, progress=cfg.progress, console=console)


def check_out(out: Path, restart: bool) -> Path:
    """The journal path of ``out``; refuses to overwrite a results file that is not a run."""
    jpath = journal_path(out)
    if out.exists() and not jpath.exists() and not restart:
        raise BenchError(f"{out} exists but has no journal ({jpath.name}), so it is not a run "
                         "to resume", "use another --out, or --restart to overwrite it")
    return jpath


def run_journaled(journal: Journal, todo: Sequence[Any], total: int, out: Path, *,
                  describe: Callable[[Any], str], evaluate_one: Callable[[Any], Record],
                  finish: Callable[[str], Results], setup: Callable[[], None],
                  progress: bool = True, console: Any = None) -> Results | None:
    """Evaluate ``todo`` one item at a time, journaling each record as it finishes.

    Whatever ends the loop (done, Ctrl-C, a crash), the results JSON is written from the
    journal once anything was done, so no finished work is lost; a run that failed before its
    first item leaves no results file behind. Shared by the architecture and episode suites.
    """
    status = "complete"
    results = None
    console = console or _console()
    try:
        if todo:
            setup()
            with _progress(progress, console, total, total - len(todo)) as bar:
                for item in todo:
                    name = describe(item)
                    bar.describe(name)
                    record = evaluate_one(item)
                    journal.append(record)
                    if record.status == "failed":
                        bar.log(f"[yellow]{name} failed:[/] {record.error}")
                    bar.advance(record.status == "ok")
    except KeyboardInterrupt:
        status = "interrupted"
        raise
    except BaseException:
        status = "crashed"
        raise
    finally:
        journal.close()
        if journal.records or status == "complete":
            results = finish(status)
            save_results(results, out)
    return results


def _results(method: LoadedMethod, suite: ArchSuite, images: EvalImages, cfg: EvalConfig,
             device: torch.device, journal: Journal, indices: Sequence[int],
             status: str) -> Results:
    records = [journal.records[i] for i in sorted(indices) if i in journal.records]
    complete = len(records) == len(indices)
    notes = ""
    if not complete:
        notes = (f"incomplete ({status}): {len(records)} of {len(indices)} architectures "
                 "evaluated; re-run the same command to resume")
    selection: Any = "all" if len(indices) == len(suite) else (
        f"first {len(indices)}" if list(indices) == list(range(len(indices))) else list(indices))
    extra = {
        "complete": complete, "architectures": selection, "suite_size": len(suite),
        "method_options": method.options, "timing": TIMING_DEFINITION,
        "flops": FLOPS_DEFINITION if cfg.flops else None,
        "seed_rule": "architecture i uses arch_seed(seed, i) (numpy SeedSequence([seed, i]))",
        **suite.extra,
    }
    protocol = Protocol(
        version=PROTOCOL_VERSION, split=suite.info.name, dataset=images.name,
        num_classes=images.num_classes, image_size=images.image_size,
        batch_size=cfg.batch_size, bn_mode=BN_MODE, eval_images=images.eval_images,
        seed=cfg.seed, time_limit_s=cfg.time_limit or None, device=str(device), extra=extra)
    return Results(
        suite=cfg.suite, protocol=protocol, split=suite.info,
        dataset=DatasetInfo(name=images.name, content_sha256=images.content_sha256,
                            num_test=images.num_test),
        method=method.info(), environment=environment_info(device),
        started_at=journal.started_at, finished_at=utc_now(), records=records,
        aggregates=aggregate(records), notes=notes)


def evaluate(method_spec: str, cfg: EvalConfig, options: Mapping[str, Any] | None = None,
             hooks: Sequence[RecordHook] = (), console: Any = None) -> Results:
    """Everything ``deepnets-bench eval`` does: load the method, split and images, run."""
    from deepnetsbench.eval.methods import load_method

    if cfg.suite != "deepnets1m":
        raise BenchError(f"suite {cfg.suite!r} is not available in this evaluator",
                         "use --suite deepnets1m (dataset-episode suites come separately)")
    resolve_device(cfg.device)  # fail before any slow loading
    method = load_method(method_spec, options)
    if cfg.mock:
        suite, dataset, size = open_mock(cfg.split, cfg.dataset, cfg.root, cfg.seed)
    else:
        suite = open_split(cfg.split, cfg.root, cfg.release)
        dataset, size = open_images(cfg.dataset, cfg.root)
    return run_evaluation(method, suite, dataset, cfg, size, hooks, console)


# ----------------------------------------------------------------------------- display


def _console():
    from rich.console import Console

    return Console(stderr=True)


class _Bar:
    def __init__(self, progress: Any, task: Any):
        self.progress, self.task = progress, task
        self.ok = self.failed = 0

    def describe(self, name: str) -> None:
        if self.progress is not None:
            self.progress.update(self.task, description=f"eval {name}")

    def advance(self, ok: bool) -> None:
        self.ok += ok
        self.failed += not ok
        if self.progress is not None:
            self.progress.update(self.task, advance=1, status=f"{self.ok} ok, {self.failed} failed")

    def log(self, text: str) -> None:
        if self.progress is not None:
            self.progress.console.print(text)


@contextmanager
def _progress(enabled: bool, console: Any, total: int, done: int) -> Iterator[_Bar]:
    if not enabled:
        yield _Bar(None, None)
        return
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                  TextColumn("{task.fields[status]}"), TimeElapsedColumn(),
                  console=console) as progress:
        task = progress.add_task("eval", total=total, completed=done,
                                 status=f"{done} done before" if done else "")
        yield _Bar(progress, task)


def _pm(stat: Any, scale: str = "{:.2f}") -> str:
    if stat.mean is None:
        return "-"
    text = scale.format(stat.mean)
    return text + (f" ± {scale.format(stat.se)}" if stat.se is not None else "")


def summary_table(results: Results):
    """A rich Table with the run's aggregates (narrow: one statistic per row)."""
    from rich.table import Table

    agg = results.aggregates
    table = Table(title=f"{results.method.name}: {results.split.name} x {results.dataset.name}",
                  show_header=True)
    table.add_column("aggregate")
    table.add_column("mean ± s.e.", justify="right")
    table.add_column("95% CI", justify="right")

    def ci(stat: Any, fmt: str = "{:.2f}") -> str:
        if stat.ci95_low is None:
            return "-"
        return f"[{fmt.format(stat.ci95_low)}, {fmt.format(stat.ci95_high)}]"

    table.add_row("architectures", f"{agg.n} ({agg.n_ok} ok, {agg.n_failed} failed)", "")
    table.add_row("top-1 %", _pm(agg.top1), ci(agg.top1))
    table.add_row("top-5 %", _pm(agg.top5), ci(agg.top5))
    table.add_row("predict s", _pm(agg.predict_time_s, "{:.4f}"),
                  ci(agg.predict_time_s, "{:.4f}"))
    return table
