"""GHN checkpoints: ours and the released (official ppuda) ones, read by one ``load_ghn``.

**Official files** (``ghn2_cifar10.pt`` etc., and whatever the official ``train_ghn.py``
writes): a ``torch.save`` dict with ``state_dict`` (official keys), ``config`` (``max_shape,
num_classes, hypernet, decoder, weight_norm, ve, layernorm, hid``; missing flags take the
official constructor's defaults), ``epoch`` and possibly the optimizer state (``optimzer``,
sic). Our modules carry the official names, so the state dict loads unchanged.

**Ours** (a superset, so that the official ``GHN.load`` reads our files too)::

    format          "deepnets-bench/ghn2"
    format_version  2
    config          the official config keys (the architecture of the hypernetwork)
    s_max           the virtual-edge cutoff (50, the released value)
    epoch           epochs completed - 1 (the official convention), -1 before the first
    state_dict      the weights (tensors on CPU, official keys)
    num_params      parameters of the GHN
    data            training images: dataset, content_sha256, train/val counts, split
    archs           training architectures: source, split sha256 or generator version
    train           step, elapsed_s, the TrainConfig dict, and (in resumable checkpoints)
                    optimizer state and RNG states
    metrics         validation history [{step, top1, ...}] and best_top1
    created, torch  when and with which torch version it was written

Format version 1 (before 2026-12: our own GHN variant, other keys) is refused with a
one-line error: its weights belong to another architecture. Loading is ``weights_only``
(a checkpoint is data, never code) and checks every key and shape; any mismatch is a
:class:`~deepnetsbench.errors.BenchError` naming what is missing. Files are written
atomically (temp file + ``os.replace``).
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

__all__ = ["FORMAT", "FORMAT_VERSION", "OFFICIAL", "save_checkpoint", "read_checkpoint",
           "load_ghn", "checkpoint_dict", "config_from_checkpoint", "describe"]

FORMAT = "deepnets-bench/ghn2"
FORMAT_VERSION = 2
OFFICIAL = "ppuda"  # the ``format`` load_ghn reports for official files
#: Defaults of the official GHN constructor, for config keys an official file may omit.
_OFFICIAL_DEFAULTS = {"hypernet": "gatedgnn", "decoder": "conv", "weight_norm": False,
                      "ve": False, "layernorm": False, "hid": 32}
_OFFICIAL_KEYS = ("max_shape", "num_classes", "hypernet", "decoder", "weight_norm", "ve",
                  "layernorm", "hid")


def official_config(config: GHN2Config) -> dict:
    """The config as the official code stores (and reads) it."""
    d = config.to_dict()
    out = {k: d[k] for k in _OFFICIAL_KEYS}
    out["max_shape"] = tuple(out["max_shape"])
    return out


def checkpoint_dict(ghn: GHN2, epoch: int = -1, **sections: Any) -> dict:
    """The checkpoint of ``ghn`` plus free ``sections`` (data, archs, train, metrics)."""
    ckpt = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "config": official_config(ghn.config),
        "s_max": ghn.config.s_max,
        "epoch": int(epoch),
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


def save_checkpoint(path: str | os.PathLike, ghn: GHN2, epoch: int = -1,
                    **sections: Any) -> Path:
    """Write atomically; returns the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        torch.save(checkpoint_dict(ghn, epoch, **sections), tmp)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return path


def read_checkpoint(path: str | os.PathLike) -> dict:
    """Load a checkpoint file and check its header; ``ckpt["format"]`` says which kind it is
    (:data:`FORMAT` or :data:`OFFICIAL`). The weights are checked by :func:`load_ghn`."""
    path = Path(path).expanduser()
    if not path.is_file():
        raise BenchError(f"GHN checkpoint {path} does not exist",
                         "train one with `python -m baselines.ghn2.train` or pass ckpt=PATH")
    try:
        with torch.serialization.safe_globals([torch.torch_version.TorchVersion]):
            ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # noqa: BLE001 - any unpickling failure means a bad file
        raise BenchError(f"cannot read GHN checkpoint {path} ({type(err).__name__}: "
                         f"{str(err).splitlines()[0][:200] if str(err) else ''})",
                         "re-download or re-train the checkpoint")
    if not isinstance(ckpt, dict):
        raise BenchError(f"{path} is not a GHN checkpoint (it holds a {type(ckpt).__name__}, "
                         "not a dict with 'state_dict' and 'config')",
                         "pass a file written by baselines.ghn2 or by the official ppuda code")
    if ckpt.get("format") == FORMAT:
        version = ckpt.get("format_version")
        if version == 1:
            raise BenchError(f"{path} is a format-1 deepnets-bench GHN checkpoint (our GHN "
                             "variant before it became the released architecture); its "
                             "weights fit no current model",
                             "retrain it with `python -m baselines.ghn2.train`")
        if version != FORMAT_VERSION:
            raise BenchError(f"{path} has checkpoint format version {version}, this code reads "
                             f"{FORMAT_VERSION}", "use the matching version of baselines/ghn2")
    else:
        ckpt = dict(ckpt)
        ckpt["format"] = OFFICIAL
    missing = [k for k in ("state_dict", "config") if not isinstance(ckpt.get(k), dict)]
    if missing:
        found = sorted(str(k) for k in ckpt if k != "format")[:6]
        raise BenchError(f"{path} is not a GHN checkpoint: no {' or '.join(map(repr, missing))} "
                         f"dict (its keys: {found})",
                         "pass a file written by baselines.ghn2 or by the official ppuda code")
    return ckpt


def config_from_checkpoint(ckpt: dict, where: str = "checkpoint") -> GHN2Config:
    """The :class:`GHN2Config` of a checkpoint dict from :func:`read_checkpoint`."""
    cfg = dict(ckpt["config"])
    unknown = sorted(set(cfg) - set(_OFFICIAL_KEYS))
    if unknown:
        raise BenchError(f"{where}: unknown GHN config keys {unknown}",
                         f"a GHN config has the keys {list(_OFFICIAL_KEYS)}")
    absent = [k for k in ("max_shape", "num_classes") if k not in cfg]
    if absent:
        raise BenchError(f"{where}: the GHN config lacks {absent}",
                         "the file is truncated or not a GHN checkpoint")
    cfg = {**_OFFICIAL_DEFAULTS, **cfg}
    try:
        return GHN2Config(max_shape=tuple(int(d) for d in cfg["max_shape"]),
                          num_classes=int(cfg["num_classes"]), hypernet=str(cfg["hypernet"]),
                          decoder=str(cfg["decoder"]), weight_norm=bool(cfg["weight_norm"]),
                          ve=bool(cfg["ve"]), layernorm=bool(cfg["layernorm"]),
                          hid=int(cfg["hid"]), s_max=int(ckpt.get("s_max", 50)))
    except (TypeError, ValueError) as err:
        raise BenchError(f"{where}: invalid GHN config {cfg} ({err})",
                         "the file is corrupt or not a GHN checkpoint")


def describe(info: dict) -> str:
    """One line on what :func:`load_ghn` read, e.g. ``official ppuda checkpoint (ghn2,
    cifar10 head, epoch 299)``."""
    cfg = config_from_checkpoint(info)
    kind = "official ppuda" if info.get("format") == OFFICIAL else "deepnets-bench"
    epoch = info.get("epoch")
    step = info.get("train", {}).get("step") if isinstance(info.get("train"), dict) else None
    when = f", epoch {epoch}" if isinstance(epoch, int) and epoch >= 0 else ""
    when += f", {step} steps" if step is not None else ""
    return (f"{kind} checkpoint ({cfg.name}, {cfg.num_classes} classes, "
            f"{cfg.max_shape[2]}x{cfg.max_shape[3]} grid{when})")


def load_ghn(path: str | os.PathLike, device: torch.device | str = "cpu",
             config: GHN2Config | None = None) -> tuple[GHN2, dict]:
    """``(ghn, checkpoint dict)`` from our checkpoint or an official one
    (``info["format"]``: :data:`FORMAT` or :data:`OFFICIAL`; :func:`describe` says it in
    words). With ``config``, the checkpoint must have exactly that configuration."""
    ckpt = read_checkpoint(path)
    stored = config_from_checkpoint(ckpt, str(path))
    if config is not None and config != stored:
        diff = {k: (v, getattr(stored, k)) for k, v in config.to_dict().items()
                if stored.to_dict()[k] != v}
        raise BenchError(f"checkpoint {path} has another GHN config (wanted vs stored: {diff})",
                         "drop the conflicting options or use a checkpoint with this config")
    ghn = GHN2(stored)
    expected = ghn.state_dict()
    state = ckpt["state_dict"]
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    wrong = sorted(k for k in set(expected) & set(state)
                   if not isinstance(state[k], torch.Tensor)
                   or tuple(expected[k].shape) != tuple(state[k].shape))
    if missing or unexpected or wrong:
        parts = []
        if missing:
            parts.append(f"missing {len(missing)} tensors {missing[:3]}")
        if unexpected:
            parts.append(f"unexpected {unexpected[:3]}")
        if wrong:
            got = [(k, tuple(getattr(state[k], "shape", ()))) for k in wrong[:3]]
            parts.append(f"wrong shapes {got}")
        raise BenchError(f"checkpoint {path} does not fit its {stored.name} config: "
                         + "; ".join(parts),
                         "the file is corrupt or from another model (GHN config "
                         f"{official_config(stored)})")
    ghn.load_state_dict(state)
    return ghn.to(device), ckpt
