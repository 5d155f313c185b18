"""The registered ppuda release: the official md5 sums and the published per-architecture
parameter counts (facts from facebookresearch/ppuda, see the spec §4.3 and §7)."""

import hashlib

import pytest

from deepnetsbench.errors import BenchError
from deepnetsbench.releases import ppuda_release
from deepnetsbench.splits.ppuda_convert import PUBLISHED_PARAMS, published_params


def test_release_is_keyed_by_the_download_script_md5s():
    files = ppuda_release()["files"]
    assert files == {"deepnets1m_eval.hdf5": "1f5641329271583ad068f43e1521517e",
                     "deepnets1m_meta.tar.gz": "a42b6f513da6bbe493fc16a30d6d4e3e",
                     "deepnets1m_search.hdf5": "0a93f4b4e3b729ea71eb383f78ea9b53",
                     "deepnets1m_train.hdf5": "90bbe84bb1da0d76cdc06d5ff84fa23d"}
    assert ppuda_release()["url"] == "https://dl.fbaipublicfiles.com/deepnets1m/"


def test_published_counts_are_the_registered_ones():
    entry = ppuda_release()["published_params"]
    assert hashlib.sha256(PUBLISHED_PARAMS.read_bytes()).hexdigest() == entry["sha256"]
    assert "results_cifar10.json" in entry["source"]


def test_published_counts_are_the_published_figures():
    p = published_params()
    assert {k: len(v) for k, v in p.items()} == {"val": 500, "test": 500, "wide": 100,
                                                 "deep": 100, "dense": 100, "bnfree": 100,
                                                 "predefined": 2}
    # the spec §4.3 quotes these minima / maximum of the published eval nets
    assert (min(p["val"]), min(p["test"]), min(p["deep"]), min(p["dense"]),
            min(p["bnfree"])) == (2_501_994, 2_500_522, 2_520_250, 2_527_946, 2_503_690)
    assert round(max(p["test"]) / 1e6, 2) == 34.79
    assert p["predefined"] == [23_520_842, 1_012_234]  # ResNet-50 and the ViT net


def test_bad_published_file_is_a_one_line_error(tmp_path):
    bad = tmp_path / "p.json"
    bad.write_text('{"params": {"test": ["x"]}}')
    with pytest.raises(BenchError, match="cannot read published parameter counts"):
        published_params(bad)
