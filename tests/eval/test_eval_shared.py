"""The real thing, briefly: ``random`` on two real test architectures with CIFAR-10 images."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.shared


def test_random_on_cifar10_is_near_chance(shared_cifar10, shared_cifar10_root):
    from deepnetsbench.eval.runner import EvalConfig, evaluate
    from deepnetsbench.results import aggregate_mismatch, load_results
    from deepnetsbench.splits import DeepNets1M, generate_split

    root, ds = shared_cifar10_root, shared_cifar10  # decoded once per session (conftest)
    generate_split("test", 3, root=root)  # the real first test architectures, real widths
    split = DeepNets1M("test", root=root)
    out = root / "random.json"
    # Architectures 1 and 2 are the quickest of the three on a CPU; 256 images keep it short.
    cfg = EvalConfig(split="test", dataset="cifar10", root=root, archs=[1, 2], out=out,
                     eval_images=256, progress=False)
    res = evaluate("random", cfg)

    assert load_results(out).model_dump() == res.model_dump()
    assert aggregate_mismatch(res) is None
    assert res.dataset.name == "cifar10" and res.dataset.num_test == 10_000
    assert res.dataset.content_sha256 == ds.content_sha256
    assert res.split.sha256 == split.sha256 and res.split.num_items == 3
    p = res.protocol
    assert (p.num_classes, p.image_size, p.batch_size, p.bn_mode, p.eval_images) == (
        10, 32, 64, "batch", 256)
    # Chance is 10% on 10 balanced classes; an untrained net often predicts one class for
    # everything, scoring that class's share of the 256 images (10% +- 2%).
    assert 5.0 <= res.aggregates.top1.mean <= 20.0, res.aggregates.top1
    for rec in res.records:
        assert rec.status == "ok", rec.error
        assert 2.0 <= rec.top1 <= 30.0, rec.top1
        assert rec.top1 <= rec.top5 <= 100
        assert rec.num_params == split[rec.index].num_params >= 2_500_000
        assert rec.flops > 0 and rec.predict_time_s > 0
