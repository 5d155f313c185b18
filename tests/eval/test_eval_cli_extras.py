"""`deepnets-bench eval` with --speedup / --finetune-epochs and the episode suites."""

import json

import torch
from click.testing import CliRunner

from deepnetsbench.cli import main

torch.set_num_threads(1)


def test_mock_eval_with_speedup_and_finetune(tmp_path):
    out = tmp_path / "r.json"
    res = CliRunner().invoke(main, [
        "eval", "--method", "kaiming", "--mock", "--arch", "1", "--root", str(tmp_path),
        "--out", str(out), "--speedup", "gc", "--train-budget", "0.5ep",
        "--finetune-epochs", "0.25", "--quiet"])
    assert res.exit_code == 0, res.output
    rec = json.loads(out.read_text())["records"][0]
    assert rec["status"] == "ok"
    assert rec["speedup"]["trainer"] == "gc" and rec["speedup"]["budget"] == "0.5ep"
    assert rec["finetune"]["epochs"] == 0.25 and "from_random_top1" in rec["finetune"]
    assert list((tmp_path / "curves").rglob("*.json"))  # the reference curve was cached


def test_episode_suite_through_eval(tmp_path):
    from deepnetsbench.data import synthetic_dataset
    from deepnetsbench.data.cache import cache_path, write_cache
    from deepnetsbench.episodes import EpisodeConfig, build_suite

    src = synthetic_dataset(20, 12, n_train=600, n_test=200, seed=3)
    src.name = "synsrc"
    write_cache(src, cache_path("synsrc", tmp_path))
    cfg = EpisodeConfig(kind="episodes-intra", ways=4, shots=3, queries=3, train_episodes=6,
                        val_episodes=2, test_episodes=3, pools=(12, 4, 4), image_size=16,
                        targets=("convnet4",))
    suite = build_suite(cfg, src, out=tmp_path / "intra.h5")
    out = tmp_path / "ep.json"
    res = CliRunner().invoke(main, [
        "eval", "--method", "kaiming", "--suite", "episodes-intra", "--suite-file", str(suite),
        "--root", str(tmp_path), "--out", str(out), "--quiet"])
    assert res.exit_code == 0, res.output
    data = json.loads(out.read_text())
    assert data["suite"] == "episodes-intra" and len(data["records"]) == 3


def test_extras_refuse_bad_combinations(tmp_path):
    runner = CliRunner()
    res = runner.invoke(main, ["eval", "--method", "kaiming", "--suite", "episodes-inter",
                               "--split", "wide", "--root", str(tmp_path)])
    assert res.exit_code == 2 and "--split test" in res.output
    res = runner.invoke(main, ["eval", "--method", "kaiming", "--target", "convnet4",
                               "--root", str(tmp_path)])
    assert res.exit_code == 2 and "episode suites" in res.output
