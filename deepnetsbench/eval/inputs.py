"""What a run evaluates: the architectures of a split and the test images, opened and
verified once per run.

The split file and the image cache are checked by content when they are opened (the split
file is hashed, the images' content hash is recomputed from the pixels read), and the
results record those computed hashes, never what a manifest or a cache attribute claims.
"""

from __future__ import annotations

import json
import os
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import torch

from deepnetsbench.errors import BenchError
from deepnetsbench.results import SplitInfo

__all__ = ["MOCK_ARCHS", "MOCK_IMAGES", "MOCK_WIDTH", "ArchSuite", "EvalImages", "open_images",
           "open_mock", "open_split", "select_indices"]

MOCK_ARCHS = 4
MOCK_WIDTH = 8
MOCK_IMAGES = 128


@dataclass
class ArchSuite:
    """The architectures of a run: an indexable split plus what the results record about it."""

    records: Any  # DeepNets1M or any sequence of ArchRecord
    info: SplitInfo
    transform: Callable[[Any], Any] | None = None  # e.g. the mock's narrowing
    extra: dict[str, Any] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.records)

    def __getitem__(self, i: int) -> Any:
        rec = self.records[i]
        return self.transform(rec) if self.transform else rec


class EvalImages:
    """The test images, converted to normalized tensors once and reused for every network
    (a memory-mapped dataset, ImageNet, stays uint8 and is converted batch by batch).

    On CUDA the tensors live on the GPU when they fit (else in pinned host memory), so no
    architecture pays for decoding, normalizing or re-uploading them. They stay in the
    evaluator's process: the method's worker never sees them."""

    def __init__(self, dataset: Any, image_size: int, device: torch.device,
                 limit: int | None = None, indices: Sequence[int] | None = None):
        self.dataset = dataset
        self.name = dataset.name
        self.classes = list(getattr(dataset, "class_names", None) or dataset.classes)
        self.num_classes = len(dataset.classes)
        self.image_size = int(image_size)
        self.device = device
        n_test = len(dataset.test_y)
        if limit is not None and not 1 <= limit <= n_test:
            raise BenchError(f"--eval-images {limit} is outside 1..{n_test}",
                             f"pass at most {n_test} (the dataset's test set)")
        if indices is not None and limit is not None:
            raise BenchError("--eval-images cannot narrow a fixed image subset",
                             "drop --eval-images")
        self.limit = limit
        self.indices = None if indices is None else [int(i) for i in indices]  # a fixed subset
        self.num_test = n_test
        self.eval_images = len(self.indices) if self.indices is not None else (limit or n_test)
        self._cache: OrderedDict[int, tuple[torch.Tensor, torch.Tensor]] = OrderedDict()

    @property
    def content_sha256(self) -> str:
        return self.dataset.content_sha256

    def tensors(self, image_size: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """(x, y) at ``image_size`` (default the protocol's), prepared on first use."""
        size = int(image_size or self.image_size)
        if size in self._cache:
            self._cache.move_to_end(size)
            return self._cache[size]
        if getattr(self.dataset, "mapped", False):  # ImageNet: uint8, converted per batch
            x, y = self.dataset.raw_test(image_size=size, limit=self.limit, indices=self.indices)
            y = _place(y, self.device)
        else:
            x, y = self.dataset.test_tensors(image_size=size, channels=3, limit=self.limit,
                                             indices=self.indices)
            x, y = _place(x, self.device), _place(y, self.device)
        self._cache[size] = (x, y)
        while len(self._cache) > 2:  # a predefined model at another size keeps both
            self._cache.popitem(last=False)
        return x, y


def _place(t: torch.Tensor, device: torch.device) -> torch.Tensor:
    if device.type != "cuda":
        return t
    free, _ = torch.cuda.mem_get_info(device)
    if t.nbytes <= min(4 << 30, free // 4):
        return t.to(device)
    return t.pin_memory()


def select_indices(n: int, archs: Sequence[int] | None = None,
                   limit: int | None = None) -> list[int]:
    """The architecture indices a run evaluates, in order (``--arch``, then ``--limit``)."""
    if archs:
        bad = [i for i in archs if not 0 <= int(i) < n]
        if bad:
            raise BenchError(f"--arch {bad[0]} is outside the split (0..{n - 1})",
                             f"pick indices between 0 and {n - 1}")
        chosen = list(dict.fromkeys(int(i) for i in archs))
    else:
        chosen = list(range(n))
    if limit is not None:
        if limit < 1:
            raise BenchError(f"--limit must be positive, got {limit}", "pass --limit 1 or more")
        chosen = chosen[:limit]
    return chosen


def open_split(split: str, root: str | os.PathLike | None = None,
               verify: bool | str = True, release: str | None = None) -> ArchSuite:
    """The published (or locally built) split ``split`` of ``release`` (None: the default
    generated release; e.g. "ppuda": the converted official files), pinned by the sha256
    computed from its file (``verify="full"`` hashes even the 1M-architecture TRAIN file)."""
    from deepnetsbench.splits.dataset import DeepNets1M

    ds = DeepNets1M(split=split, root=root, verify="full" if verify == "full" else True,
                    release=release)
    man = ds.manifest or {}
    info = SplitInfo(name=split, sha256=str(ds.sha256 or ""),
                     generator_version=str(man.get("generator_version") or ""),
                     num_items=len(ds))
    return ArchSuite(ds, info, extra=release_extra(ds))


def release_extra(ds: Any) -> dict[str, Any]:
    """What a run on a named release records about its split (``protocol.extra``): the
    release and the md5 of the official files it was converted from, read from the split
    file's header (the leaderboard checks them against the registered ones,
    deepnetsbench/leaderboard/ppuda.py)."""
    if not getattr(ds, "release", None):
        return {}
    extra: dict[str, Any] = {"release": str(ds.release)}
    try:
        md5 = json.loads(str(ds.attrs.get("source_md5") or "{}"))
    except ValueError:
        md5 = {}
    if isinstance(md5, dict) and md5:
        extra["source_md5"] = {str(k): str(v) for k, v in sorted(md5.items())}
    return extra


def open_images(dataset: str, root: str | os.PathLike | None = None):
    """(ImageDataset, evaluation image size) of a named dataset from the local cache, its
    content hash recomputed from the pixels read."""
    try:
        from deepnetsbench.data import load_dataset
    except ImportError as err:
        raise BenchError("image datasets are not available in this install",
                         "update deepnets-bench (deepnetsbench.data.load_dataset)") from err
    ds = load_dataset(dataset, root=root, verify=True)
    return ds, _eval_size(ds.name, ds.image_size)


def _eval_size(name: str, native: int) -> int:
    from deepnetsbench.data.registry import DATASETS, canonical_name

    info = DATASETS.get(canonical_name(name))
    return int(info.eval_size) if info is not None else int(native)


def open_mock(split: str, dataset: str = "cifar10", root: str | os.PathLike | None = None,
              seed: int = 0):
    """A tiny run: the first 4 architectures of ``split`` at width C=8 (32 for WIDE) and 128
    synthetic test images with the dataset's class count and resolution. Seconds on a CPU."""
    from deepnetsbench.data.registry import DATASETS, canonical_name
    from deepnetsbench.data.synthetic import synthetic_dataset
    from deepnetsbench.paths import data_root
    from deepnetsbench.splits.dataset import DeepNets1M, generate_split

    if split == "predefined":
        raise BenchError("--mock runs on generated splits only (predefined models are large)",
                         "use --split test (or val/wide/deep/dense/bnfree) with --mock")
    mock_root = data_root(root) / "mock"
    try:
        ds = DeepNets1M(split=split, root=mock_root)
        if len(ds) != MOCK_ARCHS:
            raise BenchError("stale mock split")
    except BenchError:
        generate_split(split, MOCK_ARCHS, root=mock_root)
        ds = DeepNets1M(split=split, root=mock_root)
    width = MOCK_WIDTH * (4 if split == "wide" else 1)
    info = SplitInfo(name=split, sha256=str(ds.sha256), num_items=len(ds),
                     generator_version=str(ds.manifest.get("generator_version") or ""))
    suite = ArchSuite(ds, info, transform=_narrow(width), extra={"mock": True, "mock_width": width})
    known = DATASETS.get(canonical_name(dataset))
    classes, size = (known.num_classes, known.eval_size) if known else (10, 32)
    images = synthetic_dataset(classes, size, n_train=2 * MOCK_IMAGES, n_test=MOCK_IMAGES, seed=seed)
    return suite, images, size


def _narrow(width: int) -> Callable[[Any], Any]:
    def narrow(rec: Any) -> Any:
        if rec.spec is None:
            return rec
        from deepnetsbench.graph.derive import count_params

        spec = rec.spec.with_args(C=width)
        return replace(rec, spec=spec, num_params=int(count_params(spec, 10, 32)),
                       _arrays=None, _graph=None)
    return narrow
