"""The ``deepnets1m-lite`` suite: a fixed subset of every evaluation split, scored on a fixed
class-balanced subset of the test images, so that a CPU user can run a whole board.

The subset is a rule, not a list typed in (rule :data:`RULE`, docs/protocol.md *Lite*):

* architectures: every 5th of TEST, VAL and WIDE (indices 0, 5, 10, ...), every 2nd of
  DEEP, DENSE and BNFREE (0, 2, 4, ...), and PREDEFINED indices 0 and 1 (ResNet-50 and the
  ViT-style net); the TRAIN split has no lite subset;
* images: the first ``1000 // C`` test images of each of the dataset's ``C`` classes, in the
  dataset's test order (CIFAR-10: 100 per class, 1,000 images), scored in that order, so
  that every batch of 64 mixes classes as the full test set does (BatchNorm uses the
  statistics of each batch).

A lite run is the deepnets1m evaluator on the full split file with these architecture and
image indices: records keep their split index (and so the architecture's seed), so a lite
record and a full record of one network differ only by the images. The results say
``suite = "deepnets1m-lite"`` and record the rule and both index lists in
``protocol.extra.lite``; the leaderboard ranks lite entries on their own boards and
checks them against the ``deepnets1m-lite/<split>`` release pins (:func:`describe_lite`).
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from deepnetsbench.errors import BenchError

__all__ = ["EVAL_SPLITS", "IMAGES", "LITE", "PREDEFINED", "RULE", "STEPS", "LiteSubset",
           "arch_indices", "arch_rule", "check_lite", "describe_lite", "image_indices",
           "indices_sha256", "lite_board", "open_lite", "register_lite", "release_name",
           "select_archs"]

LITE = "deepnets1m-lite"
RULE = "lite-1"
#: The evaluation splits, in the order ``--split all`` runs them.
EVAL_SPLITS = ("test", "val", "wide", "deep", "dense", "bnfree", "predefined")
#: Every k-th architecture of these splits, from index 0.
STEPS = {"test": 5, "val": 5, "wide": 5, "deep": 2, "dense": 2, "bnfree": 2}
#: PREDEFINED: ResNet-50 and the ViT-style DeepNets net (the paper's two predefined columns).
PREDEFINED = {0: "resnet50", 1: "deepnets_vit"}
#: Test images in all (``IMAGES // num_classes`` of each class).
IMAGES = 1000


def _check_split(split: str) -> None:
    if split not in EVAL_SPLITS:
        raise BenchError(f"the {LITE} suite has no {split!r} split",
                         f"pick one of {', '.join(EVAL_SPLITS)} (or --split all)")


def arch_indices(split: str, num_items: int) -> list[int]:
    """The lite architectures of ``split`` (a split file of ``num_items`` architectures)."""
    _check_split(split)
    if split == "predefined":
        if num_items < len(PREDEFINED):
            raise BenchError(f"the predefined split has {num_items} models, the lite suite "
                             f"takes indices {sorted(PREDEFINED)}",
                             "use the released predefined split")
        return sorted(PREDEFINED)
    return list(range(0, int(num_items), STEPS[split]))


def arch_rule(split: str) -> str:
    """The architecture rule of ``split`` in words (recorded with the indices)."""
    _check_split(split)
    if split == "predefined":
        return "predefined indices 0 and 1 (resnet50, deepnets_vit)"
    k = STEPS[split]
    return f"every {'2nd' if k == 2 else f'{k}th'} architecture of the split, from index 0"


def image_indices(labels: Sequence[int] | np.ndarray, num_classes: int,
                  total: int = IMAGES) -> list[int]:
    """The lite test images: the first ``total // num_classes`` of each class in the order
    of ``labels`` (the dataset's test labels), returned in that order."""
    y = np.asarray(labels, dtype=np.int64)
    per = int(total) // int(num_classes)
    if per < 1:
        raise BenchError(f"the {LITE} suite takes {total} images, fewer than the dataset's "
                         f"{num_classes} classes", "use a dataset with at most "
                         f"{total} classes")
    chosen = []
    for c in range(int(num_classes)):
        where = np.flatnonzero(y == c)
        if len(where) < per:
            raise BenchError(f"class {c} has {len(where)} test images, the {LITE} suite takes "
                             f"{per} per class", "use the dataset's official test set")
        chosen.append(where[:per])
    return sorted(int(i) for i in np.concatenate(chosen))


def indices_sha256(indices: Sequence[int]) -> str:
    """sha256 of an index list (compact JSON, in the given order): what the release pins."""
    text = json.dumps([int(i) for i in indices], separators=(",", ":"))
    return hashlib.sha256(text.encode("ascii")).hexdigest()


@dataclass(frozen=True)
class LiteSubset:
    """The lite architectures and images of one split x dataset."""

    split: str
    split_items: int
    archs: tuple[int, ...]
    images: tuple[int, ...]
    num_classes: int

    @classmethod
    def of(cls, split: str, split_items: int, labels: Any, num_classes: int) -> LiteSubset:
        return cls(split, int(split_items), tuple(arch_indices(split, split_items)),
                   tuple(image_indices(labels, num_classes)), int(num_classes))

    def record(self) -> dict[str, Any]:
        """``protocol.extra.lite`` of a run (also part of its journal identity)."""
        return {
            "rule": RULE,
            "architectures": {"rule": arch_rule(self.split), "split_items": self.split_items,
                              "count": len(self.archs), "indices": list(self.archs),
                              "indices_sha256": indices_sha256(self.archs)},
            "images": {"rule": f"the first {IMAGES // self.num_classes} test images of each "
                               "class, in the dataset's test order",
                       "per_class": IMAGES // self.num_classes, "count": len(self.images),
                       "indices": list(self.images),
                       "indices_sha256": indices_sha256(self.images)},
        }


# ----------------------------------------------------------------------------- running


def select_archs(cfg: Any, split_items: int) -> list[int]:
    """The architectures a lite run ``cfg`` evaluates: the lite ones, narrowed by ``--arch``
    (which must name lite architectures) and ``--limit``."""
    lite = arch_indices(cfg.split, split_items)
    chosen = lite
    if cfg.archs:
        outside = [int(i) for i in cfg.archs if int(i) not in set(lite)]
        if outside:
            raise BenchError(f"--arch {outside[0]} is not a {LITE} architecture of "
                             f"{cfg.split} ({arch_rule(cfg.split)})",
                             f"pick among {', '.join(map(str, lite[:4]))}, ...; or drop "
                             f"--suite {LITE}")
        chosen = list(dict.fromkeys(int(i) for i in cfg.archs))
    if cfg.limit is not None:
        if cfg.limit < 1:
            raise BenchError(f"--limit must be positive, got {cfg.limit}",
                             "pass --limit 1 or more")
        chosen = chosen[:cfg.limit]
    return chosen


def open_lite(cfg: Any):
    """(ArchSuite, dataset, image size, cfg) of the lite run ``cfg`` (an EvalConfig with
    ``suite = "deepnets1m-lite"``): the full split file with the lite record in its
    ``extra``, the dataset, and ``cfg`` with the lite architectures and images selected."""
    from deepnetsbench.eval.inputs import open_images, open_split

    if cfg.mock:
        raise BenchError(f"--mock runs on the deepnets1m suite, not {LITE}",
                         "drop --suite for the smoke test")
    if cfg.eval_images is not None:
        raise BenchError(f"the {LITE} suite scores a fixed set of {IMAGES} images",
                         "drop --eval-images")
    _check_split(cfg.split)
    suite = open_split(cfg.split, cfg.root, verify="full" if cfg.verify else True,
                       release=cfg.release)
    _check_predefined(suite)
    dataset, size = open_images(cfg.dataset, cfg.root)
    subset = LiteSubset.of(cfg.split, len(suite), dataset.test_y, len(dataset.classes))
    suite.extra = {**suite.extra, "lite": subset.record()}
    cfg = replace(cfg, archs=select_archs(cfg, len(suite)), limit=None,
                  image_indices=list(subset.images))
    return suite, dataset, size, cfg


def _check_predefined(suite: Any) -> None:
    if suite.info.name != "predefined":
        return
    for i, name in PREDEFINED.items():
        if str(suite[i].name) != name:
            raise BenchError(f"predefined index {i} is {suite[i].name!r}, the {LITE} suite "
                             f"expects {name!r}", "use the released predefined split")


def split_outs(method: str, cfg: Any, out: str | None, default_out: Any) -> dict[str, str]:
    """``--split all``: the results file of each evaluation split (``--out`` must then hold
    ``{split}``; default: each split's default name)."""
    if out is not None and "{split}" not in out:
        raise BenchError("--split all writes one results file per split",
                         "put {split} in --out (e.g. --out runs/mine-{split}.json) or drop it")
    return {s: (out.replace("{split}", s) if out is not None else
                default_out(method, s, cfg.dataset, False, cfg.suite, None, cfg.release))
            for s in EVAL_SPLITS}


# ----------------------------------------------------------------------------- releases


def release_name(split: str) -> str:
    """The releases-file name of a lite split: ``deepnets1m-lite/test``."""
    return f"{LITE}/{split}"


def describe_lite(split: str, split_file: str | os.PathLike,
                  datasets: Sequence[Any]) -> tuple[str, dict[str, Any]]:
    """(generator version, pins) of the lite subset of ``split_file`` scored on each of
    ``datasets`` (decoded ImageDatasets): the file's sha256 and size, the architecture
    indices, and per dataset what a complete lite run records (architectures, record names,
    classes, image size, images and their indices)."""
    from deepnetsbench.data.registry import DATASETS, canonical_name
    from deepnetsbench.releases import describe_split_file, names_sha256

    version, full = describe_split_file(split_file, split)
    archs = arch_indices(split, full["num_items"])
    from deepnetsbench.splits.dataset import DeepNets1M

    names = DeepNets1M(split=split, path=split_file, verify=False).record_names()
    per: dict[str, dict[str, Any]] = {}
    for ds in datasets:
        info = DATASETS.get(canonical_name(ds.name))
        images = image_indices(ds.test_y, len(ds.classes))
        per[ds.name] = {"num_items": len(archs), "num_classes": len(ds.classes),
                        "image_size": int(info.eval_size) if info else int(ds.image_size),
                        "eval_images": len(images), "images_sha256": indices_sha256(images),
                        "names_sha256": names_sha256(names[i] for i in archs)}
    pins = {"sha256": full["sha256"], "split_items": full["num_items"], "rule": RULE,
            "indices_sha256": indices_sha256(archs), "datasets": per}
    return version, pins


def register_lite(split: str, split_file: str | os.PathLike, datasets: Sequence[Any],
                  generator_version: str | None = None, path: str | os.PathLike | None = None,
                  replace: bool = False) -> tuple[str, str, dict[str, Any]]:
    """Register the lite subset of a released split (:func:`describe_lite`) as release
    ``deepnets1m-lite/<split>``; returns (release name, version, pins)."""
    from deepnetsbench.releases import register_split

    version, pins = describe_lite(split, split_file, datasets)
    version = generator_version or version
    if not version:
        raise BenchError(f"{split_file} records no generator version", "pass the version")
    register_split(release_name(split), version, pins, path, replace)
    return release_name(split), version, pins


# ----------------------------------------------------------------------------- validation


_BOARD_PINS = ("num_items", "names_sha256", "num_classes", "image_size", "eval_images",
               "images_sha256")


def lite_board(split_pins: Mapping[str, Any], board: dict[str, Any], split: str) -> dict:
    """The board pins of a lite release: the per-dataset pins plus the split's size and the
    architecture indices its rule gives (checked against the pinned hash)."""
    missing = [k for k in _BOARD_PINS if board.get(k) is None]
    if missing:
        raise BenchError(f"the releases file pins no {', '.join(missing)} for "
                         f"{release_name(split)}", "maintainers: re-register it "
                         "(deepnets-bench leaderboard register-split "
                         f"{release_name(split)} VERSION --file F --dataset NAME)")
    items = int(split_pins.get("split_items") or 0)
    archs = arch_indices(split, items) if items else []
    if split_pins.get("rule") != RULE or indices_sha256(archs) != split_pins.get(
            "indices_sha256"):
        raise BenchError(f"the releases file's {release_name(split)} pins another subset rule "
                         f"than this evaluator's {RULE}",
                         "update deepnets-bench, or re-register the lite release")
    return {**board, "split_items": items, "indices": archs}


def check_lite(res: Any, board: Mapping[str, Any] | None, source: str) -> None:
    """A lite results file records the subset it ran (rule, architectures, images) as its
    release pins it; a full results file records no subset. ``board`` is the lite board
    (:func:`lite_board`) of a lite file, None for a full one."""
    from deepnetsbench.results import one_line_text

    lite = (res.protocol.extra or {}).get("lite")
    if board is None:
        if lite is not None:
            raise BenchError(f"{source}: a {LITE} run (protocol.extra.lite: a subset of the "
                             f"architectures and images) labelled suite {res.suite!r}",
                             f"submit the file the evaluator wrote: it says suite {LITE!r} "
                             "and goes on the lite board")
        return
    if not isinstance(lite, dict) or lite.get("rule") != RULE:
        raise BenchError(f"{source}: suite {LITE!r} but protocol.extra.lite does not record "
                         f"the subset of rule {RULE}",
                         f"re-run with eval --suite {LITE} and submit the file it wrote")
    archs, images = lite.get("architectures") or {}, lite.get("images") or {}
    if [int(i) for i in archs.get("indices") or []] != list(board["indices"]):
        raise BenchError(f"{source}: the recorded lite architectures are not the {LITE} "
                         f"subset of {one_line_text(res.split.name)}",
                         f"re-run with eval --suite {LITE} (do not pass another subset)")
    recorded = [int(i) for i in images.get("indices") or []]
    if len(recorded) != board["eval_images"] or indices_sha256(recorded) != board[
            "images_sha256"] or res.protocol.eval_images != len(recorded):
        raise BenchError(f"{source}: the recorded lite images are not the {LITE} images of "
                         f"{one_line_text(res.dataset.name)} ({IMAGES // board['num_classes']}"
                         " per class)", f"re-run with eval --suite {LITE} on the official "
                         "test set")
