"""Episode-suite entries: releases are namespaced by suite, tables are split by target, and
the suite's shipped baselines may name their code by repository path."""

import pytest
from example_releases import DATA_PINS, episode_pins, split_pins

from deepnetsbench.errors import BenchError
from deepnetsbench.leaderboard.board import build_tables
from deepnetsbench.leaderboard.entries import check_results, release_name
from deepnetsbench.releases import register_dataset, register_split
from deepnetsbench.results import example_results

EP_SHA = "e" * 64
DATA = "f" * 64


def _episode(method, target, url="", seed=0):
    res = example_results(method, n=5, seed=seed, suite="episodes-intra", split="test",
                          dataset="tinyimagenet", split_sha256=EP_SHA, dataset_sha256=DATA)
    res.protocol.extra["target"] = target
    res.method.url = url
    res.method.builtin = not url
    return res


@pytest.fixture
def rel(tmp_path):
    path = tmp_path / "releases.json"
    register_split("episodes-intra/test", "1", episode_pins(EP_SHA, "tinyimagenet", 5), path)
    register_dataset("tinyimagenet", DATA, DATA_PINS, path)
    return path


def test_episode_release_is_namespaced(rel, tmp_path):
    res = _episode("kaiming", "convnet4")
    assert release_name(res) == "episodes-intra/test"
    check_results(res, rel)
    other = tmp_path / "other.json"
    register_split("test", "1", split_pins(EP_SHA, 5), other)  # same sha, DeepNets-1M name
    register_dataset("tinyimagenet", DATA, DATA_PINS, other)
    with pytest.raises(BenchError, match="not a released split"):
        check_results(res, other)


def test_shipped_baseline_path_is_a_code_link(rel):
    check_results(_episode("pudnet", "convnet4", url="baselines/pudnet/method.py"), rel)
    with pytest.raises(BenchError, match="public code link"):
        check_results(_episode("pudnet", "convnet4", url="baselines/nowhere.py"), rel)


def test_targets_get_separate_tables():
    from pathlib import Path

    from deepnetsbench.leaderboard.entries import Entry, content_sha256

    entries = []
    for i, (m, t) in enumerate([("a", "convnet4"), ("b", "convnet4"), ("a", "resnet18")]):
        res = _episode(m, t, seed=i)
        entries.append((Path(f"{i}.json"), Entry(results=res, content_sha256=content_sha256(res),
                                                 submitted_at=res.finished_at)))
    tables = build_tables(entries)
    assert sorted((t.target, len(t.rows)) for t in tables) == [("convnet4", 2), ("resnet18", 1)]
    assert all(t.target in t.title for t in tables) and not any(t.ambiguous for t in tables)
