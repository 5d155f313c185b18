"""The image datasets the suite knows: sizes, normalization statistics, where they come from.

Mean/std are the usual published per-channel statistics of each training set (0..1 scale);
every method sees images normalized with them, so they are part of the protocol.
"""

from __future__ import annotations

from dataclasses import dataclass

from deepnetsbench.errors import BenchError


@dataclass(frozen=True)
class DatasetInfo:
    """What the suite needs to know about one image dataset."""

    name: str
    num_classes: int
    image_size: int | None  # native side length; None when images vary (ImageNet)
    channels: int
    mean: tuple[float, ...]
    std: tuple[float, ...]
    eval_size: int  # side length images are evaluated at
    fetch: str  # "torchvision", "hf" or "local"
    source: str  # torchvision class name, HF dataset id, or "" for local-only
    n_train: int
    n_test: int
    license: str
    homepage: str
    aliases: tuple[str, ...] = ()
    # sha256 of the suite's archive of this dataset (train/<class>/*, test/<class>/*), checked
    # when it is fetched from a mirror ($DEEPNETS_BENCH_URL_IMAGES); "" when there is none.
    archive_sha256: str = ""


DATASETS: dict[str, DatasetInfo] = {
    info.name: info
    for info in [
        DatasetInfo(
            "cifar10", 10, 32, 3,
            (0.49139968, 0.48215827, 0.44653124), (0.24703233, 0.24348505, 0.26158768),
            32, "torchvision", "CIFAR10", 50_000, 10_000,
            "research use (Krizhevsky, 2009)", "https://www.cs.toronto.edu/~kriz/cifar.html",
            ("cifar-10", "cifar_10"),
            "45b041e867f5a40f79bfde38d3dd1fd511103d50068c1afecf6445e25234d4db",
        ),
        DatasetInfo(
            "cifar100", 100, 32, 3,
            (0.5071, 0.4865, 0.4409), (0.2673, 0.2564, 0.2762),
            32, "torchvision", "CIFAR100", 50_000, 10_000,
            "research use (Krizhevsky, 2009)", "https://www.cs.toronto.edu/~kriz/cifar.html",
            ("cifar-100", "cifar_100"),
        ),
        DatasetInfo(
            "mnist", 10, 28, 1, (0.1307,), (0.3081,),
            32, "torchvision", "MNIST", 60_000, 10_000,
            "CC BY-SA 3.0 (LeCun, Cortes, Burges)", "http://yann.lecun.com/exdb/mnist/",
            (), "71f1eb5061c707c2a9cf1466f55c778abf2b116477ac3a642affbf999cd98a5c",
        ),
        DatasetInfo(
            "fashion-mnist", 10, 28, 1, (0.2860,), (0.3530,),
            32, "torchvision", "FashionMNIST", 60_000, 10_000,
            "MIT (Zalando Research)", "https://github.com/zalandoresearch/fashion-mnist",
            ("fashion_mnist", "fashionmnist", "fmnist"),
            "4cb9deb7eb356ed55e36578906dfaa4993e6832025f1a40552c752823a1a603a",
        ),
        DatasetInfo(
            "svhn", 10, 32, 3,
            (0.4377, 0.4438, 0.4728), (0.1980, 0.2010, 0.1970),
            32, "torchvision", "SVHN", 73_257, 26_032,
            "non-commercial use (Netzer et al., 2011)", "http://ufldl.stanford.edu/housenumbers/",
        ),
        DatasetInfo(
            "tinyimagenet", 200, 32, 3,
            (0.4802, 0.4481, 0.3975), (0.2770, 0.2691, 0.2821),
            32, "hf", "zh-plus/tiny-imagenet", 100_000, 10_000,
            "non-commercial research (Stanford CS231n, ImageNet terms)",
            "http://cs231n.stanford.edu/tiny-imagenet-200.zip",
            ("tinyimagenet32", "tiny-imagenet", "tiny_imagenet", "tiny-imagenet-200"),
            "c2b08dce6e727a3e183e030a4af6f5139a035bc9ea4c8958202de53ea597dd4b",
        ),
        DatasetInfo(
            "imagenet", 1000, None, 3,
            (0.485, 0.456, 0.406), (0.229, 0.224, 0.225),
            224, "local", "", 1_281_167, 50_000,
            "ImageNet terms of access (non-commercial research)", "https://image-net.org/",
            ("imagenet1k", "ilsvrc2012", "imagenet-1k"),
        ),
    ]
}

_ALIASES = {alias: info.name for info in DATASETS.values() for alias in (info.name, *info.aliases)}


def canonical_name(name: str) -> str:
    """The registry name for ``name`` or one of its aliases; other names are returned as given
    (lower-cased), so that custom datasets loaded from an archive keep their own name."""
    key = name.strip().lower()
    return _ALIASES.get(key, key)


def dataset_info(name: str) -> DatasetInfo:
    """The :class:`DatasetInfo` for ``name`` (aliases accepted) or a BenchError."""
    key = canonical_name(name)
    if key not in DATASETS:
        raise BenchError(
            f"unknown dataset {name!r}",
            f"use one of {', '.join(DATASETS)}, or load your own with "
            f"`deepnets-bench download --dataset {name} --from ARCHIVE`",
        )
    return DATASETS[key]
