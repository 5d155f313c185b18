"""The shape encoding of GHN nodes: vocabularies, look-up rules and the embedding module.

A node's input feature is its type embedding plus the embedding of its tensor shape
``(out, in, kh, kw)``: two small tables (channels, spatial sizes) of ``hid / 4`` dims each,
looked up for the four dimensions and concatenated. The vocabularies and the rules that map
any size onto them are those of the released GHN-2 (docs/baselines.md, "Shape encoding"),
so a released checkpoint reads the same rows we do:

* channels: ``{1, 3, num_classes}``, 8..56 step 8, 64..4080 step 16, 4096..8192 step 32;
* spatial sizes: the odd numbers below ``max(12, S)`` plus 14 and 16 (``S`` = the decoder's
  kernel grid, 11 on CIFAR-10, 16 on ImageNet);
* a size in the vocabulary is its own row; 4-7 channels read the row of 8 and a 2-pixel
  kernel the row of 3; any other size below the largest reads its nearest neighbour (ties:
  the smaller one); sizes at or above the largest read the last row;
* nodes without a shape (input, sum, concat, glob_avg, msa, cse) read an extra final row of
  each table.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import nn

__all__ = ["channel_vocab", "spatial_vocab", "ShapeCodes", "ShapeEncoder", "to_4d"]


def channel_vocab(num_classes: int) -> np.ndarray:
    """The sorted channel vocabulary (391 values for 10 or 1,000 classes)."""
    values = ([1, 3, int(num_classes)] + list(range(8, 64, 8)) + list(range(64, 4096, 16))
              + list(range(4096, 8192 + 1, 32)))
    return np.unique(values)


def spatial_vocab(max_kernel: int) -> np.ndarray:
    """The sorted vocabulary of kernel sizes for a decoder grid of ``max_kernel``."""
    return np.unique(list(range(1, max(12, int(max_kernel)), 2)) + [14, 16])


def _nearest_table(vocab: np.ndarray, snap: dict[int, int]) -> np.ndarray:
    """``table[v]`` = row of size ``v`` for ``0 <= v <= vocab[-1]``: exact, snapped, else the
    nearest vocabulary value (the smaller on ties); 0 -> the last row (never a real size)."""
    top = int(vocab[-1])
    sizes = np.arange(top + 1)
    pos = np.searchsorted(vocab, sizes)  # first vocab value >= size
    hi = np.minimum(pos, len(vocab) - 1)
    lo = np.maximum(pos - 1, 0)
    take_lo = (sizes - vocab[lo]) <= (vocab[hi] - sizes)
    table = np.where(take_lo, lo, hi)
    exact = vocab[hi] == sizes
    table[exact] = hi[exact]
    for size, target in snap.items():
        table[size] = int(np.flatnonzero(vocab == target)[0])
    table[0] = len(vocab) - 1
    return table.astype(np.int64)


class ShapeCodes:
    """Size -> table row, vectorised (numpy), for one ``(num_classes, kernel grid)``."""

    def __init__(self, num_classes: int, max_kernel: int):
        self.channels = channel_vocab(num_classes)
        self.spatial = spatial_vocab(max_kernel)
        self._ch = _nearest_table(self.channels, {c: 8 for c in range(4, 8)})
        self._sp = _nearest_table(self.spatial, {2: 3})

    @property
    def num_channels(self) -> int:
        return len(self.channels)

    @property
    def num_spatial(self) -> int:
        return len(self.spatial)

    def encode(self, shapes: np.ndarray) -> np.ndarray:
        """``[N, 4]`` 4-D shapes (rows of -1: no shape) -> ``[N, 4]`` table rows."""
        shapes = np.asarray(shapes, dtype=np.int64).reshape(-1, 4)
        none = shapes[:, 0] < 0
        ch = self._ch[np.clip(shapes[:, :2], 0, len(self._ch) - 1)]
        sp = self._sp[np.clip(shapes[:, 2:], 0, len(self._sp) - 1)]
        out = np.concatenate([ch, sp], axis=1)
        out[none] = (self.num_channels, self.num_channels, self.num_spatial, self.num_spatial)
        return out


def to_4d(shape: tuple[int, ...]) -> tuple[int, int, int, int]:
    """A tensor shape as the ``(out, in, kh, kw)`` the encoder reads: ``(n,) -> (n, 1, 1, 1)``,
    ``(a, b) -> (a, b, 1, 1)``, a token table ``(1, T, D)`` -> ``(1, D, sqrt T, sqrt T)``
    (rounded down), other 3-D ``(a, b, c) -> (a, b, c, 1)``; dims past the 4th are dropped."""
    s = tuple(int(d) for d in shape)
    if len(s) == 0:
        return (1, 1, 1, 1)
    if len(s) == 1:
        return (s[0], 1, 1, 1)
    if len(s) == 2:
        return (s[0], s[1], 1, 1)
    if len(s) == 3:
        if s[0] == 1 and min(s[1:]) > 1:
            side = math.isqrt(s[1])
            return (1, s[2], side, side)
        return (s[0], s[1], s[2], 1)
    return s[:4]  # type: ignore[return-value]


class ShapeEncoder(nn.Module):
    """The two tables; :meth:`forward` takes the rows from :meth:`ShapeCodes.encode`.
    (Attribute names are those of the released checkpoints' state dicts.)"""

    def __init__(self, hid: int, num_classes: int, max_kernel: int):
        super().__init__()
        self.codes = ShapeCodes(num_classes, max_kernel)
        q = hid // 4
        self.embed_spatial = nn.Embedding(self.codes.num_spatial + 1, q)
        self.embed_channel = nn.Embedding(self.codes.num_channels + 1, q)

    def forward(self, rows: torch.Tensor) -> torch.Tensor:
        return torch.cat([self.embed_channel(rows[:, 0]), self.embed_channel(rows[:, 1]),
                          self.embed_spatial(rows[:, 2]), self.embed_spatial(rows[:, 3])], dim=1)
