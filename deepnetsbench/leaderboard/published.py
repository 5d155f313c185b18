"""The paper's per-architecture results as leaderboard entries of status ``published``.

The official release publishes, per evaluation split and architecture index, the CIFAR-10
top-1 of GHN-2, GHN-1 and the MLP hypernetwork with predicted parameters, and of the same
network trained for 50 epochs with SGD (``data/results_cifar10.json``, layout in
docs/submitting.md). :func:`import_published` turns that file into one entry per method
and split (TEST, WIDE, DEEP, DENSE, BN-FREE, PREDEFINED; VAL is left out: its GHN figures
were measured on the 5,000 held-out training images, not the test set) on the ``ppuda``
release, so that a method evaluated on the converted official files (``deepnets-bench eval
--release ppuda``) is ranked against the paper's numbers architecture by architecture.

The records hold what was published and nothing else: top-1 per index, the published
parameter count, no top-5 and no prediction time (the file has neither). The entries are
``published``, never ``reproduced``: a re-run is a results file of its own. The file read
must be the registered one (``ppuda.published_results`` in the releases file: its sha256),
and its parameter counts must be the registered published counts, index by index.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from deepnetsbench.errors import BenchError
from deepnetsbench.leaderboard.ppuda import RELEASE, ppuda_names, published_counts
from deepnetsbench.releases import dataset_release, load_releases, ppuda_release
from deepnetsbench.results import (
    DatasetInfo,
    Environment,
    MethodInfo,
    Protocol,
    Record,
    Results,
    SplitInfo,
    aggregate,
    loads_strict,
    read_bounded,
)

__all__ = ["METHODS", "PAPER", "PAPER_URL", "SPLITS", "import_published", "published_entries",
           "published_results"]

PAPER = "Knyazev et al., Parameter Prediction for Unseen Deep Architectures, NeurIPS 2021"
PAPER_URL = "https://arxiv.org/abs/2110.13100"
CODE_URL = "https://github.com/facebookresearch/ppuda"
#: The splits with published test-set figures (VAL's are on held-out training images).
SPLITS = ("test", "wide", "deep", "dense", "bnfree", "predefined")
DATASET = "cifar10"
_NOT_REPORTED = "not reported"


@dataclass(frozen=True)
class PublishedMethod:
    """One column of the official results file and the method it measured."""

    key: str  # the field of the official record
    name: str
    num_params: int | None  # parameters of the predictor (official checkpoints)
    trained_on: str
    description: str
    training_budget: str  # as the paper states it (the board's Training column)


_GHN_DATA = "DeepNets-1M TRAIN (1M architectures) with the first 45,000 CIFAR-10 training images"
METHODS = (
    PublishedMethod("ghn2_test_acc", "GHN-2", 1_620_764, _GHN_DATA,
                    "GHN-2: gated graph hypernetwork with virtual edges, parameter "
                    "normalisation and meta-batches of 8 architectures; one forward pass "
                    f"predicts every parameter (official checkpoint ghn2_cifar10.pt, {CODE_URL}).",
                    "300 epochs, ~4.9 days on 1 Quadro RTX 6000 GPU (paper)"),
    PublishedMethod("ghn1_test_acc", "GHN-1", 1_620_668, _GHN_DATA,
                    "GHN-1 (Zhang et al., 2019) trained on DeepNets-1M with meta-batches of one "
                    f"architecture (official checkpoint ghn1_cifar10.pt, {CODE_URL}).",
                    "300 epochs, meta-batch 1 (paper; time not stated)"),
    PublishedMethod("mlp_test_acc", "MLP hypernetwork", 1_614_396, _GHN_DATA,
                    "The paper's MLP baseline: GHN-2's node embeddings and decoder without "
                    f"graph message passing (official checkpoint mlp_cifar10.pt, {CODE_URL}).",
                    "300 epochs (paper; time not stated)"),
    PublishedMethod("test_acc", "SGD 50 epochs", None, "each architecture on CIFAR-10 training images",
                    "Not a parameter predictor: every architecture trained from scratch for 50 "
                    "epochs of SGD (momentum 0.9, lr 0.025, weight decay 3e-4, batch 96, cosine "
                    f"schedule), the paper's reference ({CODE_URL}, experiments/sgd/train_net.py).",
                    "50 epochs of SGD per architecture (paper)"),
)
MEASURED = ("top-1 (%) on the 10,000 CIFAR-10 test images, batch 64, BatchNorm with batch "
            "statistics (the official experiments/eval_ghn.py)")


def _registered(releases: str | os.PathLike | None) -> dict[str, Any]:
    info = ppuda_release(releases).get("published_results")
    if not isinstance(info, dict) or not info.get("sha256") or not info.get("date"):
        raise BenchError("the releases file's ppuda entry registers no published_results "
                         "{sha256, source, date}",
                         "maintainers: restore deepnetsbench/releases.json from git")
    return info


def read_official(path: str | os.PathLike, releases: str | os.PathLike | None = None
                  ) -> tuple[dict, dict[str, Any]]:
    """(the official results file's content, its registration); the file must be the
    registered one (sha256) and in the official layout."""
    path = Path(path)
    data = read_bounded(path, "official results file")
    info = _registered(releases)
    sha = hashlib.sha256(data).hexdigest()
    if sha != info["sha256"]:
        raise BenchError(f"{path} hashes to {sha[:12]}..., not the registered official "
                         f"results file {info.get('source', '')} ({info['sha256'][:12]}...)",
                         "pass the unmodified data/results_cifar10.json of the official "
                         f"repository ({CODE_URL})")
    content = loads_strict(data, str(path), fix="pass the unmodified official file")
    if not isinstance(content, dict):
        raise BenchError(f"{path} is not {{split: {{index: record}}}}",
                         "pass data/results_cifar10.json of the official repository")
    return content, {**info, "sha256": sha}


def _split_rows(content: dict, split: str, counts: list[int], where: str) -> list[dict]:
    rows = content.get(split)
    if not isinstance(rows, dict):
        raise BenchError(f"{where} has no {split!r} split", "pass the official file")
    want = [str(i) for i in range(len(counts))]
    if sorted(rows, key=lambda k: (len(k), k)) != want:
        raise BenchError(f"{where}: split {split!r} has {len(rows)} records, the release "
                         f"{len(counts)} (indices 0..{len(counts) - 1})", "pass the official file")
    out = []
    for i, count in enumerate(counts):
        row = rows[str(i)]
        have = row.get("params") if isinstance(row, dict) else None
        if have != count:
            raise BenchError(f"{where}: {split}[{i}] has {have!r} parameters, the published "
                             f"counts {count}", "the figures must belong to the published "
                             "architectures")
        out.append(row)
    return out


def published_results(content: dict, info: dict[str, Any],
                      releases: str | os.PathLike | None = None) -> list[Results]:
    """One :class:`Results` per split and method from the official file's ``content``."""
    counts_sha, counts = published_counts(releases)
    data_sha = _dataset_sha(releases)
    when = datetime.fromisoformat(str(info["date"])).replace(tzinfo=UTC)
    where = str(info.get("source") or "the official results file")
    out = []
    for split in SPLITS:
        rows = _split_rows(content, split, counts[split], where)
        names = ppuda_names(split, len(rows))
        for method in METHODS:
            records = []
            for i, (row, name) in enumerate(zip(rows, names)):
                top1 = row.get(method.key)
                if not isinstance(top1, int | float) or isinstance(top1, bool):
                    raise BenchError(f"{where}: {split}[{i}] has no number {method.key}",
                                     "pass the official file")
                records.append(Record(index=i, name=name, status="ok", top1=float(top1),
                                      num_params=int(row["params"])))
            out.append(_results(split, method, records, counts_sha, data_sha, info, when))
    return out


def _dataset_sha(releases: str | os.PathLike | None) -> str:
    """The registered CIFAR-10 test set (the figures were measured on the same images)."""
    shas = [sha for sha in load_releases(releases)["datasets"].get(DATASET, {})
            if dataset_release(DATASET, sha, releases)]
    if len(shas) != 1:
        raise BenchError(f"the releases file registers {len(shas)} {DATASET} datasets, "
                         "expected one", "maintainers: restore deepnetsbench/releases.json")
    return shas[0]


def _results(split: str, method: PublishedMethod, records: list[Record], counts_sha: str,
             data_sha: str, info: dict[str, Any], when: datetime) -> Results:
    published = {"paper": PAPER, "paper_url": PAPER_URL, "code": CODE_URL,
                 "source": str(info.get("source") or ""), "source_sha256": info["sha256"],
                 "field": method.key, "measured": MEASURED,
                 "not_published": ["top5", "predict_time_s", "flops"]}
    protocol = Protocol(version="paper", split=split, dataset=DATASET, num_classes=10,
                        image_size=32, batch_size=64, bn_mode="batch", eval_images=10_000,
                        device=_NOT_REPORTED, extra={"published": published})
    nr = _NOT_REPORTED
    return Results(
        suite="deepnets1m", protocol=protocol,
        split=SplitInfo(name=split, sha256=counts_sha, generator_version=RELEASE,
                        num_items=len(records)),
        dataset=DatasetInfo(name=DATASET, content_sha256=data_sha, num_test=10_000),
        method=MethodInfo(name=method.name, version="paper", url=PAPER_URL, paper=PAPER_URL,
                          num_params=method.num_params, trained_on=method.trained_on,
                          training_budget=method.training_budget,
                          description=method.description),
        environment=Environment(deepnets_bench="n/a (published figures)", python=nr, torch=nr,
                                torchvision=nr, device=nr, cpu=nr, platform=nr),
        started_at=when, finished_at=when, records=records, aggregates=aggregate(records),
        notes=(f"Published figures of {PAPER} ({PAPER_URL}): field {method.key} of "
               f"{published['source']}, imported as published, not re-run here. Dates are "
               "those of the published file."))


def published_entries(path: str | os.PathLike, releases: str | os.PathLike | None = None):
    """``[(file name, Entry)]`` of the published entries made from the official file."""
    from deepnetsbench.leaderboard.entries import (
        Entry,
        check_results,
        content_sha256,
        entry_filename,
    )

    content, info = read_official(path, releases)
    out = []
    when = datetime.fromisoformat(str(info["date"])).replace(tzinfo=UTC)
    for res in published_results(content, info, releases):
        check_results(res, releases, source=f"published {res.method.name} on {res.split.name}",
                      published=True)
        sha = content_sha256(res)
        out.append((entry_filename(res, sha), Entry(content_sha256=sha, submitted_at=when,
                                                    status="published", results=res)))
    return out


def import_published(path: str | os.PathLike, board: str | os.PathLike,
                     releases: str | os.PathLike | None = None, render: bool = False
                     ) -> tuple[list[Path], list[Path]]:
    """(Re)generate the published entries of ``board`` from the official results file:
    the board's earlier published entries are replaced, every other entry is kept. Returns
    (written, removed) paths. Deterministic: the same file gives byte-identical entries."""
    from deepnetsbench.leaderboard.entries import (
        board_lock,
        entries_dir,
        find_duplicate,
        load_entries,
    )
    from deepnetsbench.results import atomic_write_text

    made = published_entries(path, releases)
    with board_lock(board):
        existing = load_entries(board)
        old = [p for p, e in existing if e.status == "published"]
        others = [(p, e) for p, e in existing if e.status != "published"]
        for _, entry in made:
            why = find_duplicate(entry.results, entry.content_sha256, others)
            if why:
                raise BenchError(f"published {entry.results.method.name} on "
                                 f"{entry.results.split.name}: {why}",
                                 "rename the submitted method (method.name/version) first")
        d = entries_dir(board)
        written = []
        for name, entry in made:
            target = d / name
            atomic_write_text(target, json.dumps(entry.model_dump(mode="json"), indent=2) + "\n")
            written.append(target)
        removed = [p for p in old if p not in written]
        for p in removed:
            p.unlink()
        if render:
            from deepnetsbench.leaderboard.render import render as render_board

            render_board(board, releases)
    return written, removed
