"""The episode evaluator: support reaches the method, records/journal/results, speed-up hook."""

from __future__ import annotations

import json
import textwrap

import pytest
import torch

from deepnetsbench.episodes import EpisodeSuite, SupportTrainingSpeedup, evaluate_episodes
from deepnetsbench.errors import BenchError
from deepnetsbench.results import aggregate_mismatch, load_results

# A method that checks what it is given, logs it, and answers with a nearest-class-mean
# classifier on raw pixels: it is right above chance only if the label order is respected.
PROBE = textwrap.dedent('''
    import json, os
    import torch
    from torch import nn

    class Method:
        meta = {"name": "probe"}

        def predict(self, model, task):
            x, y = task.support
            assert x.shape[1:] == (3, task.image_size, task.image_size), x.shape
            assert int(y.min()) >= 0 and int(y.max()) < task.num_classes
            assert len(task.classes) == task.num_classes
            with open(os.environ["PROBE_LOG"], "a") as f:
                f.write(json.dumps({"n": len(y), "classes": task.classes,
                                    "counts": torch.bincount(y).tolist()}) + "\\n")
            return None  # keeps the model's own (random) parameters
''')


@pytest.fixture
def probe(tmp_path, monkeypatch):
    path = tmp_path / "probe.py"
    path.write_text(PROBE)
    monkeypatch.setenv("PROBE_LOG", str(tmp_path / "probe.log"))
    return path


def test_method_sees_the_support_set(intra_path, src, probe, tmp_path):
    suite = EpisodeSuite(intra_path, datasets=[src])
    out = tmp_path / "r.json"
    res = evaluate_episodes(str(probe), suite, out=out, progress=False, flops=False)
    log = [json.loads(line) for line in (tmp_path / "probe.log").read_text().splitlines()]
    assert len(log) == 5 and all(e["n"] == 12 and e["counts"] == [3, 3, 3, 3] for e in log)
    assert [e["classes"] for e in log] == [suite.episode("test", i).class_names for i in range(5)]
    assert res.suite == "episodes-intra" and res.protocol.num_classes == 4
    assert res.split.sha256 == suite.sha256 and res.split.num_items == 5
    assert res.dataset.name == "synsrc" and res.dataset.content_sha256 == src.content_sha256
    assert res.protocol.extra["target"] == "convnet4" and res.protocol.eval_images == 40
    assert [r.status for r in res.records] == ["ok"] * 5
    assert [r.name for r in res.records] == [f"test/{i:05d}" for i in range(5)]
    assert res.records[0].extra["classes"] == suite.episode("test", 0).classes
    assert load_results(out).aggregates.n == 5 and aggregate_mismatch(load_results(out)) is None


def test_resume_from_the_journal(intra_path, src, probe, tmp_path):
    suite = EpisodeSuite(intra_path, datasets=[src])
    out = tmp_path / "r.json"
    first = evaluate_episodes(str(probe), suite, out=out, limit=2, progress=False, flops=False)
    assert first.aggregates.n == 2 and not first.notes
    log = tmp_path / "probe.log"
    assert len(log.read_text().splitlines()) == 2
    evaluate_episodes(str(probe), suite, out=out, limit=4, progress=False, flops=False)
    assert len(log.read_text().splitlines()) == 4  # episodes 0-1 came from the journal
    with pytest.raises(BenchError, match="different run"):
        evaluate_episodes("kaiming", suite, out=out, limit=4, progress=False, flops=False)


def test_builtin_floor_and_val_split(intra_path, src, tmp_path):
    res = evaluate_episodes("kaiming", EpisodeSuite(intra_path, datasets=[src]), split="val",
                            out=tmp_path / "k.json", progress=False)
    assert res.aggregates.n == 2 and res.aggregates.n_ok == 2
    assert res.records[0].num_params > 0 and res.records[0].predict_time_s >= 0
    with pytest.raises(BenchError, match="not an evaluation split"):
        evaluate_episodes("kaiming", EpisodeSuite(intra_path, datasets=[src]), split="train",
                          out=tmp_path / "t.json", progress=False)


def test_inter_dataset_choice_and_targets(inter_path, src, grey, tmp_path):
    suite = EpisodeSuite(inter_path, datasets=[src, grey])
    res = evaluate_episodes("random", suite, dataset="syngrey", target="resnet18",
                            out=tmp_path / "r.json", progress=False, flops=False,
                            eval_images=16)
    assert res.suite == "episodes-inter" and res.dataset.name == "syngrey"
    assert res.protocol.num_classes == 5 and res.protocol.extra["target"] == "resnet18"
    assert res.records[0].extra["query_images"] == 16
    with pytest.raises(BenchError, match="not in the test split"):
        evaluate_episodes("random", suite, dataset="cifar10", out=tmp_path / "x.json",
                          progress=False)
    with pytest.raises(BenchError, match="unknown target"):
        evaluate_episodes("random", suite, target="convnet4x", out=tmp_path / "y.json",
                          progress=False)


def test_target_must_be_declared(intra_path, src, tmp_path):
    with pytest.raises(BenchError, match="not declared"):  # the intra fixture: convnet4 only
        evaluate_episodes("random", EpisodeSuite(intra_path, datasets=[src]),
                          target="resnet18", out=tmp_path / "y.json", progress=False)


def test_method_without_support_use_fails_per_episode(intra_path, src, tmp_path):
    bad = tmp_path / "bad.py"
    bad.write_text("class Method:\n    def predict(self, model, task):\n"
                   "        raise RuntimeError('boom')\n")
    res = evaluate_episodes(str(bad), EpisodeSuite(intra_path, datasets=[src]),
                            out=tmp_path / "b.json", progress=False, flops=False, limit=2)
    assert [r.status for r in res.records] == ["failed", "failed"]
    assert "boom" in res.records[0].error and res.aggregates.top1.mean == 0.0


def test_speedup_hook_trains_on_the_support_set(intra_path, src, tmp_path):
    torch.manual_seed(0)
    hook = SupportTrainingSpeedup(trainer="gc", budget="2ep", eval_every=1.0, batch_size=4)
    res = evaluate_episodes("kaiming", EpisodeSuite(intra_path, datasets=[src]),
                            out=tmp_path / "s.json", progress=False, flops=False, limit=1,
                            hooks=[hook])
    rec = res.records[0]
    assert rec.status == "ok" and rec.speedup is not None, rec.extra
    assert rec.speedup.trainer == "gc-support" and rec.speedup.target_top1 == rec.top1
    assert rec.speedup.value is not None and rec.speedup.budget == "2ep"
    assert rec.extra["speedup_train_data"] == "episode support set (12 images)"
    assert rec.extra["episode"] == 0  # the evaluator's own extras are kept


def test_failed_setup_leaves_no_results_file(intra_path, src, tmp_path):
    bad = tmp_path / "nosetup.py"
    bad.write_text("class Method:\n    def setup(self, device):\n        raise OSError('no weights')\n"
                   "    def predict(self, model, task):\n        return None\n")
    out = tmp_path / "n.json"
    with pytest.raises(BenchError, match="no weights"):
        evaluate_episodes(str(bad), EpisodeSuite(intra_path, datasets=[src]), out=out,
                          progress=False)
    assert not out.exists()
