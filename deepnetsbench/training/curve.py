"""Accuracy-vs-training-time curves, time-to-accuracy, and the speedup of a predictor.

A :class:`Curve` is what a reference trainer records: accuracy (same protocol as the
evaluator) at fixed intervals, against device-synchronised training seconds. From it,
:func:`time_to_accuracy` reads how long training took to reach the accuracy of the
predicted parameters, and :func:`speedup` divides that by the prediction time.

Never invent a number: when training did not reach the target within its budget, the
time is unknown and only bounded below by the training seconds spent; the speedup is then
a lower bound, and so is any geometric mean that includes it.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from deepnetsbench.errors import BenchError
from deepnetsbench.results import atomic_write_text

__all__ = [
    "CURVE_FORMAT",
    "Curve",
    "CurvePoint",
    "MeanSpeedup",
    "Speedup",
    "TimeToAcc",
    "atomic_write_text",
    "geometric_mean",
    "speedup",
    "time_to_accuracy",
]

CURVE_FORMAT = "deepnets-bench/curve/1"



@dataclass
class CurvePoint:
    """One evaluation: after ``seconds`` of training (``epochs``, ``steps``), the accuracy.

    ``train_loss`` is the mean training loss since the previous point (None at time 0).
    """

    seconds: float
    epochs: float
    steps: int
    top1: float
    top5: float
    train_loss: float | None = None


@dataclass
class Curve:
    """A reference training run: its points (first at time 0) and how it was produced.

    ``config``: the trainer config as a dict; ``device``: e.g. ``cuda:0``; ``hardware``:
    :func:`~deepnetsbench.training.cache.hardware_id`; ``budget``: ``{"epochs", "seconds"}``;
    ``finished``: the budget was used up normally (False: diverged or interrupted,
    ``status`` says which); ``meta``: anything else (sizes, torch version, eval settings).
    """

    points: list[CurvePoint] = field(default_factory=list)
    config: dict[str, Any] = field(default_factory=dict)
    device: str = "cpu"
    hardware: str = ""
    budget: dict[str, Any] = field(default_factory=dict)
    finished: bool = False
    status: str = "running"
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def total_seconds(self) -> float:
        """Training seconds spent (the last point's time; 0 without points)."""
        return self.points[-1].seconds if self.points else 0.0

    @property
    def final(self) -> CurvePoint:
        if not self.points:
            raise BenchError("the curve has no points", "re-run the reference training")
        return self.points[-1]

    def best(self, metric: str = "top1") -> float:
        return max(getattr(p, metric) for p in self.points)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["format"] = CURVE_FORMAT
        return d

    def to_json(self, indent: int | None = 1) -> str:
        return json.dumps(self.to_dict(), indent=indent, sort_keys=True)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Curve:
        if d.get("format", CURVE_FORMAT) != CURVE_FORMAT:
            raise BenchError(f"unsupported curve format {d.get('format')!r}",
                             "re-run the reference training with this version")
        try:
            points = [CurvePoint(**p) for p in d.get("points", [])]
            kwargs = {k: d[k] for k in ("config", "device", "hardware", "budget", "finished",
                                        "status", "meta") if k in d}
            return cls(points=points, **kwargs)
        except TypeError as err:
            raise BenchError(f"malformed curve JSON ({err})",
                             "delete the file and re-run the reference training") from err

    @classmethod
    def from_json(cls, s: str | bytes | dict[str, Any]) -> Curve:
        """Parse a curve from a JSON string (or an already-decoded dict)."""
        if isinstance(s, dict):
            return cls.from_dict(s)
        try:
            d = json.loads(s)
        except json.JSONDecodeError as err:
            raise BenchError(f"curve is not valid JSON ({err})",
                             "delete the file and re-run the reference training") from err
        if not isinstance(d, dict):
            raise BenchError("curve JSON is not an object", "re-run the reference training")
        return cls.from_dict(d)

    def save(self, path: str | os.PathLike) -> Path:
        """Atomically write the curve as JSON."""
        atomic_write_text(path, self.to_json())
        return Path(path)

    @classmethod
    def load(cls, path: str | os.PathLike) -> Curve:
        try:
            text = Path(path).read_text(encoding="utf-8")
        except OSError as err:
            raise BenchError(f"cannot read curve {path} ({err.strerror})",
                             "check the path or re-run the reference training") from err
        return cls.from_json(text)


@dataclass(frozen=True)
class TimeToAcc:
    """How long training took to reach ``target`` (percent, ``metric`` top1|top5).

    ``reached``: some point reached it; then ``seconds``/``epochs``/``steps`` are set.
    Otherwise they are None and ``seconds_lower_bound`` is the training time spent.
    ``interpolated``: the time was linearly interpolated between two points.
    """

    target: float
    metric: str
    reached: bool
    seconds: float | None
    epochs: float | None
    steps: int | None
    seconds_lower_bound: float | None
    interpolated: bool = False

    @property
    def seconds_or_bound(self) -> float:
        return self.seconds if self.reached else self.seconds_lower_bound  # type: ignore[return-value]


def time_to_accuracy(
    curve: Curve,
    target_top1: float | None = None,
    *,
    target_top5: float | None = None,
    interpolate: bool = False,
) -> TimeToAcc:
    """Training seconds until ``curve`` first reaches the target accuracy.

    Give exactly one of ``target_top1`` / ``target_top5`` (percent). Default: the time of the
    first evaluated point at or above the target (what was observed; it over-estimates the
    time by at most one evaluation interval). ``interpolate=True``: linear interpolation
    between that point and the one before it. Never reached: ``reached=False`` and
    ``seconds_lower_bound`` = the curve's total training seconds.
    """
    if (target_top1 is None) == (target_top5 is None):
        raise BenchError("time_to_accuracy needs exactly one target",
                         "pass target_top1 or target_top5")
    metric, target = ("top1", target_top1) if target_top1 is not None else ("top5", target_top5)
    target = float(target)  # type: ignore[arg-type]
    if not math.isfinite(target):
        raise BenchError(f"target accuracy {target} is not finite", "pass a percentage")
    if not curve.points:
        raise BenchError("the reference curve has no points", "re-run the reference training")
    points = curve.points
    for i, p in enumerate(points):
        acc = getattr(p, metric)
        if acc < target:
            continue
        if interpolate and i > 0:
            q = points[i - 1]
            a0 = getattr(q, metric)
            frac = (target - a0) / (acc - a0)  # a0 < target <= acc, so acc > a0
            return TimeToAcc(target, metric, True,
                             seconds=q.seconds + frac * (p.seconds - q.seconds),
                             epochs=q.epochs + frac * (p.epochs - q.epochs),
                             steps=round(q.steps + frac * (p.steps - q.steps)),
                             seconds_lower_bound=None, interpolated=True)
        return TimeToAcc(target, metric, True, seconds=p.seconds, epochs=p.epochs,
                         steps=p.steps, seconds_lower_bound=None)
    return TimeToAcc(target, metric, False, seconds=None, epochs=None, steps=None,
                     seconds_lower_bound=curve.total_seconds)


@dataclass(frozen=True)
class Speedup:
    """``train_seconds / predict_seconds``; a lower bound when training never got there."""

    value: float
    is_lower_bound: bool
    train_seconds: float
    predict_seconds: float

    def __str__(self) -> str:
        return f"{'>=' if self.is_lower_bound else ''}{self.value:.3g}x"


def speedup(time_to_acc: TimeToAcc, predict_seconds: float) -> Speedup:
    """How many times faster prediction was than training to the same accuracy.

    Both times must come from the same device (and the same run, for the hardware string).
    """
    predict_seconds = float(predict_seconds)
    if not math.isfinite(predict_seconds) or predict_seconds <= 0:
        raise BenchError(f"prediction time must be positive, got {predict_seconds}",
                         "time the prediction with a device-synchronised clock")
    train = time_to_acc.seconds_or_bound
    if train is None:
        raise BenchError("time-to-accuracy has neither a time nor a bound",
                         "compute it with time_to_accuracy()")
    return Speedup(train / predict_seconds, not time_to_acc.reached, float(train),
                   predict_seconds)


@dataclass(frozen=True)
class MeanSpeedup:
    """Geometric mean of speedups; a lower bound as soon as one of them is."""

    value: float
    is_lower_bound: bool
    n: int
    n_lower_bounds: int

    def __str__(self) -> str:
        return f"{'>=' if self.is_lower_bound else ''}{self.value:.3g}x (n={self.n})"


def geometric_mean(speedups: Iterable[Speedup] | Sequence[Speedup]) -> MeanSpeedup:
    """Geometric mean of ``speedups``.

    The mean is non-decreasing in every term, so if any term is only a lower bound the mean
    is one too (``is_lower_bound``). A zero term (training reached the target at time 0)
    makes the mean 0.
    """
    items = list(speedups)
    if not items:
        raise BenchError("no speedups to average", "evaluate at least one architecture")
    n_lb = sum(s.is_lower_bound for s in items)
    if any(s.value < 0 or not math.isfinite(s.value) for s in items):
        raise BenchError("speedups must be finite and non-negative", "check the timings")
    if any(s.value == 0 for s in items):
        value = 0.0
    else:
        value = math.exp(sum(math.log(s.value) for s in items) / len(items))
    return MeanSpeedup(value, n_lb > 0, len(items), n_lb)
