"""How predicted parameters travel from the method's worker to the evaluator: a flat file.

The worker is untrusted, so nothing it sends is unpickled: it writes its tensors as raw
bytes behind a small JSON header (name, dtype, shape, offset per tensor) into a private
folder of the evaluator (on ``/dev/shm`` where it exists, i.e. shared memory), and the
evaluator reads only the tensors its *own* model expects, by name, after checking every
name, dtype, shape and byte range. A missing, unknown or mis-shaped tensor fails the
architecture with that reason.

Layout: ``MAGIC`` (8 bytes), header length (8 bytes, little endian), the header (UTF-8
JSON list of ``[name, dtype, shape, offset]``), then the data, each tensor at its offset.
"""

from __future__ import annotations

import json
import math
import os
import struct
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import torch

__all__ = ["MAGIC", "TransferError", "check_tensors", "read_tensors", "write_tensors"]

MAGIC = b"DNBTNS01"
MAX_HEADER = 16 << 20
ALIGN = 64
DTYPES: dict[str, torch.dtype] = {
    "float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16,
    "float64": torch.float64, "int64": torch.int64, "int32": torch.int32,
    "int16": torch.int16, "int8": torch.int8, "uint8": torch.uint8, "bool": torch.bool,
}
_NAMES = {v: k for k, v in DTYPES.items()}


class TransferError(Exception):
    """A prediction file that does not match the evaluator's model (one-line message)."""


def write_tensors(path: str | os.PathLike, tensors: Mapping[str, torch.Tensor]) -> int:
    """Write ``tensors`` (any device) to ``path`` atomically; returns the bytes written.
    Worker side: raises TypeError/ValueError for what cannot be sent."""
    header, offset, items = [], 0, []
    for name, t in tensors.items():
        if not isinstance(name, str):
            raise TypeError(f"prediction key {name!r} is a {type(name).__name__}, not a str")
        if not isinstance(t, torch.Tensor):
            raise TypeError(f"prediction for {name} is a {type(t).__name__}, not a tensor")
        if t.dtype not in _NAMES:
            raise TypeError(f"prediction for {name} has dtype {t.dtype}, which cannot be sent")
        t = t.detach().to("cpu").contiguous()
        if t.is_sparse or t.is_quantized:
            raise TypeError(f"prediction for {name} is not a dense tensor")
        header.append([name, _NAMES[t.dtype], list(t.shape), offset])
        items.append((offset, t))
        offset += -(-t.numel() * t.element_size() // ALIGN) * ALIGN
    head = json.dumps(header, allow_nan=False).encode("utf-8")
    start = -(-(16 + len(head)) // ALIGN) * ALIGN
    tmp = Path(f"{path}.part")
    with open(tmp, "wb") as f:
        f.write(MAGIC + struct.pack("<Q", len(head)) + head)
        for off, t in items:
            f.seek(start + off)
            f.write(_raw(t))
        f.truncate(start + offset)
    os.replace(tmp, path)
    return start + offset


def _raw(t: torch.Tensor) -> memoryview:
    if t.numel() == 0:
        return memoryview(b"")
    if t.dtype == torch.bfloat16:  # numpy has no bfloat16: send its bits
        t = t.view(torch.int16)
    return memoryview(t.numpy()).cast("B")


def read_tensors(path: str | os.PathLike, expected: Mapping[str, tuple[torch.Size, bool]]
                 ) -> dict[str, torch.Tensor]:
    """The tensors of a prediction file, checked against ``expected`` = ``{name: (shape,
    required)}`` (parameters are required, buffers optional). Evaluator side: every problem
    is a :class:`TransferError` naming it; bytes are only read for names that passed."""
    path = Path(path)
    size = path.stat().st_size
    need = [n for n, (_, required) in expected.items() if required]
    limit = 4096 + MAX_HEADER + sum((math.prod(s) * 8 + ALIGN) for s, _ in expected.values())
    if size > limit:
        raise TransferError(f"the prediction is {size} bytes, more than the model's "
                            f"{len(expected)} tensors can hold")
    with open(path, "rb") as f:
        start = f.read(16)
        if len(start) != 16 or start[:8] != MAGIC:
            raise TransferError("the prediction file is not in the transfer format")
        (n,) = struct.unpack("<Q", start[8:])
        if n > MAX_HEADER or 16 + n > size:
            raise TransferError("the prediction file has a bad header length")
        try:
            header = json.loads(f.read(n).decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError, RecursionError, ValueError):
            raise TransferError("the prediction file has an unreadable header") from None
    entries = _check_header(header, expected, size, need)
    data = np.memmap(path, dtype=np.uint8, mode="r") if size else np.zeros(0, np.uint8)
    base = -(-(16 + n) // ALIGN) * ALIGN
    out = {}
    for name, dtype, shape, offset in entries:
        count = math.prod(shape)
        nbytes = count * torch.empty((), dtype=dtype).element_size()
        lo = base + offset
        if offset < 0 or lo + nbytes > size:
            raise TransferError(f"the bytes of {name} lie outside the prediction file")
        raw = np.array(data[lo:lo + nbytes])  # a private copy; the file is deleted after
        t = torch.from_numpy(raw)
        if dtype == torch.bfloat16:
            t = t.view(torch.int16).view(torch.bfloat16)
        else:
            t = t.view(dtype)
        out[name] = t.reshape(shape)
    del data
    return out


def check_tensors(tensors: Mapping[str, torch.Tensor],
                  expected: Mapping[str, tuple[torch.Size, bool]]) -> dict[str, torch.Tensor]:
    """The same checks as :func:`read_tensors`, for tensors that never left this process
    (the ``--in-process`` debugging mode)."""
    header = []
    for name, t in tensors.items():
        if not isinstance(name, str) or not isinstance(t, torch.Tensor) or t.dtype not in _NAMES:
            raise TransferError(f"prediction for {str(name)[:80]} cannot be loaded "
                                f"({type(t).__name__})")
        header.append([name, _NAMES[t.dtype], list(t.shape), 0])
    need = [n for n, (_, required) in expected.items() if required]
    entries = _check_header(header, expected, 0, need)
    return {name: tensors[name] for name, *_ in entries}


def _names(items: list[str], k: int = 3) -> str:
    more = f" (and {len(items) - k} more)" if len(items) > k else ""
    return ", ".join(items[:k]) + more


def _check_header(header: object, expected: Mapping[str, tuple[torch.Size, bool]], size: int,
                  need: list[str]) -> list[tuple[str, torch.dtype, tuple[int, ...], int]]:
    if not isinstance(header, list):
        raise TransferError("the prediction file has a bad header")
    entries, seen, unknown, wrong = [], set(), [], []
    for item in header:
        if (not isinstance(item, list) or len(item) != 4 or not isinstance(item[0], str)
                or item[1] not in DTYPES or not isinstance(item[2], list)
                or not all(isinstance(d, int) and d >= 0 for d in item[2])
                or not isinstance(item[3], int)):
            raise TransferError("the prediction file has a malformed header entry")
        name, dtype, shape, offset = item
        if name in seen:
            raise TransferError(f"the prediction names {name[:80]} twice")
        seen.add(name)
        if name not in expected:
            unknown.append(name[:80])
            continue
        if tuple(shape) != tuple(expected[name][0]):
            wrong.append(f"{name} {tuple(shape)} (expected {tuple(expected[name][0])})")
            continue
        entries.append((name, DTYPES[dtype], tuple(shape), offset))
    missing = [n for n in need if n not in seen]
    if missing:
        raise TransferError(f"prediction misses {len(missing)} of {len(need)} parameters: "
                            + _names(missing))
    if unknown:
        raise TransferError(f"prediction has {len(unknown)} unknown keys: " + _names(unknown))
    if wrong:
        raise TransferError(f"{len(wrong)} predicted tensors have the wrong shape: "
                            + _names(wrong))
    return entries
