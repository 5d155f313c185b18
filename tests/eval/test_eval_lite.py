"""The deepnets1m-lite suite: its fixed subset rule, a lite run (architectures keep their
split index and seed, images are the class-balanced subset), and its CLI refusals."""

from __future__ import annotations

import numpy as np
import pytest
from click.testing import CliRunner

from deepnetsbench.errors import BenchError
from deepnetsbench.eval import lite


def test_architecture_rule_per_split():
    assert lite.arch_indices("test", 500) == list(range(0, 500, 5))
    assert len(lite.arch_indices("val", 500)) == 100 and len(lite.arch_indices("wide", 100)) == 20
    for split in ("deep", "dense", "bnfree"):
        assert lite.arch_indices(split, 100) == list(range(0, 100, 2))
    assert lite.arch_indices("predefined", 81) == [0, 1]
    assert "every 5th" in lite.arch_rule("test") and "every 2nd" in lite.arch_rule("deep")
    with pytest.raises(BenchError, match="no 'train' split"):
        lite.arch_indices("train", 1000)


def test_images_are_the_first_of_each_class_in_test_order():
    rng = np.random.default_rng(0)
    labels = rng.permutation(np.arange(2000) % 10)
    chosen = lite.image_indices(labels, 10)
    assert len(chosen) == 1000 and chosen == sorted(chosen)
    assert np.bincount(labels[chosen], minlength=10).tolist() == [100] * 10
    for c in range(10):  # the first 100 of class c, none skipped
        assert [i for i in chosen if labels[i] == c] == np.flatnonzero(labels == c)[:100].tolist()
    assert len(lite.image_indices(np.arange(10000) % 200, 200)) == 1000  # 5 per class
    assert len(lite.image_indices(np.arange(1000) % 47, 47)) == 21 * 47  # floor(1000 / 47)
    short = np.r_[np.repeat([c for c in range(10) if c != 3], 100), np.full(50, 3)]
    with pytest.raises(BenchError, match="class 3 has 50 test images"):
        lite.image_indices(short, 10)
    with pytest.raises(BenchError, match="fewer than the dataset's 1001 classes"):
        lite.image_indices(np.arange(2002) % 1001, 1001)


def test_subset_record_names_rule_and_indices():
    sub = lite.LiteSubset.of("deep", 100, np.arange(1000) % 10, 10)
    rec = sub.record()
    assert rec["rule"] == lite.RULE
    assert rec["architectures"]["indices"] == list(range(0, 100, 2))
    assert rec["architectures"]["indices_sha256"] == lite.indices_sha256(range(0, 100, 2))
    assert rec["images"]["count"] == 1000 and rec["images"]["per_class"] == 100
    assert rec["images"]["indices"] == list(range(1000))


@pytest.fixture()
def lite_inputs(mock_root, monkeypatch):
    """Lite runs on the mock split (4 narrow nets) and 1,100 synthetic images (110 per class):
    fast, and the lite rule still picks a strict subset of both."""
    from deepnetsbench.data.synthetic import synthetic_dataset
    from deepnetsbench.eval import inputs
    from deepnetsbench.eval.runner import open_mock

    images = synthetic_dataset(10, 32, n_train=20, n_test=1100, seed=1)
    monkeypatch.setattr(inputs, "open_split",
                        lambda split, root=None, verify=True, release=None:
                        open_mock(split, root=mock_root)[0])
    monkeypatch.setattr(inputs, "open_images", lambda dataset, root=None: (images, 32))
    return images


def test_lite_run_scores_the_subset(lite_inputs, tmp_path, untimed):
    from deepnetsbench.eval.runner import EvalConfig, evaluate, run_evaluation

    cfg = EvalConfig(suite=lite.LITE, split="deep", out=tmp_path / "lite.json", progress=False)
    res = evaluate("kaiming", cfg)
    assert res.suite == lite.LITE and [r.index for r in res.records] == [0, 2]
    assert all(r.status == "ok" for r in res.records)
    want = lite.image_indices(lite_inputs.test_y, 10)
    extra = res.protocol.extra["lite"]
    assert extra["images"]["indices"] == want and extra["architectures"]["indices"] == [0, 2]
    assert res.protocol.eval_images == 1000 and res.dataset.num_test == 1100
    assert res.split.num_items == 4 and res.protocol.extra["architectures"] == [0, 2]

    # The same nets scored by the plain evaluator on exactly those images: equal records.
    from dataclasses import replace

    from deepnetsbench.eval.runner import open_mock

    sub = replace(lite_inputs, test_x=lite_inputs.test_x[want], test_y=lite_inputs.test_y[want])
    suite = open_mock("deep", root=cfg.root)[0]
    plain = run_evaluation("kaiming", suite, sub, EvalConfig(
        split="deep", archs=[0, 2], out=tmp_path / "plain.json", progress=False), 32)
    assert untimed(plain.records) == untimed(res.records)


def test_lite_journal_is_not_a_full_run(lite_inputs, tmp_path):
    from deepnetsbench.eval.runner import EvalConfig, evaluate

    out = tmp_path / "run.json"
    evaluate("kaiming", EvalConfig(suite=lite.LITE, split="deep", archs=[2], out=out,
                                   progress=False))
    with pytest.raises(BenchError, match="different run"):
        evaluate("kaiming", EvalConfig(split="deep", archs=[2], out=out, progress=False,
                                       mock=True))


def test_lite_refuses_other_subsets(lite_inputs, tmp_path):
    from deepnetsbench.eval.runner import EvalConfig, evaluate

    def run(**kw):
        return evaluate("kaiming", EvalConfig(suite=lite.LITE, out=tmp_path / "x.json",
                                              progress=False, **kw))
    with pytest.raises(BenchError, match="--arch 1 is not a deepnets1m-lite architecture"):
        run(split="deep", archs=[1])
    with pytest.raises(BenchError, match="fixed set of 1000 images"):
        run(split="deep", eval_images=100)
    with pytest.raises(BenchError, match="--mock runs on the deepnets1m suite"):
        run(split="deep", mock=True)
    with pytest.raises(BenchError, match="no 'train' split"):
        run(split="train")


def test_lite_shards_partition_the_lite_architectures(lite_inputs, mock_root, monkeypatch):
    from deepnetsbench.eval import runner
    from deepnetsbench.eval.runner import EvalConfig
    from deepnetsbench.eval.shards import Shard, plan_shard

    monkeypatch.setattr(runner, "open_split", lambda split, root=None, release=None, verify=True:
                        runner.open_mock(split, root=mock_root)[0])
    cfg = EvalConfig(suite=lite.LITE, split="deep")
    parts = [plan_shard(cfg, Shard(k, 2)) for k in (1, 2)]
    assert sorted(parts[0][0] + parts[1][0]) == [0, 2]
    assert parts[0][1]["selection"] == [0, 2] and parts[0][1]["selection_size"] == 2


def test_split_all_names_one_file_per_split():
    from deepnetsbench.eval.commands import default_out
    from deepnetsbench.eval.runner import EvalConfig

    cfg = EvalConfig(suite=lite.LITE)
    outs = lite.split_outs("kaiming", cfg, None, default_out)
    assert list(outs) == list(lite.EVAL_SPLITS)
    assert outs["wide"] == "kaiming-deepnets1m-lite-wide-cifar10.json"
    assert lite.split_outs("k", cfg, "runs/k-{split}.json", default_out)["val"] == "runs/k-val.json"
    with pytest.raises(BenchError, match="put \\{split\\} in --out"):
        lite.split_outs("k", cfg, "runs/k.json", default_out)


def test_cli_refuses_split_all_with_arch_and_lite_train(tmp_path, monkeypatch):
    from deepnetsbench.cli import main

    monkeypatch.chdir(tmp_path)
    runner = CliRunner()
    r = runner.invoke(main, ["eval", "--method", "kaiming", "--split", "all", "--arch", "3"])
    assert r.exit_code == 2 and "--split all runs every evaluation split" in r.output
    r = runner.invoke(main, ["eval", "--method", "kaiming", "--suite", lite.LITE,
                             "--split", "train", "--root", str(tmp_path)])
    assert r.exit_code == 2 and "no 'train' split" in r.output
