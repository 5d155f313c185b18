"""Get the DeepNets-1M splits: download the official release and convert it, or build them.

The official files (URLs and md5 sums published with DeepNets-1M) are fetched with resume
and verification through :func:`deepnetsbench.download.download_file`; the base URL is
configurable (``--base-url`` or ``$DEEPNETS_BENCH_URL_DEEPNETS1M``). ``build=True`` (and
``offline=True``) generates the splits with the suite's own sampler instead.
"""

from __future__ import annotations

import tarfile
from pathlib import Path

from deepnetsbench.errors import BenchError
from deepnetsbench.paths import splits_dir

OFFICIAL_URL = "https://dl.fbaipublicfiles.com/deepnets1m/"
OFFICIAL_FILES = {
    "deepnets1m_eval.hdf5": "1f5641329271583ad068f43e1521517e",
    "deepnets1m_meta.tar.gz": "a42b6f513da6bbe493fc16a30d6d4e3e",
    "deepnets1m_search.hdf5": "0a93f4b4e3b729ea71eb383f78ea9b53",
    "deepnets1m_train.hdf5": "90bbe84bb1da0d76cdc06d5ff84fa23d",
}
EVAL_SPLITS = ("val", "test", "wide", "deep", "dense", "bnfree")


def fetch_splits(root=None, build: bool = False, offline: bool = False,
                 base_url: str | None = None, progress: bool = True, train: bool = False,
                 train_num: int | None = None, workers: int = 2,
                 splits: tuple[str, ...] | None = None,
                 checksums: dict[str, str] | None = None) -> list[Path]:
    """Make the splits available under ``root``; returns the split files."""
    from deepnetsbench.splits.build import build_split

    out_dir = splits_dir(root)
    if build or offline:
        wanted = splits or (*EVAL_SPLITS, "predefined", *(("train",) if train else ()))
        paths = []
        for split in wanted:
            num = train_num if split == "train" else None
            paths.append(build_split(split, num, root=root, workers=workers, progress=progress))
        return paths
    return download_official(out_dir, base_url, progress, train=train, checksums=checksums)


def download_official(out_dir: Path, base_url: str | None = None, progress: bool = True,
                      train: bool = False, checksums: dict[str, str] | None = None) -> list[Path]:
    from deepnetsbench.download import base_url as configured_url
    from deepnetsbench.download import download_file

    url = base_url or configured_url("deepnets1m", OFFICIAL_URL)
    url = url if url.endswith("/") else url + "/"
    raw = Path(out_dir) / "official"
    raw.mkdir(parents=True, exist_ok=True)
    names = ["deepnets1m_eval.hdf5", "deepnets1m_meta.tar.gz"]
    if train:
        names.append("deepnets1m_train.hdf5")
    for name in names:
        md5 = (checksums or OFFICIAL_FILES).get(name)
        try:
            download_file(url + name, raw / name, md5=md5, progress=progress)
        except BenchError as err:
            raise BenchError(err.what, f"{err.fix}; or generate the splits locally with "
                             "`deepnets-bench download --build` (deterministic)") from None
    return convert_official(raw, out_dir, train=train)


def convert_official(raw: Path, out_dir: Path, train: bool = False) -> list[Path]:
    """Convert downloaded official files (``convert-ppuda`` does the same for a folder)."""
    from deepnetsbench.splits.format import split_path
    from deepnetsbench.splits.ppuda import convert_ppuda

    raw = Path(raw)
    meta_tar = raw / "deepnets1m_meta.tar.gz"
    meta_dir = raw / "meta"
    if meta_tar.exists() and not meta_dir.exists():
        try:
            with tarfile.open(meta_tar) as tar:
                tar.extractall(meta_dir, filter="data")
        except (tarfile.TarError, OSError) as err:
            raise BenchError(f"{meta_tar} is corrupt ({err})",
                             "delete it and run `deepnets-bench download` again")
    paths = []
    for split in (*EVAL_SPLITS, *(("train",) if train else ())):
        pattern = f"deepnets1m_{split}_meta.json"
        metas = (list(meta_dir.rglob(pattern)) if meta_dir.exists() else []) or list(raw.glob(pattern))
        if not metas:
            continue
        h5 = raw / ("deepnets1m_train.hdf5" if split == "train" else "deepnets1m_eval.hdf5")
        paths.append(convert_ppuda(h5 if h5.exists() else None, metas[0], split,
                                   split_path(out_dir, split)))
    if not paths:
        raise BenchError(f"no deepnets1m_<split>_meta.json found under {raw}",
                         "pass the folder holding the official files (or their meta tarball)")
    return paths
