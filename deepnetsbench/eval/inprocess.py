"""The ``--in-process`` debugging mode: ``predict`` runs in the evaluator's own process.

Useful to step through a method with a debugger or to see a full traceback. Nothing keeps
the method from the evaluator's memory (test images, scorer, journal), so its results say
``protocol.extra.isolation = "in-process"`` and the leaderboard refuses them. The time limit
is a SIGALRM timer here, which a method stuck in C code only notices when it returns.
"""

from __future__ import annotations

import signal
import threading
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

import torch

from deepnetsbench.eval.isolation import (
    PredictFailure,
    Prediction,
    PredictJob,
    Predictor,
    method_ref,
)
from deepnetsbench.eval.methods import LoadedMethod, Task, describe_error
from deepnetsbench.eval.transfer import TransferError, check_tensors
from deepnetsbench.eval.worker import OutputError, is_oom, prediction_tensors, sync

__all__ = ["InProcessPredictor", "MethodTimeout"]


class MethodTimeout(BaseException):
    """Raised inside predict() when the time limit passes.

    A BaseException so that a method's own ``except Exception`` cannot swallow it."""


class InProcessPredictor(Predictor):
    """The debugging mode: ``predict`` runs here, under a SIGALRM timer. Nothing keeps the
    method from the evaluator's memory, so results say ``isolation: in-process`` and the
    leaderboard refuses them."""

    isolation = "in-process"

    def __init__(self, method: Any, device: torch.device,
                 options: Mapping[str, Any] | None = None):
        self.loaded = method if isinstance(method, LoadedMethod) else None
        super().__init__(method_ref(method, options), device)
        self._job: PredictJob | None = None

    def start(self) -> None:
        from deepnetsbench.eval.methods import load_method

        if self.loaded is None:
            self.loaded = load_method(self.ref.spec, self.ref.options)
            self.ref.file_sha256 = self.loaded.file_sha256 or self.ref.file_sha256
        self.ref.meta = self.loaded.meta
        self.loaded.setup(self.device)
        self.starts += 1

    def submit(self, job: PredictJob) -> None:
        self._job = job

    def cancel(self) -> None:
        self._job = None

    def collect(self, limit, expected) -> Prediction:
        job, self._job = self._job, None
        torch.manual_seed(job.seed)
        try:
            model = job.rec.build_model(num_classes=job.num_classes,
                                        image_size=job.image_size).to(self.device)
        except Exception as err:  # noqa: BLE001
            raise PredictFailure(f"building the network failed: {describe_error(err)}") from None
        task = Task(arch=job.rec, dataset=job.dataset, num_classes=job.num_classes,
                    image_size=job.image_size, classes=job.classes, device=self.device,
                    seed=job.seed, support=job.support)
        shapes = {n: p.shape for n, p in model.named_parameters()}
        path = self.loaded.path
        try:
            with _deadline(limit) as interruptible:
                torch.manual_seed(job.seed)
                sync(self.device)
                t0 = time.perf_counter()
                out = self.loaded.method.predict(model, task)
                sync(self.device)
                elapsed = time.perf_counter() - t0
        except MethodTimeout:
            raise PredictFailure(f"prediction exceeded the time limit of {limit:g} s "
                                 "(--time-limit); in-process, a method stuck in C code is "
                                 "interrupted only when it returns to Python") from None
        except Exception as err:  # noqa: BLE001 - the method's bug fails this one only
            what = "out of memory during predict: " if is_oom(err) else "predict raised "
            raise PredictFailure(what + describe_error(err, path)) from None
        if limit is not None and not interruptible and elapsed > limit:
            raise PredictFailure(f"prediction took {elapsed:.1f} s, over the time limit of "
                                 f"{limit:g} s (--time-limit)")
        try:
            tensors = check_tensors(prediction_tensors(out, model, shapes), expected)
        except (OutputError, TransferError) as err:
            raise PredictFailure(str(err)) from None
        return Prediction(tensors, elapsed, elapsed)


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
