"""Names of the hardware a timing was taken on (timings only compare on the same one)."""

from __future__ import annotations

import platform

import torch

from deepnetsbench.errors import BenchError

__all__ = ["cpu_model", "hardware_id"]


def cpu_model() -> str:
    """The CPU's model name (``/proc/cpuinfo``), or the best the platform module knows."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown"


def hardware_id(device: str | torch.device) -> str:
    """A readable name of the hardware that ``device`` runs on.

    ``cuda:NVIDIA H100 80GB HBM3`` for a GPU, ``cpu:<model name> x<torch threads>`` for a
    CPU (the thread count changes CPU timings, so it is part of the name).
    """
    dev = torch.device(device)
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise BenchError(f"device {device!r} requested but CUDA is not available",
                             "use --device cpu")
        index = dev.index if dev.index is not None else torch.cuda.current_device()
        return f"cuda:{torch.cuda.get_device_name(index)}"
    if dev.type == "cpu":
        return f"cpu:{cpu_model()} x{torch.get_num_threads()}"
    return f"{dev.type}:{platform.machine()}"
