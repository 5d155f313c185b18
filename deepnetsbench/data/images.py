"""An image classification dataset held in memory as uint8 arrays.

Datasets stay uint8 NHWC (the same bytes whatever the source) and are turned into
normalized float tensors only when a method asks, at the size and channel count it wants;
``content_sha256`` fingerprints the exact pixels and labels so results can name them.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    import torch

# ITU-R BT.601 luma weights, the ones Pillow uses for RGB -> L.
_LUMA = (0.299, 0.587, 0.114)
_CHUNK = 2048  # images converted per step, to bound the float32 peak memory


@dataclass(eq=False)
class ImageDataset:
    """Train and test images (uint8 ``[N, H, W, C]``) with int64 labels and class names.

    ``classes`` are the class ids in label order (folder names for archives);
    ``class_names`` are human-readable names in the same order (default: the ids).
    ``mean``/``std`` are per channel on the 0..1 scale and normalize both splits.
    """

    name: str
    classes: list[str]
    train_x: np.ndarray
    train_y: np.ndarray
    test_x: np.ndarray
    test_y: np.ndarray
    mean: tuple[float, ...]
    std: tuple[float, ...]
    class_names: list[str] | None = None
    source: str = ""  # where the images came from (archive path, torchvision, ...)
    extra: dict = field(default_factory=dict)  # free-form provenance
    #: The images are memory-mapped from the cache (ImageNet): convert them batch by batch
    #: (:meth:`iter_batches`, :meth:`raw_test`), never the whole split at once.
    mapped: bool = False

    def __post_init__(self) -> None:
        self.classes = [str(c) for c in self.classes]
        self.class_names = [str(c) for c in (self.class_names or self.classes)]
        if len(self.class_names) != len(self.classes):
            raise ValueError(f"{len(self.class_names)} class names for {len(self.classes)} classes")
        self.train_x, self.train_y = self._check_split("train", self.train_x, self.train_y)
        self.test_x, self.test_y = self._check_split("test", self.test_x, self.test_y)
        if self.train_x.shape[1:] != self.test_x.shape[1:] and len(self.train_x) and len(self.test_x):
            raise ValueError(
                f"train images are {self.train_x.shape[1:]}, test images {self.test_x.shape[1:]}"
            )
        self.mean = tuple(float(m) for m in self.mean)
        self.std = tuple(float(s) for s in self.std)
        if len(self.mean) != self.channels or len(self.std) != self.channels:
            raise ValueError(f"mean/std need {self.channels} values, got {self.mean}, {self.std}")
        if min(self.std) <= 0:
            raise ValueError(f"std must be positive, got {self.std}")

    def _check_split(self, split: str, x: np.ndarray, y: Sequence[int]) -> tuple[np.ndarray, np.ndarray]:
        x = np.asarray(x)
        if x.ndim == 3:  # grey images without a channel axis
            x = x[..., None]
        if x.dtype != np.uint8 or x.ndim != 4:
            raise ValueError(f"{split}_x must be uint8 [N, H, W, C], got {x.dtype} {x.shape}")
        y = np.asarray(y, dtype=np.int64).reshape(-1)
        if len(y) != len(x):
            raise ValueError(f"{split}: {len(x)} images but {len(y)} labels")
        if len(y) and (y.min() < 0 or y.max() >= len(self.classes)):
            raise ValueError(f"{split} labels must lie in [0, {len(self.classes)})")
        return x, y

    # -- shape ------------------------------------------------------------------------------
    @property
    def num_classes(self) -> int:
        return len(self.classes)

    @property
    def image_size(self) -> int:
        """Native side length (the height; images are square in every registered dataset)."""
        x = self.test_x if len(self.test_x) else self.train_x
        return int(x.shape[1])

    @property
    def channels(self) -> int:
        x = self.test_x if len(self.test_x) else self.train_x
        return int(x.shape[3])

    def __len__(self) -> int:
        return len(self.train_x) + len(self.test_x)

    def __repr__(self) -> str:
        return (
            f"ImageDataset({self.name!r}, classes={self.num_classes}, train={len(self.train_x)}, "
            f"test={len(self.test_x)}, size={self.image_size}, channels={self.channels})"
        )

    # -- identity ---------------------------------------------------------------------------
    @cached_property
    def content_sha256(self) -> str:
        """sha256 of the exact test and train pixels and labels (cached; arrays are read-only
        by convention once a dataset is built)."""
        h = hashlib.sha256(b"deepnets-bench/images/v1\n")
        for key, arr in (
            ("test_x", self.test_x),
            ("test_y", self.test_y.astype("<i8", copy=False)),
            ("train_x", self.train_x),
            ("train_y", self.train_y.astype("<i8", copy=False)),
        ):
            arr = np.ascontiguousarray(arr)
            h.update(f"{key}:{arr.dtype.str}:{list(arr.shape)}\n".encode())
            flat = arr.reshape(-1).view(np.uint8)
            step = 1 << 24
            for i in range(0, len(flat), step):
                h.update(flat[i : i + step].data)
        return h.hexdigest()

    # -- tensors ----------------------------------------------------------------------------
    def split_arrays(self, split: str) -> tuple[np.ndarray, np.ndarray]:
        """(images, labels) of ``"train"`` or ``"test"``."""
        if split == "train":
            return self.train_x, self.train_y
        if split == "test":
            return self.test_x, self.test_y
        raise ValueError(f"split must be 'train' or 'test', got {split!r}")

    def stats(self, channels: int | None = None) -> tuple[tuple[float, ...], tuple[float, ...]]:
        """mean/std for ``channels`` output channels.

        Grey -> RGB repeats the grey statistics. RGB -> grey uses the luma-weighted mean and
        the luma-weighted std (exact for the mean, an upper bound for the std that is close
        for natural images, whose channels are strongly correlated).
        """
        channels = channels or self.channels
        if channels == self.channels:
            return self.mean, self.std
        if self.channels == 1 and channels == 3:
            return self.mean * 3, self.std * 3
        if self.channels == 3 and channels == 1:
            return (
                (sum(w * m for w, m in zip(_LUMA, self.mean)),),
                (sum(w * s for w, s in zip(_LUMA, self.std)),),
            )
        raise ValueError(f"cannot convert {self.channels} channels to {channels}")

    def tensors(
        self,
        split: str,
        image_size: int | None = None,
        channels: int = 3,
        limit: int | None = None,
        indices: Sequence[int] | np.ndarray | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Normalized float32 images ``[N, channels, S, S]`` and int64 labels ``[N]``.

        ``indices`` picks images (after which ``limit`` keeps the first ``limit``);
        ``image_size`` resizes with antialiased bilinear interpolation when it differs from
        the native size; grey images are repeated to 3 channels (or RGB turned grey).
        """
        import torch

        x, y = self.split_arrays(split)
        if indices is not None:
            idx = np.asarray(indices, dtype=np.int64)
            x, y = x[idx], y[idx]
        if limit is not None:
            x, y = x[:limit], y[:limit]
        size = image_size or (x.shape[1] if len(x) else self.image_size)
        out = torch.empty((len(x), channels, size, size), dtype=torch.float32)
        for i in range(0, len(x), _CHUNK):
            out[i : i + _CHUNK] = self._convert(x[i : i + _CHUNK], size, channels)
        return out, torch.from_numpy(np.ascontiguousarray(y, dtype=np.int64))

    def test_tensors(
        self, image_size: int | None = None, channels: int = 3, limit: int | None = None,
        indices: Sequence[int] | np.ndarray | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Test split as normalized tensors; see :meth:`tensors`."""
        return self.tensors("test", image_size, channels, limit, indices)

    def train_tensors(
        self, image_size: int | None = None, channels: int = 3, limit: int | None = None,
        indices: Sequence[int] | np.ndarray | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Train split as normalized tensors; see :meth:`tensors`."""
        return self.tensors("train", image_size, channels, limit, indices)

    def raw_test(self, image_size: int | None = None, limit: int | None = None,
                 indices: Sequence[int] | np.ndarray | None = None
                 ) -> tuple[RawImages, torch.Tensor]:
        """The test images as :class:`RawImages` (uint8, normalised batch by batch where
        they are used) and int64 labels: what the evaluator takes from a mapped dataset."""
        import torch

        x, y = self.test_x, self.test_y
        if indices is not None:
            idx = np.asarray(indices, dtype=np.int64)
            x, y = x[idx], y[idx]
        if limit is not None:
            x, y = x[:limit], y[:limit]
        mean, std = self.stats(3)
        raw = RawImages(x, mean, std, image_size or self.image_size)
        return raw, torch.from_numpy(np.ascontiguousarray(y, dtype=np.int64))

    def iter_batches(
        self,
        split: str = "test",
        batch_size: int = 256,
        image_size: int | None = None,
        channels: int = 3,
        limit: int | None = None,
        indices: Sequence[int] | np.ndarray | None = None,
    ) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """Yield normalized batches without materializing the whole split as float32
        (ImageNet at 224 px would need 30 GB)."""
        import torch

        x, y = self.split_arrays(split)
        idx = np.arange(len(x)) if indices is None else np.asarray(indices, dtype=np.int64)
        if limit is not None:
            idx = idx[:limit]
        size = image_size or self.image_size
        for i in range(0, len(idx), batch_size):
            sel = idx[i : i + batch_size]
            yield (
                self._convert(x[sel], size, channels),
                torch.from_numpy(np.ascontiguousarray(y[sel], dtype=np.int64)),
            )

    def _convert(self, x: np.ndarray, size: int, channels: int) -> torch.Tensor:
        import torch
        import torch.nn.functional as F

        mean, std = self.stats(channels)
        t = torch.from_numpy(np.array(x, dtype=np.uint8, copy=True)).permute(0, 3, 1, 2)
        t = t.to(torch.float32).div_(255.0)
        if t.shape[1] == 1 and channels == 3:
            t = t.expand(-1, 3, -1, -1)
        elif t.shape[1] == 3 and channels == 1:
            t = (t * torch.tensor(_LUMA).view(1, 3, 1, 1)).sum(1, keepdim=True)
        if t.shape[-2:] != (size, size):
            t = F.interpolate(t, size=(size, size), mode="bilinear", antialias=True, align_corners=False)
        m = torch.tensor(mean, dtype=torch.float32).view(1, -1, 1, 1)
        s = torch.tensor(std, dtype=torch.float32).view(1, -1, 1, 1)
        return ((t - m) / s).contiguous()


def compute_stats(x: np.ndarray, chunk_bytes: int = 16 << 20
                  ) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """Per-channel mean/std (0..1 scale) of uint8 ``[N, H, W, C]`` images: exact integer
    histograms over chunks of about ``chunk_bytes``, so memory stays small at any size."""
    from deepnetsbench.data.cache import stats_from_sums

    c = x.shape[3]
    per_image = max(1, int(np.prod(x.shape[1:])))
    step = max(1, chunk_bytes // per_image)
    levels = np.arange(256, dtype=np.int64)
    total = np.zeros(c, np.int64)
    total_sq = np.zeros(c, np.int64)
    for i in range(0, len(x), step):
        flat = np.ascontiguousarray(x[i : i + step]).reshape(-1, c)
        for ch in range(c):
            hist = np.bincount(flat[:, ch], minlength=256).astype(np.int64)
            total[ch] += int(hist @ levels)
            total_sq[ch] += int(hist @ (levels * levels))
    return stats_from_sums(total, total_sq, len(x) * per_image // c)


class RawImages:
    """uint8 ``[N, H, W, C]`` images (typically memory-mapped) that are normalised, turned to
    3 channels and resized batch by batch on the device they are scored on, so that a split
    never exists as one float32 tensor (ImageNet's 50,000 validation images: 30 GB). The
    conversion is :meth:`ImageDataset.tensors`' own, applied per batch."""

    def __init__(self, x: np.ndarray, mean: Sequence[float], std: Sequence[float],
                 image_size: int):
        self.x = x
        self.mean = tuple(float(m) for m in mean)
        self.std = tuple(float(s) for s in std)
        self.image_size = int(image_size)
        self.channels = len(self.mean)

    @property
    def shape(self) -> tuple[int, int, int, int]:
        return (len(self.x), self.channels, self.image_size, self.image_size)

    def __len__(self) -> int:
        return len(self.x)

    def batch(self, start: int, stop: int, device) -> torch.Tensor:
        """Images ``start:stop`` as normalised float32 NCHW on ``device`` (channels-last
        memory, the layout the evaluator feeds)."""
        import torch
        import torch.nn.functional as F

        dev = torch.device(device)
        t = torch.from_numpy(np.ascontiguousarray(self.x[start:stop], dtype=np.uint8))
        if dev.type == "cuda":
            t = t.pin_memory()
        t = t.to(dev, non_blocking=True).permute(0, 3, 1, 2).to(torch.float32).div_(255.0)
        if t.shape[1] == 1 and self.channels == 3:
            t = t.expand(-1, 3, -1, -1)
        if t.shape[-2:] != (self.image_size, self.image_size):
            t = F.interpolate(t, size=(self.image_size,) * 2, mode="bilinear", antialias=True,
                              align_corners=False)
        m = torch.tensor(self.mean, dtype=torch.float32, device=dev).view(1, -1, 1, 1)
        s = torch.tensor(self.std, dtype=torch.float32, device=dev).view(1, -1, 1, 1)
        return ((t - m) / s).contiguous(memory_format=torch.channels_last)
