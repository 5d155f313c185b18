"""Get the DeepNets-1M splits: download the official release and convert it, or build them.

The official files (URL and md5 sums of the official download script, registered as the
``ppuda`` entry of ``releases.json``) are fetched with resume and verification through
:func:`deepnetsbench.download.download_file`; the base URL is configurable (``--base-url`` or
``$DEEPNETS_BENCH_URL_DEEPNETS1M``). ``build=True`` (and ``offline=True``) generates the
splits with the suite's own sampler instead.
"""

from __future__ import annotations

import tarfile
from pathlib import Path

from deepnetsbench.errors import BenchError
from deepnetsbench.paths import splits_dir

EVAL_SPLITS = ("val", "test", "wide", "deep", "dense", "bnfree")
#: The official files a conversion needs (TRAIN adds deepnets1m_train.hdf5).
EVAL_FILES = ("deepnets1m_eval.hdf5", "deepnets1m_meta.tar.gz")
TRAIN_FILE = "deepnets1m_train.hdf5"


def fetch_splits(root=None, build: bool = False, offline: bool = False,
                 base_url: str | None = None, progress: bool = True, train: bool = False,
                 train_num: int | None = None, workers: int = 2,
                 splits: tuple[str, ...] | None = None,
                 checksums: dict[str, str] | None = None,
                 allow_mismatch: bool = False) -> list[Path]:
    """Make the splits available under ``root``; returns the split files.

    Downloaded official files become the ``ppuda`` release (``<splits>/ppuda``); built ones
    the default release (``<splits>``)."""
    from deepnetsbench.splits.build import build_split

    if build or offline:
        wanted = splits or (*EVAL_SPLITS, "predefined", *(("train",) if train else ()))
        paths = []
        for split in wanted:
            num = train_num if split == "train" else None
            paths.append(build_split(split, num, root=root, workers=workers, progress=progress))
        return paths
    return download_official(splits_dir(root), base_url, progress, train=train,
                             checksums=checksums, allow_mismatch=allow_mismatch,
                             workers=workers)


def download_official(out_dir: Path, base_url: str | None = None, progress: bool = True,
                      train: bool = False, checksums: dict[str, str] | None = None,
                      allow_mismatch: bool = False, workers: int = 1) -> list[Path]:
    """Fetch the official files into ``<out_dir>/official`` (md5-checked, resumed, the meta
    tarball unpacked in place) and convert them into ``<out_dir>/ppuda``."""
    from deepnetsbench.download import base_url as configured_url
    from deepnetsbench.download import download_file
    from deepnetsbench.releases import ppuda_release

    release = ppuda_release()
    url = base_url or configured_url("deepnets1m", release["url"])
    url = url if url.endswith("/") else url + "/"
    raw = Path(out_dir) / "official"
    raw.mkdir(parents=True, exist_ok=True)
    for name in (*EVAL_FILES, *((TRAIN_FILE,) if train else ())):
        md5 = (checksums or release["files"]).get(name)
        try:
            download_file(url + name, raw / name, md5=md5, progress=progress)
        except BenchError as err:
            raise BenchError(err.what, f"{err.fix}; or generate the splits locally with "
                             "`deepnets-bench download --build` (deterministic)") from None
    unpack_meta(raw / "deepnets1m_meta.tar.gz", raw)
    return convert_official(raw, Path(out_dir) / "ppuda", train=train,
                            allow_mismatch=allow_mismatch, workers=workers, progress=progress)


def unpack_meta(tarball: Path, folder: Path) -> None:
    """``tar -xf deepnets1m_meta.tar.gz`` in ``folder`` (safe members only), once."""
    stamp = folder / ".deepnets1m_meta.unpacked"
    md5 = _md5(tarball)
    if stamp.exists() and stamp.read_text() == md5:
        return
    try:
        with tarfile.open(tarball) as tar:
            tar.extractall(folder, filter="data")
    except (tarfile.TarError, OSError) as err:
        raise BenchError(f"{tarball} is corrupt ({err})",
                         "delete it and run `deepnets-bench download` again") from None
    stamp.write_text(md5)


def _md5(path: Path) -> str:
    from deepnetsbench.download import file_hash

    return file_hash(path, "md5")


def convert_official(folder: Path, out_dir: Path, train: bool = False,
                     allow_mismatch: bool = False, workers: int = 1,
                     published: str | None = None, progress: bool = False) -> list[Path]:
    """Convert official files you have (``convert-ppuda`` and ``download`` both end here)."""
    from deepnetsbench.splits.ppuda_convert import convert_release

    return convert_release(folder, out_dir, train=train, allow_mismatch=allow_mismatch,
                           workers=workers, published=published, progress=progress)
