"""Speedup and fine-tuning as evaluator extras, end to end on tiny mock networks."""

import pytest
import torch

from deepnetsbench.data import synthetic_dataset
from deepnetsbench.eval.methods import load_method
from deepnetsbench.eval.runner import EvalConfig, open_mock, run_evaluation
from deepnetsbench.training.hooks import FinetuneHook, SpeedupHook, TrainData
from deepnetsbench.training.trainer import Budget

torch.set_num_threads(1)


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    root = tmp_path_factory.mktemp("root")
    suite, _, size = open_mock("test", root=root)
    images = synthetic_dataset(10, 32, n_train=128, n_test=64, seed=0)
    return root, suite, images, size


def _run(setup, tmp_path, hooks, archs=(1,)):
    root, suite, images, size = setup
    cfg = EvalConfig(mock=True, root=root, out=tmp_path / "r.json", archs=list(archs),
                     progress=False)
    return run_evaluation(load_method("kaiming"), suite, images, cfg, size, hooks=hooks)


def test_speedup_recorded_and_cached(setup, tmp_path):
    hook = SpeedupHook(trainer="gc", budget=Budget(epochs=1), cache_root=tmp_path / "curves",
                       eval_every=0.5, data=TrainData())
    res = _run(setup, tmp_path, [hook])
    rec = res.records[0]
    assert rec.status == "ok", rec.error
    sp = rec.speedup
    assert sp is not None and sp.trainer == "gc" and sp.target_top1 == rec.top1
    assert sp.train_seconds is not None and sp.value == pytest.approx(sp.train_seconds / rec.predict_time_s)
    assert res.aggregates.speedup_gmean is not None
    cached = list((tmp_path / "curves").rglob("*.json"))
    assert len(cached) == 1
    # second run: the curve comes from the cache (training would change its mtime)
    mtime = cached[0].stat().st_mtime_ns
    (tmp_path / "again").mkdir()
    res2 = _run(setup, tmp_path / "again", [hook])
    assert res2.records[0].speedup.train_seconds == sp.train_seconds
    assert cached[0].stat().st_mtime_ns == mtime


def test_speedup_lower_bound_when_never_reached(setup, tmp_path, monkeypatch):
    from deepnetsbench.training import curve as curve_mod

    hook = SpeedupHook(budget=Budget(epochs=0.5), eval_every=0.5)
    real = curve_mod.time_to_accuracy

    def unreachable(curve, target, **kw):  # a target above anything the curve reached
        return real(curve, 101.0)

    monkeypatch.setattr(curve_mod, "time_to_accuracy", unreachable)
    rec = _run(setup, tmp_path, [hook]).records[0]
    assert rec.speedup.lower_bound is True and rec.speedup.value > 0


def test_finetune_reports_both_inits(setup, tmp_path):
    hook = FinetuneHook(epochs=0.5, noise=3e-5)
    rec = _run(setup, tmp_path, [hook]).records[0]
    ft = rec.finetune
    for key in ("top1", "from_random_top1", "initial_top1", "epochs"):
        assert key in ft
    assert 0 <= ft["top1"] <= 100 and ft["epochs"] == 0.5
