"""Fixtures for the official-layout (ppuda) tests: files in the official layout, written by
our own writer (deepnetsbench.splits.ppuda_export), never the official code or files."""

from __future__ import annotations

from pathlib import Path

import pytest
from ppuda_helpers import EVAL


@pytest.fixture(scope="session")
def eval_specs():
    """Three architectures per evaluation split, at their evaluation widths."""
    from deepnetsbench.space.sampler import split_item

    return {s: [split_item(s, i) for i in range(3)] for s in EVAL}


@pytest.fixture()
def official_folder(tmp_path_factory, eval_specs):
    """official_folder(row_order=..., tar=..., graphs=...) -> a folder in the official layout
    (deepnets1m_eval.hdf5, the meta tarball, and the unpacked deepnets1m_meta/ folder)."""
    from deepnetsbench.splits.ppuda_export import pack_meta, write_official

    def make(row_order: str = "cells", unpack: bool = True, specs=None, graphs=None,
             arc_dir: str = "deepnets1m_meta") -> Path:
        folder = tmp_path_factory.mktemp("official")
        work = tmp_path_factory.mktemp("write")
        _, meta = write_official(work, specs or eval_specs, row_order=row_order, graphs=graphs)
        (work / "deepnets1m_eval.hdf5").rename(folder / "deepnets1m_eval.hdf5")
        pack_meta(folder, [meta], arc_dir=arc_dir)
        if unpack:
            target = folder / arc_dir if arc_dir else folder
            target.mkdir(exist_ok=True)
            meta.rename(target / meta.name)
        return folder

    return make
