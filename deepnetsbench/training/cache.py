"""On-disk cache of reference training curves.

A reference curve is expensive (minutes to hours of training) and depends only on the
architecture, the data, the trainer config, the budget and the hardware. It is cached as one
JSON file per key so that ``eval --speedup`` trains each reference once per machine.
Speedups compare times measured on the *same* hardware: the hardware string is part of
the key, so a curve recorded on another device is never reused.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from deepnetsbench.errors import BenchError
from deepnetsbench.training.curve import Curve, atomic_write_text
from deepnetsbench.training.hardware import hardware_id
from deepnetsbench.training.trainer import Budget, TrainConfig

__all__ = ["CurveCache", "CurveKey", "config_hash", "hardware_id"]


def _canonical(obj: Any) -> str:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), default=str)


def config_hash(config: TrainConfig | dict[str, Any]) -> str:
    """Stable short hash of a trainer config (sha1 of its canonical JSON, 16 hex digits)."""
    d = config.to_dict() if isinstance(config, TrainConfig) else dict(config)
    return hashlib.sha1(_canonical(d).encode()).hexdigest()[:16]


@dataclass(frozen=True)
class CurveKey:
    """Everything a reference curve depends on."""

    arch: str  # e.g. ArchSpec.key() or a torchvision model name + width
    dataset: str  # ImageDataset.content_sha256
    config: str  # config_hash(TrainConfig)
    hardware: str  # hardware_id(device)
    budget: str  # str(Budget), e.g. "5ep" or "300s"
    eval_every: float | None = 1.0

    @classmethod
    def make(cls, arch: str, dataset: str, config: TrainConfig | dict[str, Any],
             hardware: str, budget: Budget | str, eval_every: float | None = 1.0) -> CurveKey:
        return cls(arch=str(arch), dataset=str(dataset), config=config_hash(config),
                   hardware=hardware, budget=str(budget), eval_every=eval_every)

    def to_dict(self) -> dict[str, Any]:
        return {"arch": self.arch, "dataset": self.dataset, "config": self.config,
                "hardware": self.hardware, "budget": self.budget,
                "eval_every": self.eval_every}

    def digest(self) -> str:
        return hashlib.sha1(_canonical(self.to_dict()).encode()).hexdigest()


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", text).strip("_")[:80] or "unknown"


class CurveCache:
    """JSON files under ``root/<hardware slug>/<key digest>.json``, written atomically.

    Each file stores the key next to the curve; a file whose key does not match (a hash
    collision or a hand-edited file) or that cannot be parsed counts as a miss.
    """

    def __init__(self, root: str | os.PathLike):
        self.root = Path(root)

    def path(self, key: CurveKey) -> Path:
        return self.root / _slug(key.hardware) / f"{key.digest()}.json"

    def get(self, key: CurveKey) -> Curve | None:
        path = self.path(key)
        try:
            d = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError):
            return None
        if not isinstance(d, dict) or d.get("key") != key.to_dict():
            return None
        try:
            return Curve.from_dict(d["curve"])
        except (BenchError, KeyError):
            return None

    def put(self, key: CurveKey, curve: Curve) -> Path:
        path = self.path(key)
        atomic_write_text(path, json.dumps({"key": key.to_dict(), "curve": curve.to_dict()},
                                           indent=1, sort_keys=True))
        return path

    def get_or_train(self, key: CurveKey, train_fn: Callable[[], Curve],
                     cache_unfinished: bool = False) -> Curve:
        """The cached curve for ``key``, or ``train_fn()`` stored under ``key``.

        Curves that did not finish (diverged) are returned but not cached unless
        ``cache_unfinished`` (divergence may be a fluke worth re-running).
        """
        curve = self.get(key)
        if curve is not None:
            return curve
        curve = train_fn()
        if curve.finished or cache_unfinished:
            self.put(key, curve)
        return curve
