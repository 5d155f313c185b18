"""PudNet training on a tiny synthetic suite: the loss falls, checkpoints round-trip and
resume, and the method file plugs into the episode evaluator."""

from __future__ import annotations

import pytest
import torch

from baselines.pudnet.model import PudNetConfig
from baselines.pudnet.train import (
    TrainSettings,
    evaluate_split,
    load_checkpoint,
    save_checkpoint,
    train_pudnet,
)
from deepnetsbench.data import synthetic_dataset
from deepnetsbench.episodes import EpisodeConfig, EpisodeSuite, build_suite, evaluate_episodes
from deepnetsbench.errors import BenchError

SMALL = dict(hidden=32, embed=32, enc_channels=(8, 16), chunk=16, rank=4)
METHOD = "baselines/pudnet/method.py"


@pytest.fixture(scope="module")
def suite(tmp_path_factory):
    src = synthetic_dataset(16, 16, n_train=640, n_test=160, seed=5)
    src.name = "synsrc"
    cfg = EpisodeConfig(kind="episodes-intra", ways=4, shots=8, queries=8, train_episodes=40,
                        val_episodes=2, test_episodes=3, pools=(8, 4, 4), image_size=16,
                        targets=("convnet4",))
    path = build_suite(cfg, src, out=tmp_path_factory.mktemp("suite") / "intra.h5")
    return EpisodeSuite(path, datasets=[src])


def _train(suite, ckpt, steps, **kw):
    settings = TrainSettings(meta_batch=2, support_per_class=None, query_per_class=None,
                             lr=2e-3, **kw)
    return train_pudnet(suite, ckpt, settings, PudNetConfig(image_size=16, **SMALL),
                        max_steps=steps, val_every=None, log_every=5, log=None)


def test_loss_decreases(suite, tmp_path):
    torch.manual_seed(0)
    summary = _train(suite, tmp_path / "a.pt", 40)
    losses = [h["loss"] for h in summary["history"]]
    assert len(losses) == 8
    assert sum(losses[-2:]) / 2 < sum(losses[:2]) / 2 - 0.05, losses
    assert summary["step"] == 40 and summary["suite_sha256"] == suite.sha256


def test_checkpoint_round_trip_and_resume(suite, tmp_path):
    ckpt = tmp_path / "b.pt"
    _train(suite, ckpt, 5)
    net, state = load_checkpoint(ckpt)
    assert state["step"] == 5 and state["config"]["hidden"] == 32
    ep = suite.episode("test", 0)
    t = suite.tensors(ep)
    p1 = net.predict(t.support_x, t.support_y, ep.num_classes)
    save_checkpoint(tmp_path / "c.pt", state)  # what was loaded saves back identically
    net2, _ = load_checkpoint(tmp_path / "c.pt")
    p2 = net2.predict(t.support_x, t.support_y, ep.num_classes)
    assert p1.keys() == p2.keys() and all(torch.equal(p1[k], p2[k]) for k in p1)
    resumed = _train(suite, ckpt, 8)  # continues from step 5
    assert resumed["step"] == 8 and [h["step"] for h in resumed["history"]] == [5, 8]
    with pytest.raises(BenchError, match="other settings"):
        _train(suite, ckpt, 10, seed=1)
    assert 0.0 <= evaluate_split(net, suite, "val", 2) <= 100.0


def test_bad_checkpoints(tmp_path):
    with pytest.raises(BenchError, match="not found"):
        load_checkpoint(tmp_path / "none.pt")
    (tmp_path / "junk.pt").write_bytes(b"junk")
    with pytest.raises(BenchError, match="not a readable"):
        load_checkpoint(tmp_path / "junk.pt")
    torch.save({"format": "other"}, tmp_path / "other.pt")
    with pytest.raises(BenchError, match="not a PudNet checkpoint"):
        load_checkpoint(tmp_path / "other.pt")


def test_method_file_in_the_evaluator(suite, tmp_path):
    ckpt = tmp_path / "m.pt"
    _train(suite, ckpt, 3)
    res = evaluate_episodes(METHOD, suite, out=tmp_path / "r.json", progress=False,
                            options={"ckpt": str(ckpt)})
    assert res.aggregates.n_ok == 3 and res.method.name == "pudnet"
    assert res.method.num_params > 0 and "3 steps" in res.method.trained_on
    assert res.method.training_budget.endswith(", 3 steps") and res.method.paper
    assert all(r.predict_time_s > 0 for r in res.records)
    with pytest.raises(BenchError, match="ckpt=PATH"):
        evaluate_episodes(METHOD, suite, out=tmp_path / "x.json", progress=False)


def test_method_needs_a_support_set(suite, tmp_path):
    from deepnetsbench.eval.methods import Task, load_method

    ckpt = tmp_path / "n.pt"
    _train(suite, ckpt, 1)
    m = load_method(METHOD, {"ckpt": str(ckpt)}).method
    m.setup(torch.device("cpu"))
    model = torch.nn.Linear(2, 2)
    task = Task(arch=None, dataset="x", num_classes=2, image_size=16, classes=["a", "b"],
                device=torch.device("cpu"))
    with pytest.raises(ValueError, match="support set"):
        m.predict(model, task)
    task.support = (torch.zeros(2, 3, 16, 16), torch.tensor([0, 1]))
    with pytest.raises(ValueError, match="different architecture"):
        m.predict(model, task)
