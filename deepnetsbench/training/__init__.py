"""Reference trainers (SGD, SGD+GC), time-to-accuracy curves, speedup, fine-tuning and
post-processing of predicted parameters. See docs/speedup.md.

Names are imported lazily so that the CLI's ``--help`` does not import torch.
"""

from __future__ import annotations

from deepnetsbench.lazy import lazy_exports

_EXPORTS = {
    "Budget": "trainer", "TrainConfig": "trainer", "train": "trainer",
    "augment_batch": "trainer", "make_optimizer": "trainer", "synchronize": "trainer",
    "Curve": "curve", "CurvePoint": "curve", "TimeToAcc": "curve", "Speedup": "curve",
    "MeanSpeedup": "curve", "time_to_accuracy": "curve", "speedup": "curve",
    "geometric_mean": "curve",
    "CurveCache": "cache", "CurveKey": "cache", "config_hash": "cache",
    "hardware_id": "hardware",
    "SGDGC": "gc", "centralize_gradients": "gc",
    "FinetuneResult": "finetune", "finetune": "finetune",
    "add_noise": "postprocess", "orthogonal_reinit": "postprocess",
    "build_reference_model": "models",
}

__all__ = sorted(_EXPORTS)


__getattr__ = lazy_exports(__name__, _EXPORTS)
