"""Example releases for the leaderboard tests: pins that match ``example_results``."""

from __future__ import annotations

from pathlib import Path

from deepnetsbench.releases import names_sha256, register_dataset, register_split

SPLIT_SHA = "a" * 64
WIDE_SHA = "b" * 64
DATA_SHA = "c" * 64
N = 12  # architectures of the test releases (example_results' default size)

#: What the releases pin for the example dataset (example_results: 10 classes, 32 px, 10k).
DATA_PINS = {"num_classes": 10, "num_test": 10000, "num_train": 50000, "image_size": 32,
             "eval_size": 32, "channels": 3, "classes_sha256": "0" * 64}


def split_pins(sha: str, n: int = N, split: str = "test") -> dict:
    """The pins of an example split release of ``n`` records named like example_results."""
    return {"sha256": sha, "num_items": n,
            "names_sha256": names_sha256(f"{split}/{i:05d}" for i in range(n))}


def episode_pins(sha: str, dataset: str, n: int, eval_images: int = 10000) -> dict:
    """An example episode-suite release: ``n`` test episodes of ``dataset``."""
    return {"sha256": sha, "datasets": {dataset: {
        "num_items": n, "num_classes": 10, "image_size": 32, "eval_images": eval_images,
        "names_sha256": names_sha256(f"test/{i:05d}" for i in range(n))}}}


def register_examples(path: Path, n_test: int = N, n_wide: int = N) -> Path:
    register_split("test", "1", split_pins(SPLIT_SHA, n_test, "test"), path)
    register_split("wide", "1", split_pins(WIDE_SHA, n_wide, "wide"), path)
    register_dataset("cifar10", DATA_SHA, DATA_PINS, path)
    return path
