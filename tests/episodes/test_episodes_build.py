"""Sampling: determinism, disjoint class pools, what support and query hold, sizes."""

from __future__ import annotations

import numpy as np
import pytest

from deepnetsbench.episodes import EpisodeSuite, build_suite, class_pools, suite_summary
from deepnetsbench.episodes.suite import SPLITS, file_sha256
from deepnetsbench.errors import BenchError


def _indices(suite: EpisodeSuite, split: str) -> list[tuple]:
    return [(tuple(e.class_ids), tuple(e.support), tuple(e.query)) for e in suite.episodes(split)]


def test_same_seed_same_bytes_and_indices(tmp_path, src, eh):
    a = build_suite(eh.intra_config(), src, out=tmp_path / "a" / "s.h5")
    b = build_suite(eh.intra_config(), src, out=tmp_path / "b" / "s.h5")
    assert a.read_bytes() == b.read_bytes()
    c = build_suite(eh.intra_config(seed=1), src, out=tmp_path / "c" / "s.h5")
    assert file_sha256(c) != file_sha256(a)
    sa, sc = EpisodeSuite(a, datasets=[src]), EpisodeSuite(c, datasets=[src])
    assert _indices(sa, "train") != _indices(sc, "train")


def test_more_episodes_keep_the_earlier_ones(tmp_path, src, eh):
    small = EpisodeSuite(build_suite(eh.intra_config(train_episodes=4), src,
                                     out=tmp_path / "s" / "s.h5"), datasets=[src])
    big = EpisodeSuite(build_suite(eh.intra_config(train_episodes=12), src,
                                   out=tmp_path / "b" / "b.h5"), datasets=[src])
    assert _indices(big, "train")[:4] == _indices(small, "train")
    assert _indices(big, "test") == _indices(small, "test")


def test_class_pools_are_disjoint_and_respected(intra_path, src):
    suite = EpisodeSuite(intra_path, datasets=[src])
    pools = {k: set(v) for k, v in suite.pools.items()}
    assert [len(pools[s]) for s in SPLITS] == [12, 4, 4]
    assert not pools["train"] & pools["val"] and not pools["train"] & pools["test"]
    assert not pools["val"] & pools["test"]
    seen = {s: set() for s in SPLITS}
    for split in SPLITS:
        for ep in suite.episodes(split):
            assert len(set(ep.class_ids)) == ep.num_classes == 4
            assert set(ep.class_ids) <= pools[split]
            seen[split] |= set(ep.class_ids.tolist())
    assert not seen["train"] & seen["test"] and seen["test"]


def test_support_and_query_contents(intra_path, src):
    suite = EpisodeSuite(intra_path, datasets=[src])
    for ep in suite.episodes("train"):
        assert ep.query_split == "train"
        assert not set(ep.support) & set(ep.query)  # disjoint images
        for c in ep.class_ids:  # shots / queries per class
            assert (src.train_y[ep.support] == c).sum() == 3
            assert (src.train_y[ep.query] == c).sum() == 3
    for ep in suite.episodes("test"):
        assert ep.query_split == "test" and len(ep.support) == 12
        wanted = np.flatnonzero(np.isin(src.test_y, ep.class_ids))
        assert sorted(ep.query) == sorted(wanted)  # every test image of those classes
        # stored shuffled: the first batch of queries mixes classes (BatchNorm statistics)
        assert len(set(src.test_y[ep.query[:10]])) > 1


def test_inter_test_episodes_are_whole_datasets(inter_path, src, grey):
    suite = EpisodeSuite(inter_path, datasets=[src, grey])
    assert suite.kind == "episodes-inter" and suite.targets == ["convnet4", "resnet18"]
    assert suite.test_datasets("test") == ["syngrey"]
    eps = list(suite.episodes("test"))
    assert len(eps) == 2
    for ep in eps:
        assert ep.dataset == "syngrey" and ep.class_ids.tolist() == [0, 1, 2, 3, 4]
        assert ep.query.tolist() == list(range(len(grey.test_y)))  # the full test set
        assert np.bincount(grey.train_y[ep.support]).tolist() == [3] * 5
    assert eps[0].support.tolist() != eps[1].support.tolist()  # other support samples
    assert suite.pools["test"] == [] and suite.num_episodes("train") == 8
    assert all(ep.dataset == "synsrc" for ep in suite.episodes("train"))


def test_class_pools_function():
    pools = class_pools(200, (140, 20, 40), seed=0)
    assert [len(pools[s]) for s in SPLITS] == [140, 20, 40]
    assert sorted(pools["train"] + pools["val"] + pools["test"]) == list(range(200))
    assert pools == class_pools(200, (140, 20, 40), seed=0)
    assert pools != class_pools(200, (140, 20, 40), seed=1)
    with pytest.raises(BenchError, match="do not fit"):
        class_pools(10, (8, 2, 2), seed=0)


@pytest.mark.parametrize("kw, match", [
    (dict(ways=6), "fewer than --ways"),  # the val/test pools have 4 classes
    (dict(shots=25, queries=10), "has 30 train images"),
    (dict(ways=1), "ways=1"),
    (dict(targets=("vgg",)), "unknown target"),
])
def test_bad_configs_are_one_line_errors(tmp_path, src, eh, kw, match):
    with pytest.raises(BenchError, match=match) as err:
        build_suite(eh.intra_config(**kw), src, out=tmp_path / "x.h5")
    assert err.value.fix
    assert not (tmp_path / "x.h5").exists()


def test_inter_needs_test_datasets(tmp_path, src, eh):
    with pytest.raises(BenchError, match="needs test datasets"):
        build_suite(eh.inter_config(), src, [], out=tmp_path / "x.h5")


def test_summary(intra_path):
    s = suite_summary(intra_path)
    assert s["kind"] == "episodes-intra" and s["pools"] == {"train": 12, "val": 4, "test": 4}
    assert s["splits"]["train"]["episodes"] == 12
    assert s["splits"]["train"]["support_per_episode"] == (12, 12, 12.0)
    assert s["splits"]["test"]["query_per_episode"] == (40, 40, 40.0)  # 4 classes x 10
    assert s["splits"]["test"]["query_from"] == ["test"]
