"""Suites built from the real archives in ../shared/data (skipped where absent).

Only a few train images per class are decoded (``train_per_class``) to keep this fast; the
test splits are complete."""

from __future__ import annotations

import numpy as np
import pytest

from deepnetsbench.data import load_archive
from deepnetsbench.episodes import EpisodeConfig, EpisodeSuite, build_suite, evaluate_episodes

pytestmark = pytest.mark.shared



@pytest.fixture(scope="module")
def root(tmp_path_factory):
    return tmp_path_factory.mktemp("episodes-shared-root")


@pytest.fixture(scope="module")
def tiny(shared_archive, root):
    return load_archive(shared_archive("tinyimagenet32"), root=root, progress=False,
                        train_per_class=12)


@pytest.fixture(scope="module")
def mnist(shared_archive, root):
    return load_archive(shared_archive("mnist"), root=root, progress=False,
                        train_per_class=6)


def test_intra_tinyimagenet(tiny, tmp_path):
    assert tiny.name == "tinyimagenet" and tiny.num_classes == 200
    cfg = EpisodeConfig(kind="episodes-intra", shots=5, queries=5, train_episodes=50,
                        val_episodes=4, test_episodes=10)
    path = build_suite(cfg, tiny, out=tmp_path / "intra.h5")
    suite = EpisodeSuite(path, datasets=[tiny])
    assert {k: len(v) for k, v in suite.pools.items()} == {"train": 140, "val": 20, "test": 40}
    train_classes = {c for ep in suite.episodes("train") for c in ep.class_ids.tolist()}
    test_classes = {c for ep in suite.episodes("test") for c in ep.class_ids.tolist()}
    assert train_classes <= set(suite.pools["train"]) and not train_classes & test_classes
    ep = suite.episode("test", 0)
    t = suite.tensors(ep)
    assert t.support_x.shape == (50, 3, 32, 32) and t.query_x.shape == (500, 3, 32, 32)
    assert np.bincount(t.query_y.numpy()).tolist() == [50] * 10  # Tiny-ImageNet val: 50/class
    again = build_suite(cfg, tiny, out=tmp_path / "again.h5")
    assert again.read_bytes() == path.read_bytes()


def test_inter_mnist(tiny, mnist, tmp_path):
    cfg = EpisodeConfig(kind="episodes-inter", shots=5, queries=5, train_episodes=20,
                        val_episodes=2, inter_episodes=2, targets=("convnet4",))
    suite = EpisodeSuite(build_suite(cfg, tiny, [mnist], out=tmp_path / "inter.h5"),
                         datasets=[tiny, mnist])
    ep = suite.episode("test", 0)
    assert ep.dataset == "mnist" and len(ep.query) == 10_000 and len(ep.support) == 50
    t = suite.tensors(ep, query_limit=100)
    assert t.support_x.shape == (50, 3, 32, 32)  # 28x28 grey -> 3 x 32 x 32
    res = evaluate_episodes("kaiming", suite, dataset="mnist", out=tmp_path / "r.json",
                            progress=False, eval_images=256)
    assert res.aggregates.n_ok == 2 and res.dataset.name == "mnist"
    assert res.dataset.num_test == 10_000 and res.protocol.eval_images == 256
