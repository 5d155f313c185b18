"""How a run on the ``ppuda`` release (the official DeepNets-1M files, converted) is pinned.

A generated release is pinned by the sha256 of its split file. The converted official files
cannot be pinned that way before a maintainer has converted them (the files are not
redistributed, and this repository has no copy), so a ``ppuda`` board is defined by its
*source*, the way :func:`deepnetsbench.releases.ppuda_release` registers it:

* the release and split names (``split.generator_version == "ppuda"``, ``split.name``);
* the published parameter count of every architecture (``ppuda.published_params``: the
  packaged counts, their sha256 registered), which the conversion is checked against and
  which every record must carry: the evaluated networks are the published ones, index by
  index;
* the record names of the converted files (``test/00042``; ``resnet50``, ``deepnets_vit``).

Two kinds of results live on such a board:

* **published entries** (the paper's figures, :mod:`deepnetsbench.leaderboard.published`):
  ``split.sha256`` is the sha256 of the published counts, and ``protocol.extra.published``
  says where the figures come from;
* **a user's run** (``deepnets-bench eval --release ppuda``): ``split.sha256`` is the hash of
  the converted file the evaluator computed, and ``protocol.extra.source_md5`` the md5 of the
  official files it was converted from (recorded by the evaluator from the file's header).
  The official evaluation HDF5's md5 must be the one the download script publishes. Once a
  maintainer registers the converted file (``leaderboard register-split test ppuda --file
  F``), its sha256 must match as well.

All of them share one table per split and dataset (:func:`board_split_id`), so a new method
is ranked against the paper's per-architecture numbers with the paired test.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

from deepnetsbench.errors import BenchError
from deepnetsbench.releases import names_sha256, ppuda_release, split_release
from deepnetsbench.results import Results, is_published, one_line_text

__all__ = ["EVAL_SOURCE", "PREDEFINED_NAMES", "RELEASE", "board_split_id", "check_ppuda_params",
           "is_ppuda", "ppuda_names", "ppuda_split_pins", "published_counts"]

RELEASE = "ppuda"
#: The official file every evaluation split is converted from (its md5 is registered).
EVAL_SOURCE = "deepnets1m_eval.hdf5"
#: The official PREDEFINED split: the CIFAR-adjusted ResNet-50 and the 12-cell ViT-style net.
PREDEFINED_NAMES = ("resnet50", "deepnets_vit")
_PACKAGE = Path(__file__).resolve().parents[1]
_FIX = "maintainers: restore deepnetsbench/releases.json and the published counts from git"


def is_ppuda(res: Results) -> bool:
    """Whether ``res`` ran on (or publishes figures for) the ``ppuda`` release."""
    return res.suite == "deepnets1m" and res.split.generator_version == RELEASE


def board_split_id(res: Results) -> str:
    """What identifies the architectures of a board: the split file's sha256, or the
    release name for ``ppuda`` runs (pinned by their source, see the module doc)."""
    return f"release:{RELEASE}" if is_ppuda(res) else res.split.sha256


def ppuda_names(split: str, n: int) -> list[str]:
    """The record names of the converted ``split`` (``n`` architectures), in index order."""
    if split == "predefined":
        return list(PREDEFINED_NAMES[:n])
    return [f"{split}/{i:05d}" for i in range(n)]


def _counts_file(entry: dict) -> tuple[Path, str]:
    info = entry.get("published_params")
    if not isinstance(info, dict) or not info.get("file") or not info.get("sha256"):
        raise BenchError("the releases file's ppuda entry has no published_params "
                         "{file, sha256}", _FIX)
    path = Path(str(info["file"]))
    return (path if path.is_absolute() else _PACKAGE / path), str(info["sha256"])


def published_counts(releases: str | os.PathLike | None = None) -> tuple[str, dict[str, list[int]]]:
    """(sha256, ``{split: [parameter count by index]}``) of the registered published counts,
    read from their file and checked against the registered hash."""
    path, want = _counts_file(ppuda_release(releases))
    try:
        data = path.read_bytes()
    except OSError as err:
        raise BenchError(f"cannot read the published parameter counts {path} "
                         f"({err.strerror})", _FIX) from None
    sha = hashlib.sha256(data).hexdigest()
    if sha != want:
        raise BenchError(f"the published parameter counts {path} hash to {sha[:12]}..., the "
                         f"releases file registers {want[:12]}...", _FIX)
    try:
        params = json.loads(data)["params"]
        return sha, {str(k): [int(x) for x in v] for k, v in params.items()}
    except (ValueError, KeyError, TypeError):
        raise BenchError(f"{path} is not {{\"params\": {{split: [count, ...]}}}}", _FIX) from None


def ppuda_split_pins(res: Results, releases: str | os.PathLike | None, source: str) -> dict:
    """The pins of the ``ppuda`` split ``res`` ran on (``num_items``, ``names_sha256``),
    after checking how it names the architectures (see the module doc)."""
    name = res.split.name
    sha, counts = published_counts(releases)
    if name not in counts or name in ("val", "train"):
        usable = ", ".join(s for s in counts if s != "val")
        raise BenchError(f"{source}: the {RELEASE} release publishes no {one_line_text(name)!r} "
                         "figures to rank against", f"evaluate on one of {usable}")
    n = len(counts[name])
    pins = {"num_items": n, "names_sha256": names_sha256(ppuda_names(name, n))}
    if is_published(res):
        if res.split.sha256 != sha:
            raise BenchError(f"{source}: published figures pin the {RELEASE} split by the "
                             f"published counts' sha256 {sha[:12]}..., the file says "
                             f"{one_line_text(res.split.sha256, 12)}...",
                             "regenerate the published entries (deepnets-bench leaderboard "
                             "import-published PATH)")
        reg = ppuda_release(releases).get("published_results") or {}
        pub = (res.protocol.extra or {}).get("published")
        if not isinstance(pub, dict) or pub.get("source_sha256") != reg.get("sha256"):
            raise BenchError(f"{source}: published figures must come from the registered "
                             "official results file (protocol.extra.published.source_sha256)",
                             "regenerate the published entries (deepnets-bench leaderboard "
                             "import-published PATH)")
        return pins
    registered = split_release(name, res.split.sha256, releases, RELEASE)
    if registered is None and any(v == RELEASE for v in _versions(name, releases)):
        raise BenchError(f"{source}: the converted {name} file (sha256 "
                         f"{one_line_text(res.split.sha256, 12)}...) is not the registered "
                         f"{RELEASE} file", "convert the unmodified official files with "
                         "`deepnets-bench convert-ppuda DIR` and evaluate again")
    if name != "predefined":  # PREDEFINED is built from code: no official source file
        _check_sources(res, releases, source)
    return pins


def _versions(name: str, releases: str | os.PathLike | None) -> list[str]:
    from deepnetsbench.releases import split_versions

    return list(split_versions(name, releases))


def _check_sources(res: Results, releases: str | os.PathLike | None, source: str) -> None:
    md5s: Any = (res.protocol.extra or {}).get("source_md5")
    want = ppuda_release(releases)["files"].get(EVAL_SOURCE)
    fix = ("convert the unmodified official files (deepnets-bench convert-ppuda DIR) and "
           "submit the file the evaluator wrote")
    if not isinstance(md5s, dict) or EVAL_SOURCE not in md5s:
        raise BenchError(f"{source}: a run on the {RELEASE} release must record the md5 of the "
                         f"official {EVAL_SOURCE} it was converted from "
                         "(protocol.extra.source_md5)", fix)
    if md5s[EVAL_SOURCE] != want:
        raise BenchError(f"{source}: the split was converted from a {EVAL_SOURCE} with md5 "
                         f"{one_line_text(md5s[EVAL_SOURCE], 32)}, the official file's is "
                         f"{want}", fix)


def check_ppuda_params(res: Results, releases: str | os.PathLike | None, source: str) -> None:
    """Every record's ``num_params`` is the published count of its architecture (counts
    defined for 10 classes at 32 px, the CIFAR-10 networks)."""
    p = res.protocol
    if (p.num_classes, p.image_size) != (10, 32):
        raise BenchError(f"{source}: the {RELEASE} boards rank networks of 10 classes at "
                         f"32 px (the published CIFAR-10 figures); this run built "
                         f"{p.num_classes} classes at {p.image_size} px",
                         "evaluate on cifar10 to enter the board (other datasets can be "
                         "evaluated but have no published figures to rank against)")
    _, counts = published_counts(releases)
    want = counts[res.split.name]
    for r in sorted(res.records, key=lambda r: r.index):
        if r.num_params is None:
            raise BenchError(f"{source}: record {r.index} has no num_params, so it cannot be "
                             f"matched with the published architecture",
                             "submit the file the evaluator wrote (it counts every network)")
        if r.num_params != want[r.index]:
            raise BenchError(f"{source}: architecture {r.index} has {r.num_params:,} "
                             f"parameters, the published one {want[r.index]:,}",
                             "evaluate on the converted official files at their published "
                             "widths (deepnets-bench eval --release ppuda)")
