"""Reading suites: round trip to tensors, manifest and header checks, dataset pinning."""

from __future__ import annotations

import json

import h5py
import numpy as np
import pytest
import torch

from deepnetsbench.episodes import EpisodeSuite, build_target
from deepnetsbench.episodes.suite import MANIFEST
from deepnetsbench.errors import BenchError


def test_round_trip_file_episode_tensors(intra_path, src):
    suite = EpisodeSuite(intra_path, datasets=[src])
    ep = suite.episode("test", 2)
    assert ep.name == "test/00002" and ep.classes == [src.classes[c] for c in ep.class_ids]
    t = suite.tensors(ep)
    assert t.support_x.shape == (12, 3, 16, 16) and t.query_x.shape == (40, 3, 16, 16)
    assert t.support_x.dtype == torch.float32 and t.support_y.dtype == torch.int64
    # labels are positions in the episode's class list
    assert t.support_y.tolist() == [ep.class_ids.tolist().index(c)
                                    for c in src.train_y[ep.support]]
    assert t.query_y.tolist() == [ep.class_ids.tolist().index(c) for c in src.test_y[ep.query]]
    # the very pixels of the dataset, converted like the dataset converts them
    x, _ = src.tensors("test", 16, 3, indices=ep.query)
    assert torch.equal(t.query_x, x)
    sx, sy = suite.support_tensors(ep, limit=5)
    assert torch.equal(sx, t.support_x[:5]) and torch.equal(sy, t.support_y[:5])
    model = build_target("convnet4", ep.num_classes, suite.image_size)
    assert model(t.query_x).shape == (40, 4)


def test_grey_datasets_become_3_channel_at_suite_size(inter_path, src, grey):
    suite = EpisodeSuite(inter_path, datasets=[src, grey])
    ep = suite.episode("test", 0)
    t = suite.tensors(ep, query_limit=7)
    assert t.support_x.shape == (15, 3, 16, 16) and t.query_x.shape == (7, 3, 16, 16)
    assert torch.equal(t.support_x[:, 0], t.support_x[:, 1])
    assert t.query_y.tolist() == grey.test_y[:7].tolist()  # the dataset's own label order


def test_corrupt_file_is_a_one_line_error(intra_path, src):
    data = bytearray(intra_path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    intra_path.write_bytes(bytes(data))
    with pytest.raises(BenchError) as err:
        EpisodeSuite(intra_path, datasets=[src])
    msg = err.value.one_line()
    assert str(intra_path) in msg and "corrupt" in msg and "build-episodes" in msg
    assert "\n" not in msg


def test_truncated_file(intra_path, src):
    intra_path.write_bytes(intra_path.read_bytes()[:1000])
    with pytest.raises(BenchError, match="corrupt"):
        EpisodeSuite(intra_path)


def test_unlisted_and_missing_files(intra_path, tmp_path):
    with pytest.raises(BenchError, match="not found"):
        EpisodeSuite(tmp_path / "nope.h5")
    manifest = intra_path.parent / MANIFEST
    manifest.write_text(json.dumps({}))
    with pytest.raises(BenchError, match="not listed"):
        EpisodeSuite(intra_path)


def test_wrong_format_version(intra_path, src):
    with h5py.File(intra_path, "r+") as f:
        f.attrs["format_version"] = "9.0"
    manifest = json.loads((intra_path.parent / MANIFEST).read_text())
    from deepnetsbench.episodes.suite import file_sha256

    entry = manifest[intra_path.name]
    entry.update(sha256=file_sha256(intra_path), size=intra_path.stat().st_size, verified=None)
    (intra_path.parent / MANIFEST).write_text(json.dumps(manifest))
    with pytest.raises(BenchError, match="format version 9.0") as err:
        EpisodeSuite(intra_path)
    assert str(intra_path) in str(err.value) and err.value.fix


def test_verified_once_per_file_version(intra_path, monkeypatch):
    EpisodeSuite(intra_path)  # records size + mtime as verified
    import deepnetsbench.episodes.suite as mod

    calls = []
    monkeypatch.setattr(mod, "file_sha256", lambda p, *a: calls.append(p) or "x")
    EpisodeSuite(intra_path)
    assert calls == []


def test_dataset_content_is_pinned(intra_path, eh):
    other = eh.make_source(seed=99)  # same name, other pixels
    suite = EpisodeSuite(intra_path, datasets=[other])
    with pytest.raises(BenchError, match="differs from the one"):
        suite.tensors(suite.episode("test", 0))


def test_kind_mismatch_and_bad_indices(intra_path, src):
    with pytest.raises(BenchError, match="not episodes-inter"):
        EpisodeSuite(intra_path, kind="episodes-inter")
    suite = EpisodeSuite(intra_path, datasets=[src])
    with pytest.raises(BenchError, match="outside the test split"):
        suite.episode("test", 5)
    with pytest.raises(BenchError, match="unknown episode split"):
        suite.episode("dev", 0)


def test_default_location_uses_the_root(tmp_path, src, eh):
    from deepnetsbench.episodes import build_suite, default_suite_path

    path = build_suite(eh.intra_config(), src, root=tmp_path)
    assert path == default_suite_path("episodes-intra", tmp_path)
    assert path == tmp_path / "episodes" / "episodes_intra.h5"
    suite = EpisodeSuite(kind="episodes-intra", root=tmp_path, datasets={"synsrc": src})
    assert suite.num_episodes("test") == 5 and np.all(suite.episode("val", 0).class_ids >= 0)
