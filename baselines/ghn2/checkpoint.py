"""GHN-2 checkpoints: one ``torch.save`` file, self-describing, checked on load.

Format (a dict; ``FORMAT``/``FORMAT_VERSION`` identify it)::

    format          "deepnets-bench/ghn2"
    format_version  1
    config          GHN2Config as a dict (the architecture of the hypernetwork)
    state_dict      the GHN2 weights (tensors on CPU)
    num_params      parameters of the GHN
    data            training images: dataset name, content_sha256, train/val counts, the
                    seed of the 45k/5k split and the sha256 of the validation indices
    archs           training architectures: source ("DeepNets1M:train" or "sampler"),
                    the split file's sha256 or the generator version, how many
    train           step, elapsed_s, the TrainConfig dict, and (in resumable checkpoints)
                    optimizer state and RNG states
    metrics         validation history [{step, top1, ...}] and best_top1
    created, torch  when and with which torch version it was written

Loading never trusts a file blindly: the format, its version, the config keys and every
tensor's shape are checked and a mismatch is a :class:`~deepnetsbench.errors.BenchError`.
Files are written atomically (temp file + ``os.replace``).
"""

from __future__ import annotations

import datetime as _dt
import os
import tempfile
from pathlib import Path
from typing import Any

import torch

from baselines.ghn2.model import GHN2, GHN2Config
from deepnetsbench.errors import BenchError

__all__ = ["FORMAT", "FORMAT_VERSION", "save_checkpoint", "read_checkpoint", "load_ghn",
           "checkpoint_dict"]

FORMAT = "deepnets-bench/ghn2"
FORMAT_VERSION = 1


def checkpoint_dict(ghn: GHN2, **sections: Any) -> dict:
    """The checkpoint of ``ghn`` plus free ``sections`` (data, archs, train, metrics)."""
    ckpt = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "config": ghn.config.to_dict(),
        "state_dict": {k: v.detach().cpu() for k, v in ghn.state_dict().items()},
        "num_params": ghn.num_params,
        "data": {},
        "archs": {},
        "train": {},
        "metrics": {},
        "created": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
        "torch": str(torch.__version__),
    }
    ckpt.update(sections)
    return ckpt


def save_checkpoint(path: str | os.PathLike, ghn: GHN2, **sections: Any) -> Path:
    """Write atomically; returns the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        torch.save(checkpoint_dict(ghn, **sections), tmp)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return path


def read_checkpoint(path: str | os.PathLike) -> dict:
    """Load and validate the file's header (not yet the weights)."""
    path = Path(path).expanduser()
    if not path.is_file():
        raise BenchError(f"GHN-2 checkpoint {path} does not exist",
                         "train one with `python -m baselines.ghn2.train` or pass ckpt=PATH")
    try:
        # weights_only: a checkpoint is data, never code
        with torch.serialization.safe_globals([torch.torch_version.TorchVersion]):
            ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # noqa: BLE001 - any unpickling failure means a bad file
        raise BenchError(f"cannot read GHN-2 checkpoint {path} ({type(err).__name__}: "
                         f"{str(err)[:200]})", "re-download or re-train the checkpoint")
    if not isinstance(ckpt, dict) or ckpt.get("format") != FORMAT:
        raise BenchError(f"{path} is not a deepnets-bench GHN-2 checkpoint",
                         "pass a file written by baselines.ghn2 (save_checkpoint / train)")
    version = ckpt.get("format_version")
    if version != FORMAT_VERSION:
        raise BenchError(f"{path} has checkpoint format version {version}, this code reads "
                         f"{FORMAT_VERSION}", "use the matching version of baselines/ghn2")
    return ckpt


def load_ghn(path: str | os.PathLike, device: torch.device | str = "cpu",
             config: GHN2Config | None = None) -> tuple[GHN2, dict]:
    """``(ghn, checkpoint dict)``. With ``config``, the checkpoint must have been trained
    with exactly that configuration."""
    ckpt = read_checkpoint(path)
    stored = GHN2Config.from_dict(dict(ckpt["config"]))
    if config is not None and config != stored:
        diff = {k: (v, getattr(stored, k)) for k, v in config.to_dict().items()
                if getattr(stored, k) != v}
        raise BenchError(f"checkpoint {path} was trained with another GHN-2 config "
                         f"(wanted vs stored: {diff})",
                         "drop the conflicting options or use a checkpoint with this config")
    ghn = GHN2(stored)
    expected = ghn.state_dict()
    state = ckpt["state_dict"]
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    wrong = sorted(k for k in set(expected) & set(state)
                   if tuple(expected[k].shape) != tuple(state[k].shape))
    if missing or unexpected or wrong:
        raise BenchError(f"checkpoint {path} does not match its GHN-2 config: missing "
                         f"{missing[:3]}, unexpected {unexpected[:3]}, wrong shapes {wrong[:3]}",
                         "the file is corrupt or from another version of baselines/ghn2")
    ghn.load_state_dict(state)
    return ghn.to(device), ckpt
