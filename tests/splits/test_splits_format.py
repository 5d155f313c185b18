import os

import numpy as np
import pytest

from deepnetsbench.errors import BenchError
from deepnetsbench.graph import graph_from_spec
from deepnetsbench.splits import DeepNets1M, build_split
from deepnetsbench.splits.format import file_sha256, read_manifest


@pytest.fixture(scope="module")
def test_split(tmp_path_factory):
    root = tmp_path_factory.mktemp("root")
    build_split("test", 40, root=root, progress=False)
    return root


def test_same_seed_gives_byte_identical_files(tmp_path):
    a = build_split("val", 30, root=tmp_path / "a", progress=False)
    b = build_split("val", 30, root=tmp_path / "b", workers=2, shard_size=7, progress=False)
    assert file_sha256(a) == file_sha256(b)
    c = build_split("val", 30, root=tmp_path / "c", seed=5, progress=False)
    assert file_sha256(a) != file_sha256(c)


def test_build_resumes_from_existing_shards(tmp_path):
    from deepnetsbench.splits import build as build_mod

    calls = []
    original = build_mod._shard_job

    def failing(job):
        calls.append(job[1])
        if len(calls) == 3:
            raise KeyboardInterrupt
        return original(job)

    build_mod._shard_job = failing
    try:
        with pytest.raises(KeyboardInterrupt):
            build_split("bnfree", 20, root=tmp_path / "r", shard_size=5, progress=False)
    finally:
        build_mod._shard_job = original
    resumed = []

    def counting(job):
        resumed.append(job[1])
        return original(job)

    build_mod._shard_job = counting
    try:
        path = build_split("bnfree", 20, root=tmp_path / "r", shard_size=5, progress=False)
    finally:
        build_mod._shard_job = original
    assert resumed == [10, 15]  # shards 0 and 5 were kept
    fresh = build_split("bnfree", 20, root=tmp_path / "fresh", progress=False)
    assert file_sha256(path) == file_sha256(fresh)


def test_reader_round_trip(test_split):
    ds = DeepNets1M("test", root=test_split)
    assert len(ds) == 40
    assert ds.sha256 == read_manifest(test_split / "splits")["deepnets1m_test.h5"]["sha256"]
    for i in (0, 17, 39, -1):
        rec = ds[i]
        derived = graph_from_spec(rec.spec)
        stored = rec.stored_graph()
        assert np.array_equal(stored.node_types, derived.node_types)
        assert np.array_equal(stored.shapes, derived.shapes)
        assert np.array_equal(stored.edges, derived.edges)
        assert rec.num_params == derived.num_params
        assert rec.graph.param_names == derived.param_names
    model = ds[3].build_model(num_classes=10, image_size=32)
    assert sum(p.numel() for p in model.parameters()) == ds[3].num_params
    with pytest.raises(IndexError):
        ds[40]


def test_meta_batches(test_split):
    ds = DeepNets1M("test", root=test_split)
    batches = list(ds.meta_batches(8, seed=0))
    assert len(batches) == 5 and all(len(b) == 8 for b in batches)
    assert sorted(i for b in batches for i in b) == list(range(40))
    small = list(ds.meta_batches(8, seed=0, max_nodes=int(ds.num_nodes().mean() * 8)))
    assert 0 < len(small) < 5 or len(small) == 5


def test_dataset_pickles_for_workers(test_split):
    import pickle

    ds = DeepNets1M("test", root=test_split)
    ds[0]
    clone = pickle.loads(pickle.dumps(ds))
    assert clone[5].spec == ds[5].spec


def _copy_split(src_root, dst_root):
    import shutil

    shutil.copytree(src_root / "splits", dst_root / "splits")
    return dst_root / "splits" / "deepnets1m_test.h5"


def test_truncated_file_is_detected(test_split, tmp_path):
    path = _copy_split(test_split, tmp_path)
    with open(path, "r+b") as f:
        f.truncate(os.path.getsize(path) // 2)
    with pytest.raises(BenchError) as err:
        DeepNets1M("test", root=tmp_path)
    msg = str(err.value)
    assert "deepnets1m_test.h5" in msg and "corrupt" in msg and "deepnets-bench build" in msg


def test_flipped_byte_is_detected(test_split, tmp_path):
    path = _copy_split(test_split, tmp_path)
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(BenchError, match="sha256"):
        DeepNets1M("test", root=tmp_path)


def test_wrong_version_is_detected(test_split, tmp_path):
    import h5py

    from deepnetsbench.splits.format import record_manifest

    path = _copy_split(test_split, tmp_path)
    with h5py.File(path, "r+") as f:
        f.attrs["format_version"] = "9.0"
    record_manifest(path, file_sha256(path), {})
    with pytest.raises(BenchError, match="format version 9.0"):
        DeepNets1M("test", root=tmp_path)


def test_missing_split_names_the_fix(tmp_path):
    with pytest.raises(BenchError, match="deepnets-bench build --split deep"):
        DeepNets1M("deep", root=tmp_path)


def test_predefined_split_reads_models(tmp_path):
    from deepnetsbench.splits.build import build_predefined_split
    from deepnetsbench.splits.format import split_path
    from deepnetsbench.splits.predefined import predefined_names

    names = predefined_names()
    assert names[:2] == ["resnet50", "deepnets_vit"] and len(names) > 70
    # a small predefined file (the full one is built by `deepnets-bench build`)
    import deepnetsbench.splits.predefined as pre

    original = pre.predefined_names
    pre.predefined_names = lambda: ["resnet50", "deepnets_vit", "squeezenet1_1", "inception_v3"]
    try:
        build_predefined_split(split_path(tmp_path, "predefined"), progress=False)
    finally:
        pre.predefined_names = original
    ds = DeepNets1M("predefined", path=split_path(tmp_path, "predefined"))
    assert [ds[i].name for i in range(4)] == ["resnet50", "deepnets_vit", "squeezenet1_1", "inception_v3"]
    assert abs(ds[0].num_params / 1e6 - 23.52) < 0.01
    assert ds[3].image_size > 32  # Inception-v3 cannot run at 32x32
    assert ds[1].build_model(10, 32)(__import__("torch").randn(2, 3, 32, 32)).shape == (2, 10)
