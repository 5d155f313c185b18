"""Small learnable synthetic images, for tests and the evaluator's ``--mock`` run.

Each class has its own mean colour and an oriented stripe pattern; every image adds a
random phase, a random brightness shift and pixel noise. A linear classifier (and any small
CNN) separates the classes well above chance, so a pipeline bug that breaks learning shows up,
while generating thousands of images takes milliseconds and needs no download.
"""

from __future__ import annotations

import numpy as np

from deepnetsbench.data.images import ImageDataset, compute_stats


def synthetic_dataset(
    num_classes: int = 10,
    image_size: int = 32,
    n_train: int = 1000,
    n_test: int = 200,
    channels: int = 3,
    seed: int = 0,
    noise: float = 0.15,
) -> ImageDataset:
    """A deterministic (for a ``seed``) learnable dataset named ``synthetic``.

    Labels are balanced (``i % num_classes`` shuffled); ``noise`` is the pixel noise std on
    the 0..1 scale (raise it to make the task harder).
    """
    if num_classes < 2 or image_size < 4 or channels not in (1, 3) or n_train < 0 or n_test < 0:
        raise ValueError(
            "need num_classes >= 2, image_size >= 4, channels in (1, 3), n_train/n_test >= 0"
        )
    rng = np.random.default_rng(seed)
    colours = rng.uniform(0.25, 0.75, size=(num_classes, channels))
    angles = rng.permutation(num_classes) * np.pi / num_classes
    freqs = rng.uniform(1.5, 4.0, size=num_classes) * 2 * np.pi / image_size
    yy, xx = np.mgrid[0:image_size, 0:image_size].astype(np.float64)

    def make(n: int) -> tuple[np.ndarray, np.ndarray]:
        y = rng.permutation(np.arange(n) % num_classes).astype(np.int64)
        phase = rng.uniform(0, 2 * np.pi, size=(n, 1, 1))
        a, f = angles[y][:, None, None], freqs[y][:, None, None]
        stripes = np.sin(f * (xx * np.cos(a) + yy * np.sin(a)) + phase)  # [n, S, S]
        img = colours[y][:, None, None, :] + 0.2 * stripes[..., None]
        img = img + rng.uniform(-0.05, 0.05, size=(n, 1, 1, 1))
        img = img + rng.normal(0.0, noise, size=img.shape)
        return np.clip(np.rint(img * 255), 0, 255).astype(np.uint8), y

    train_x, train_y = make(n_train)
    test_x, test_y = make(n_test)
    mean, std = compute_stats(train_x if n_train else test_x)
    return ImageDataset(
        name="synthetic",
        classes=[f"class{i}" for i in range(num_classes)],
        train_x=train_x,
        train_y=train_y,
        test_x=test_x,
        test_y=test_y,
        mean=mean,
        std=std,
        source=f"synthetic(seed={seed})",
        extra={"seed": seed, "noise": noise},
    )
