"""Round trip to/from the original (ppuda) layout, and the official download path against a
local HTTP server serving ppuda-format files the test writes."""

import hashlib
import http.server
import json
import tarfile
import threading
from functools import partial

import numpy as np
import pytest

from deepnetsbench.errors import BenchError
from deepnetsbench.splits import DeepNets1M, build_split
from deepnetsbench.splits.fetch import download_official
from deepnetsbench.splits.ppuda import convert_ppuda, export_ppuda, spec_from_ppuda


@pytest.fixture(scope="module")
def ppuda_files(tmp_path_factory):
    root = tmp_path_factory.mktemp("src")
    build_split("test", 12, root=root, progress=False)
    ds = DeepNets1M("test", root=root)
    out = tmp_path_factory.mktemp("ppuda")
    export_ppuda(ds, out / "deepnets1m_eval.hdf5", out / "deepnets1m_test_meta.json")
    with tarfile.open(out / "deepnets1m_meta.tar.gz", "w:gz") as tar:
        tar.add(out / "deepnets1m_test_meta.json", arcname="deepnets1m_test_meta.json")
    return ds, out


def test_round_trip_through_ppuda_layout(ppuda_files, tmp_path):
    ds, out = ppuda_files
    path = convert_ppuda(out / "deepnets1m_eval.hdf5", out / "deepnets1m_test_meta.json", "test",
                         tmp_path / "deepnets1m_test.h5")
    back = DeepNets1M("test", path=path)
    assert len(back) == len(ds)
    for i in range(len(ds)):
        assert back[i].spec == ds[i].spec
        assert back[i].num_params == ds[i].num_params
        assert np.array_equal(back[i].stored_graph().edges, ds[i].stored_graph().edges)


def test_original_genotype_strings_parse():
    meta = {"genotype": "Genotype(normal=[('sep_conv_3x3', 1), ('msa', 0)], normal_concat=[2], "
                        "reduce=[('max_pool_3x3', 0), ('avg_pool_3x3', 1)], reduce_concat=range(2, 3))",
            "net_args": {"C": 32, "n_cells": 8, "norm": "bn", "ks": 5, "preproc": 1, "glob_avg": 1,
                         "stem_pool": 0, "stem_type": 1, "C_mult": 2, "fc_layers": 1, "fc_dim": 256}}
    spec = spec_from_ppuda(meta)
    assert spec.genotype.normal == (("sep_conv_3x3", 1), ("msa", 0))
    assert spec.genotype.reduce_concat == (2,)
    assert spec.args.is_vit and spec.args.ks == 5 and spec.args.stem_type == 1


class _Handler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


@pytest.fixture()
def server(ppuda_files):
    _, out = ppuda_files
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), partial(_Handler, directory=str(out)))
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}/"
    httpd.shutdown()


def _md5(path):
    return hashlib.md5(path.read_bytes()).hexdigest()


def test_download_and_convert_from_local_server(ppuda_files, server, tmp_path):
    ds, out = ppuda_files
    sums = {n: _md5(out / n) for n in ("deepnets1m_eval.hdf5", "deepnets1m_meta.tar.gz")}
    paths = download_official(tmp_path, server, progress=False, checksums=sums)
    assert [p.name for p in paths] == ["deepnets1m_test.h5"]
    got = DeepNets1M("test", path=paths[0])
    assert [got[i].spec for i in range(len(got))] == [ds[i].spec for i in range(len(ds))]


def test_md5_mismatch_is_refused_and_nothing_is_converted(ppuda_files, server, tmp_path):
    _, out = ppuda_files
    sums = {"deepnets1m_eval.hdf5": "0" * 32, "deepnets1m_meta.tar.gz": _md5(out / "deepnets1m_meta.tar.gz")}
    with pytest.raises(BenchError):
        download_official(tmp_path, server, progress=False, checksums=sums)
    assert not (tmp_path / "official" / "deepnets1m_eval.hdf5").exists()
    assert not (tmp_path / "deepnets1m_test.h5").exists()


def test_bad_meta_file_is_one_line_error(tmp_path):
    bad = tmp_path / "deepnets1m_test_meta.json"
    bad.write_text("{not json")
    with pytest.raises(BenchError, match="cannot read ppuda meta"):
        convert_ppuda(None, bad, "test", tmp_path / "x.h5")
    assert json  # keep import used
