"""What a run will cost, and the progress bar that says where it is.

Before the first architecture the evaluator prints the run's size (architectures x images,
network passes, MACs from :func:`~deepnetsbench.eval.macs.spec_macs`, which costs
microseconds per architecture). The bar shows the architectures done, the images of the one
being scored (the evaluator scores; prediction happens in the method's worker), and a time
left that weights the remaining architectures by their MACs, because they differ by two
orders of magnitude. The rate comes first from the first batches of scoring, then from the
finished architectures (prediction, building and loading included); both estimates are
printed once.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    TextColumn,
    TimeElapsedColumn,
)
from rich.text import Text

__all__ = ["RunCost", "RunProgress", "arch_macs", "format_count", "format_duration",
           "run_cost"]

#: Seconds of scoring the first-batches estimate waits for (or the whole first network).
FIRST_BATCHES_S = 1.0


def format_count(n: float) -> str:
    """``2.18 P``, ``437 M``, ``950``: three significant digits with an SI prefix."""
    for value, prefix in ((1e15, "P"), (1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "K")):
        if abs(n) >= value:
            scaled = n / value
            return (f"{scaled:.3g}" if scaled < 100 else f"{scaled:.0f}") + f" {prefix}"
    return f"{n:.0f}"


def format_duration(seconds: float) -> str:
    """``45 s``, ``12 min``, ``3 h 05 min``."""
    seconds = max(0.0, float(seconds))
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 90 * 60:
        return f"{seconds / 60:.0f} min"
    hours, rest = divmod(round(seconds / 60), 60)
    return f"{hours} h {rest:02d} min"


def arch_macs(rec: Any, num_classes: int, image_size: int) -> int | None:
    """MACs of one image through ``rec`` at the size the evaluator builds it (the larger of
    the dataset's and the record's own), or None when they cannot be counted."""
    size = max(int(image_size), int(getattr(rec, "image_size", 0) or 0))
    try:
        if rec.spec is not None:
            from deepnetsbench.eval.macs import spec_macs

            return spec_macs(rec.spec, num_classes, size)
        from deepnetsbench.eval.macs import module_macs

        return module_macs(lambda: rec.build_model(num_classes=num_classes, image_size=size),
                           size)
    except Exception:  # noqa: BLE001 - an estimate only; the run reports real failures
        return None


@dataclass
class RunCost:
    """The size of a run: its architectures, the images each is scored on, their MACs."""

    items: list[Any]  # the architecture indices, in run order
    images: int  # test images scored per architecture
    macs: list[int | None]  # MACs of one image, per architecture

    @property
    def known(self) -> list[int]:
        return [m for m in self.macs if m is not None]

    @property
    def total_macs(self) -> int:
        """MACs of the whole run (architectures with unknown MACs count as the mean)."""
        known = self.known
        if not known:
            return 0
        mean = sum(known) / len(known)
        return int((sum(known) + mean * (len(self.macs) - len(known))) * self.images)

    def weights(self) -> dict[Any, float]:
        """Each architecture's share of the work (MACs x images; the mean where unknown)."""
        known = self.known
        mean = sum(known) / len(known) if known else 1.0
        return {i: float(m if m is not None else mean) * self.images
                for i, m in zip(self.items, self.macs)}

    def line(self) -> str:
        n = len(self.items)
        text = (f"cost: {n:,} architecture{'s' * (n != 1)} x {self.images:,} images = "
                f"{n * self.images:,} network passes")
        known = self.known
        if known:
            text += (f", {format_count(self.total_macs)} MACs (mean {format_count(sum(known) / len(known))}"
                     " MACs per image; conv and linear layers")
            if len(known) < n:
                text += f"; {n - len(known)} counted as the mean"
            text += ")"
        return text


def run_cost(suite: Any, items: Sequence[int], images: Any) -> RunCost:
    """The cost of scoring ``items`` of ``suite`` on ``images`` (an EvalImages)."""
    macs = [arch_macs(suite[i], images.num_classes, images.image_size) for i in items]
    return RunCost(list(items), int(images.eval_images), macs)


class RunProgress:
    """The bar of a journaled run (also without a terminal: ``enabled=False`` draws nothing
    and prints nothing). Architectures done, the images of the current one, time left.

    ``start(item, name)``, ``images(done, total)`` (from scoring), ``advance(ok)``, ``log``.
    ``weights`` maps each item to its work (MACs x images); without it every item counts
    the same."""

    def __init__(self, enabled: bool, console: Any, total: int, done: int = 0,
                 weights: dict[Any, float] | None = None, device: str = ""):
        self.enabled, self.console, self.total, self.done_before = enabled, console, total, done
        self.device = device
        self.ok = self.failed = 0
        self.set_weights(weights)
        self._progress = self._arch_task = self._image_task = None
        self._item: Any = None
        self._fraction = 0.0
        self._item_t0 = self._score_t0 = 0.0
        self._base: tuple[float, float] | None = None  # (time, fraction) after batch 1
        self._batch_rate: float | None = None  # work per second while scoring (first batches)
        self._ok_work = self._ok_time = 0.0  # finished architectures
        self._eta: tuple[float, float] | None = None  # (seconds left, when computed)

    def set_weights(self, weights: dict[Any, float] | None) -> None:
        """Each remaining item's work; without weights, items count one each."""
        self.weights = dict(weights or {})
        self._left = (sum(self.weights.values()) if self.weights
                      else float(self.total - self.done_before))

    @property
    def measuring(self) -> bool:
        """Whether scoring is being timed for the first-batches estimate (the caller
        synchronises an asynchronous device before reporting, so the clock is true)."""
        return self.enabled and self._batch_rate is None and not self._ok_time

    # --------------------------------------------------------------------- rich display

    def __enter__(self) -> RunProgress:
        if not self.enabled:
            return self
        self._progress = Progress(TextColumn("{task.description}"), BarColumn(),
                                  MofNCompleteColumn(), TextColumn("{task.fields[status]}"),
                                  TimeElapsedColumn(), _EtaColumn(self), console=self.console)
        self._progress.__enter__()
        status = f"{self.done_before} done before" if self.done_before else ""
        self._arch_task = self._progress.add_task("eval", total=self.total,
                                                  completed=self.done_before, status=status)
        self._image_task = self._progress.add_task("  images", total=None, status="",
                                                   visible=False)
        return self

    def __exit__(self, *exc: Any) -> None:
        if self._progress is not None:
            self._progress.__exit__(*exc)
            self._progress = None

    def log(self, text: str) -> None:
        if self._progress is not None:
            self._progress.console.print(text, markup=True, highlight=False)
        elif self.enabled and self.console is not None:
            self.console.print(text, markup=True, highlight=False)

    # --------------------------------------------------------------------- events

    def start(self, item: Any, name: str) -> None:
        """An architecture begins (its prediction first, then scoring)."""
        self._item, self._fraction, self._score_t0 = item, 0.0, 0.0
        self._item_t0 = time.perf_counter()
        if self._progress is not None:
            self._progress.update(self._arch_task, description=f"eval {name}")
            self._progress.reset(self._image_task, total=None, description="  predicting",
                                 visible=True)

    def images(self, done: int, total: int) -> None:
        """Scoring reports ``done`` of ``total`` images of the current architecture.

        The first-batches rate is timed from the end of the first batch (which carries the
        kernels' one-time set-up) over at least :data:`FIRST_BATCHES_S`."""
        now = time.perf_counter()
        self._fraction = done / total if total else 1.0
        if self._progress is not None:
            self._progress.update(self._image_task, total=total, completed=done,
                                  description="  images")
        if not done:
            self._score_t0, self._base = now, None
        elif self._batch_rate is None and not self._ok_time:
            if self._base is None:
                self._base = (now, self._fraction)
            t0, f0 = self._base if self._fraction > self._base[1] else (self._score_t0, 0.0)
            if now - t0 >= FIRST_BATCHES_S or done >= total:
                work = self._weight(self._item) * (self._fraction - f0)
                self._batch_rate = work / max(now - t0, 1e-9)
                self._update_eta()
                self._say("from the first batches, scoring only", self._batch_rate)
                return
        self._update_eta()

    def advance(self, ok: bool) -> None:
        """The current architecture is finished (``ok``: scored; else failed)."""
        seconds = time.perf_counter() - self._item_t0
        weight = self._weight(self._item)
        self._left = max(0.0, self._left - weight)
        first = ok and not self._ok_time
        if ok:
            self._ok_work += weight
            self._ok_time += max(seconds, 1e-9)
        self.ok += ok
        self.failed += not ok
        self._item, self._fraction = None, 0.0
        self._update_eta()
        if self._progress is not None:
            self._progress.update(self._arch_task, advance=1,
                                  status=f"{self.ok} ok, {self.failed} failed")
            self._progress.update(self._image_task, visible=False)
        if first and self._left:
            self._say("after the first architecture, with prediction and building",
                      self._ok_work / self._ok_time)

    # --------------------------------------------------------------------- estimates

    def _weight(self, item: Any) -> float:
        return float(self.weights.get(item, 1.0)) if self.weights else 1.0

    def _rate(self) -> float | None:
        if self._ok_time:
            return self._ok_work / self._ok_time
        return self._batch_rate

    def _work_left(self) -> float:
        current = self._weight(self._item) * self._fraction if self._item is not None else 0.0
        return max(0.0, self._left - current)

    def _update_eta(self) -> None:
        rate = self._rate()
        self._eta = None if not rate else (self._work_left() / rate, time.perf_counter())

    def eta_seconds(self) -> float | None:
        """Estimated seconds left (None before any estimate)."""
        if self._eta is None:
            return None
        left, at = self._eta
        return max(0.0, left - (time.perf_counter() - at))

    def _say(self, how: str, rate: float) -> None:
        if not self.weights:  # no MACs: the bar's time left is by count
            return
        left = self._work_left()
        where = f" on {self.device}" if self.device else ""
        self.log(f"estimate{where}: {format_duration(left / rate)} left ({how}: "
                 f"{format_count(rate)} MACs/s)")


class _EtaColumn(ProgressColumn):
    """``~12 min left`` on the architectures' row; blank elsewhere."""

    def __init__(self, owner: RunProgress):
        super().__init__()
        self.owner = owner

    def render(self, task: Any) -> Text:
        if task.id != self.owner._arch_task:
            return Text("")
        eta = self.owner.eta_seconds()
        return Text("" if eta is None else f"~{format_duration(eta)} left", style="cyan")
