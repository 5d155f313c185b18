"""Training images for the GHNs: loading, the official train/validation split, augmentation
and the shuffled batch stream.

As in the released training code:

* the last tenth of the training images is held out for validation (CIFAR-10: the first
  45,000 train, the last 5,000 validate); ImageNet-like datasets (224 px) hold out the last
  50 images of every class instead;
* CIFAR-style augmentation: zero-padding by 4 pixels, a random crop back to size and a
  random horizontal flip, on the 0..1 images, then normalisation (so the padding is black,
  not the mean); ImageNet-style: ``RandomResizedCrop`` to the training size, a horizontal
  flip and ``ColorJitter(0.4, 0.4, 0.4, 0.2)``;
* an epoch is one pass over the shuffled training images in batches of 64, the last batch
  smaller (704 steps on CIFAR-10).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from deepnetsbench.errors import BenchError

__all__ = ["load_images", "split_train_val", "random_crop_flip", "imagenet_augment",
           "ImageStream", "is_imagenet_like"]

#: Images held out per class on ImageNet-like datasets (the official validation images).
VAL_PER_CLASS = 50


def load_images(data: str, root: str | None = None, synthetic_images: int = 2000):
    """An :class:`~deepnetsbench.data.ImageDataset` from an archive path, a cached dataset
    name, or ``"synthetic"``."""
    from deepnetsbench.data import load_archive, load_dataset, synthetic_dataset

    if data == "synthetic":
        return synthetic_dataset(n_train=synthetic_images, n_test=200, seed=0)
    path = Path(data).expanduser()
    if path.exists():
        return load_archive(path, root=root, progress=False)
    return load_dataset(data, root=root)


def is_imagenet_like(image_size: int) -> bool:
    """Large images take the ImageNet recipe (augmentation, hold-out, label smoothing)."""
    return image_size >= 128


def split_train_val(n: int, val: int | None = None, labels: np.ndarray | None = None
                    ) -> tuple[np.ndarray, np.ndarray]:
    """``(train, validation)`` indices: the last ``val`` images (default: the last tenth) are
    held out; with ``labels``, the last :data:`VAL_PER_CLASS` images of every class instead."""
    if labels is not None:
        labels = np.asarray(labels)
        held = np.zeros(n, dtype=bool)
        for c in np.unique(labels):
            held[np.flatnonzero(labels == c)[-VAL_PER_CLASS:]] = True
        return np.flatnonzero(~held), np.flatnonzero(held)
    val = n // 10 if val is None else int(val)
    if not 0 <= val < n:
        raise BenchError(f"cannot hold out {val} of {n} training images",
                         "lower --opt val_images")
    return np.arange(n - val), np.arange(n - val, n)


def random_crop_flip(x: torch.Tensor, pad: int = 4, generator: torch.Generator | None = None
                     ) -> torch.Tensor:
    """CIFAR augmentation on a batch of 0..1 images: zero-pad, random crop back to size,
    random horizontal flip (one gather for the whole batch)."""
    b, c, h, w = x.shape
    dev = x.device
    xp = F.pad(x, (pad, pad, pad, pad))
    dy = torch.randint(0, 2 * pad + 1, (b,), generator=generator).to(dev)
    dx = torch.randint(0, 2 * pad + 1, (b,), generator=generator).to(dev)
    flip = (torch.rand(b, generator=generator) < 0.5).to(dev)
    rows = dy[:, None] + torch.arange(h, device=dev)[None]  # [b, h]
    cols = dx[:, None] + torch.arange(w, device=dev)[None]  # [b, w]
    cols = torch.where(flip[:, None], cols.flip(1), cols)
    bi = torch.arange(b, device=dev)[:, None, None, None]
    ci = torch.arange(c, device=dev)[None, :, None, None]
    return xp[bi, ci, rows[:, None, :, None], cols[:, None, None, :]]


def imagenet_augment(x: torch.Tensor, size: int, generator: torch.Generator | None = None
                     ) -> torch.Tensor:
    """ImageNet augmentation of 0..1 images, image by image (the transforms draw from the
    global RNG, forked and seeded from ``generator``): RandomResizedCrop(size), horizontal
    flip, ColorJitter(0.4, 0.4, 0.4, 0.2)."""
    from torchvision.transforms import v2

    tf = v2.Compose([v2.RandomResizedCrop(size, antialias=True), v2.RandomHorizontalFlip(),
                     v2.ColorJitter(0.4, 0.4, 0.4, 0.2)])
    seed = int(torch.randint(0, 2**62, (1,), generator=generator))
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return torch.stack([tf(img) for img in x])


class ImageStream:
    """Shuffled batches of the training images (uint8 kept, converted per batch); an epoch
    ends with the remainder batch, as a DataLoader without ``drop_last``."""

    def __init__(self, ds, indices: np.ndarray, batch_size: int, image_size: int,
                 device: torch.device, augment: bool, seed: int):
        self.ds, self.indices = ds, indices
        self.batch_size, self.image_size, self.device = batch_size, image_size, device
        self.augment = augment
        self.imagenet = is_imagenet_like(image_size)
        self.rng = np.random.default_rng([seed, 17])
        self.gen = torch.Generator().manual_seed(seed + 17)
        self.order = self.rng.permutation(indices)
        self.pos = 0
        self.epoch = 0
        mean, std = ds.stats(3)
        self.mean = torch.tensor(mean, dtype=torch.float32).view(1, 3, 1, 1)
        self.std = torch.tensor(std, dtype=torch.float32).view(1, 3, 1, 1)

    def pixels(self, idx: np.ndarray, resize: bool = True) -> tuple[torch.Tensor, torch.Tensor]:
        """Images ``idx`` as 0..1 float tensors (at the training size unless ``resize`` is
        False), and their labels."""
        x = torch.from_numpy(np.ascontiguousarray(self.ds.train_x[idx])).permute(0, 3, 1, 2)
        if x.shape[1] == 1:
            x = x.expand(-1, 3, -1, -1)
        x = x.float().div_(255.0)
        if resize and x.shape[-1] != self.image_size:
            x = F.interpolate(x, size=(self.image_size, self.image_size), mode="bilinear",
                              antialias=True, align_corners=False)
        return x, torch.from_numpy(self.ds.train_y[idx])

    def normalise(self, x: torch.Tensor) -> torch.Tensor:
        return (x - self.mean) / self.std

    def convert(self, idx: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
        """Validation batches: no augmentation."""
        x, y = self.pixels(idx)
        return (self.normalise(x).to(self.device, non_blocking=True),
                y.to(self.device, non_blocking=True))

    def next(self) -> tuple[torch.Tensor, torch.Tensor]:
        if self.pos >= len(self.order):
            self.order = self.rng.permutation(self.indices)
            self.pos = 0
            self.epoch += 1
        idx = self.order[self.pos:self.pos + self.batch_size]
        self.pos += len(idx)
        crops = self.augment and self.imagenet  # RandomResizedCrop sets the size itself
        x, y = self.pixels(idx, resize=not crops)
        if self.augment:
            x = (imagenet_augment(x, self.image_size, self.gen) if self.imagenet
                 else random_crop_flip(x, generator=self.gen))
        return (self.normalise(x).to(self.device, non_blocking=True),
                y.to(self.device, non_blocking=True))

    def state(self) -> dict:
        return {"rng": self.rng.bit_generator.state, "gen": self.gen.get_state(),
                "order": torch.from_numpy(self.order.copy()), "pos": self.pos,
                "epoch": self.epoch}

    def load_state(self, st: dict) -> None:
        self.rng.bit_generator.state = st["rng"]
        self.gen.set_state(st["gen"])
        self.order = st["order"].numpy().copy()
        self.pos, self.epoch = int(st["pos"]), int(st["epoch"])
