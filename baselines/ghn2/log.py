"""Training logs: windowed means, JSON lines, and a progress bar (rich on a terminal, plain
lines otherwise)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

__all__ = ["mean_stats", "append_jsonl", "ProgressBar"]


def mean_stats(window: list[dict], step: int, lr: float, elapsed: float, skipped: int) -> dict:
    keys = ("loss", "net_loss", "acc", "nodes")
    rec = {k: float(np.mean([w[k] for w in window])) for k in keys}
    norms = [w["grad_norm"] for w in window if np.isfinite(w["grad_norm"])]
    rec["grad_norm"] = float(np.mean(norms)) if norms else None
    rec["nonfinite"] = int(sum(w.get("nonfinite", 0) for w in window))  # steps dropped
    rec.update(step=step, lr=lr, elapsed_s=round(elapsed, 2), skipped=skipped)
    return rec


def append_jsonl(path: Path, rec: dict) -> None:
    with open(path, "a") as f:
        f.write(json.dumps(rec) + "\n")


class ProgressBar:
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
