"""Sampling episode suites from image datasets.

Intra-dataset (``episodes-intra``): the source's classes are shuffled once and cut into
disjoint train/val/test *class pools* (default 70/10/20 %, i.e. 140/20/40 for
Tiny-ImageNet). A training episode draws ``ways`` classes of the train pool, and per class
``shots`` support and ``queries`` query images from the source's train split (disjoint).
A val/test episode draws ``ways`` classes of its pool, ``shots`` support images per class
from the source's train split, and is scored on the source's *test* images of those
classes (all of them, or ``test_queries`` per class).

Inter-dataset (``episodes-inter``): training (and validation) episodes as above, from the
source's classes (pools default 90/10/0 %); each test episode is a whole other dataset:
all its classes in its own label order, ``shots`` support images per class sampled from
its train split, and its full official test set as query.

Every random choice comes from ``numpy.random.default_rng(SeedSequence([seed, ...]))`` with
the split and episode index in the key, so a seed gives the same indices (and, written with
``track_times=False``, the same bytes) on any machine, and adding episodes never changes the
earlier ones.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from deepnetsbench.episodes.suite import (
    KINDS,
    SplitEpisodes,
    default_suite_path,
    write_suite,
)
from deepnetsbench.episodes.targets import target_info
from deepnetsbench.errors import BenchError

if TYPE_CHECKING:
    from deepnetsbench.data.images import ImageDataset

__all__ = ["EpisodeConfig", "build_suite", "class_pools", "default_pools"]

_SPLIT_KEY = {"train": 0, "val": 1, "test": 2}
_POOL_KEY = 7


@dataclass
class EpisodeConfig:
    """How a suite is sampled (recorded in the file's ``config`` attribute)."""

    kind: str = "episodes-intra"
    ways: int = 10  # classes per source episode
    shots: int = 50  # support images per class (source and inter test episodes)
    queries: int = 50  # query images per class of training episodes (source train split)
    test_queries: int | None = None  # query images per class of intra val/test (None: all)
    train_episodes: int = 1000
    val_episodes: int = 20
    test_episodes: int = 100  # intra test episodes
    inter_episodes: int = 5  # inter: test episodes (support samples) per target dataset
    pools: tuple[int, int, int] | None = None  # class pool sizes; None: the kind's default
    image_size: int = 32
    seed: int = 0
    targets: tuple[str, ...] = ("convnet4", "resnet18")
    extra: dict = field(default_factory=dict)

    def validate(self) -> None:
        def bad(what: str, fix: str) -> BenchError:
            return BenchError(f"invalid episode config: {what}", fix)

        if self.kind not in KINDS:
            raise bad(f"suite {self.kind!r}", f"use one of {', '.join(KINDS)}")
        if self.ways < 2:
            raise bad(f"ways={self.ways}", "use at least 2 classes per episode (--ways)")
        if self.shots < 1 or self.queries < 1:
            raise bad("shots and queries must be >= 1", "pass --shots/--queries of 1 or more")
        if self.test_queries is not None and self.test_queries < 1:
            raise bad("test_queries must be >= 1", "omit it to use every test image")
        for name in ("train_episodes", "val_episodes", "test_episodes", "inter_episodes"):
            if getattr(self, name) < 0:
                raise bad(f"{name} < 0", "pass a count of 0 or more")
        if self.image_size < 8:
            raise bad(f"image_size={self.image_size}", "use --image-size 16 or more")
        if not self.targets:
            raise bad("no target architecture", "pass --targets convnet4,resnet18")
        for t in self.targets:
            target_info(t)


def default_pools(num_classes: int, kind: str) -> tuple[int, int, int]:
    """Train/val/test class pool sizes: 70/10/20 % (intra) or 90/10/0 % (inter)."""
    if kind == "episodes-intra":
        val, test = round(0.1 * num_classes), round(0.2 * num_classes)
    else:
        val, test = round(0.1 * num_classes), 0
    return num_classes - val - test, val, test


def class_pools(num_classes: int, sizes: Sequence[int], seed: int) -> dict[str, list[int]]:
    """Disjoint train/val/test pools of class indices (a seeded shuffle, then cut)."""
    if len(sizes) != 3 or min(sizes) < 0 or sum(sizes) > num_classes:
        raise BenchError(f"class pools {list(sizes)} do not fit {num_classes} classes",
                         f"pass three sizes summing to at most {num_classes}, e.g. --pools "
                         f"{','.join(map(str, default_pools(num_classes, 'episodes-intra')))}")
    order = np.random.default_rng(np.random.SeedSequence([seed, _POOL_KEY])).permutation(
        num_classes)
    a, b, c = (int(s) for s in sizes)
    pools = {"train": order[:a], "val": order[a:a + b], "test": order[a + b:a + b + c]}
    return {k: sorted(int(i) for i in v) for k, v in pools.items()}


def _rng(*key: int) -> np.random.Generator:
    return np.random.default_rng(np.random.SeedSequence([int(k) for k in key]))


def _by_class(y: np.ndarray, num_classes: int) -> list[np.ndarray]:
    order = np.argsort(y, kind="stable")
    counts = np.bincount(y, minlength=num_classes)
    return np.split(order, np.cumsum(counts)[:-1])


def _check_counts(ds: ImageDataset, by_class: list[np.ndarray], classes: Sequence[int],
                  need: int, split: str, option: str) -> None:
    short = [(ds.classes[c], len(by_class[c])) for c in classes if len(by_class[c]) < need]
    if short:
        name, have = short[0]
        raise BenchError(
            f"{ds.name}: class {name!r} has {have} {split} images, episodes need {need}"
            + (f" ({len(short)} classes are short)" if len(short) > 1 else ""),
            f"lower {option}")


def _source_split(cfg: EpisodeConfig, ds: ImageDataset, ds_index: int, split: str,
                  pool: list[int], count: int, train_by: list[np.ndarray],
                  test_by: list[np.ndarray]) -> SplitEpisodes:
    eps = SplitEpisodes.empty()
    if count == 0:
        return eps
    if len(pool) < cfg.ways:
        raise BenchError(f"the {split} class pool has {len(pool)} classes, fewer than "
                         f"--ways {cfg.ways}", "use larger --pools or fewer --ways")
    training = split == "train"
    per_class = cfg.shots + (cfg.queries if training else 0)
    _check_counts(ds, train_by, pool, per_class, "train",
                  "--shots/--queries" if training else "--shots")
    if not training and cfg.test_queries is not None:
        _check_counts(ds, test_by, pool, cfg.test_queries, "test", "--test-queries")
    for i in range(count):
        rng = _rng(cfg.seed, _SPLIT_KEY[split], i)
        classes = rng.choice(np.asarray(pool), cfg.ways, replace=False)
        support, query = [], []
        for c in classes:
            pick = rng.choice(train_by[c], per_class, replace=False)
            support.append(pick[:cfg.shots])
            if training:
                query.append(pick[cfg.shots:])
            else:
                q = test_by[c]
                if cfg.test_queries is not None:
                    q = rng.choice(q, cfg.test_queries, replace=False)
                query.append(q)
        if not training and sum(len(q) for q in query) == 0:
            raise BenchError(f"{ds.name} has no test images of the {split} classes",
                             "use a source dataset with a labelled test split")
        # Shuffled, so that any batch (BatchNorm statistics!) and any prefix mixes classes.
        eps.dataset.append(ds_index)
        eps.query_split.append(0 if training else 1)
        eps.classes.append(classes)
        eps.support.append(rng.permutation(np.concatenate(support)))
        eps.query.append(rng.permutation(np.concatenate(query)))
    return eps


def _dataset_meta(ds: ImageDataset, role: str) -> dict:
    return {
        "name": ds.name, "role": role, "content_sha256": ds.content_sha256,
        "num_classes": ds.num_classes, "classes": list(ds.classes),
        "class_names": list(ds.class_names or ds.classes), "n_train": int(len(ds.train_y)),
        "n_test": int(len(ds.test_y)), "channels": ds.channels, "native_size": ds.image_size,
    }


def build_suite(config: EpisodeConfig, source: ImageDataset,
                targets: Sequence[ImageDataset] = (),
                out: str | os.PathLike | None = None,
                root: str | os.PathLike | None = None) -> Path:
    """Sample the suite described by ``config`` and write it to ``out`` (default
    ``<root>/episodes/episodes_{intra,inter}.h5``); returns the path.

    ``source`` provides the training (and, intra, the evaluation) episodes; ``targets`` are
    the whole datasets of the inter-dataset test split (ignored for intra suites)."""
    config.validate()
    cfg = config
    intra = cfg.kind == "episodes-intra"
    if not intra and not targets:
        raise BenchError("an inter-dataset suite needs test datasets",
                         "pass --dataset cifar10 --dataset mnist ... (cached or NAME=ARCHIVE)")
    targets = [] if intra else list(targets)
    names = [source.name] + [d.name for d in targets]
    if len(set(names)) != len(names):
        raise BenchError(f"dataset names must be distinct, got {names}",
                         "pass each dataset once, and none equal to the source")
    sizes = cfg.pools or default_pools(source.num_classes, cfg.kind)
    pools = class_pools(source.num_classes, sizes, cfg.seed)
    if intra and cfg.test_episodes and not pools["test"]:
        raise BenchError("the test class pool is empty", "give it classes with --pools")
    train_by = _by_class(source.train_y, source.num_classes)
    test_by = _by_class(source.test_y, source.num_classes)
    splits = {
        split: _source_split(cfg, source, 0, split, pools[split], count, train_by, test_by)
        for split, count in (("train", cfg.train_episodes), ("val", cfg.val_episodes),
                             ("test", cfg.test_episodes if intra else 0))
    }
    if not intra:
        test = SplitEpisodes.empty()
        for j, ds in enumerate(targets, start=1):
            by = _by_class(ds.train_y, ds.num_classes)
            classes = list(range(ds.num_classes))
            _check_counts(ds, by, classes, cfg.shots, "train", "--shots")
            if len(ds.test_y) == 0:
                raise BenchError(f"{ds.name} has no test images",
                                 "use a dataset with a labelled test split")
            for i in range(cfg.inter_episodes):
                rng = _rng(cfg.seed, _SPLIT_KEY["test"], j, i)
                support = np.concatenate([rng.choice(by[c], cfg.shots, replace=False)
                                          for c in classes])
                test.dataset.append(j)
                test.query_split.append(1)
                test.classes.append(np.asarray(classes))
                test.support.append(rng.permutation(support))
                # The full official test set, in the dataset's own order.
                test.query.append(np.arange(len(ds.test_y)))
        splits["test"] = test
    record = asdict(cfg)
    record["pools"] = list(sizes)
    record["targets"] = list(cfg.targets)
    attrs = {
        "kind": cfg.kind,
        "config": record,
        "datasets": [_dataset_meta(source, "source")]
                    + [_dataset_meta(d, "test") for d in targets],
        "pools": pools,
        "targets": list(cfg.targets),
        "image_size": int(cfg.image_size),
        "channels": 3,
    }
    path = Path(out) if out is not None else default_suite_path(cfg.kind, root)
    write_suite(path, attrs, splits)
    return path
