"""Curve cache: a second request is served from disk without training again."""

import json

import torch
from torch import nn

from deepnetsbench.training.cache import CurveCache, CurveKey, config_hash, hardware_id
from deepnetsbench.training.trainer import Budget, TrainConfig, train

torch.set_num_threads(1)


def test_cache_hit_on_second_run(tmp_path):
    g = torch.Generator().manual_seed(0)
    x, y = torch.randn(64, 3, 4, 4, generator=g), torch.randint(0, 3, (64,), generator=g)
    config = TrainConfig(batch_size=16, augment=False)
    budget = Budget(epochs=1)
    hw = hardware_id("cpu")
    key = CurveKey.make("tiny-mlp", "sha256-of-data", config, hw, budget, eval_every=0.5)
    cache = CurveCache(tmp_path)
    calls = []

    def run():
        calls.append(1)
        torch.manual_seed(0)
        model = nn.Sequential(nn.Flatten(), nn.Linear(48, 3))
        return train(model, x, y, x, y, config, "cpu", budget, eval_every=0.5)

    assert cache.get(key) is None
    first = cache.get_or_train(key, run)
    second = cache.get_or_train(key, run)
    assert len(calls) == 1
    assert second == first
    assert cache.path(key).exists()

    # any part of the key changes the entry
    other = CurveKey.make("tiny-mlp", "sha256-of-data", config, "cuda:Other GPU", budget, 0.5)
    assert cache.get(other) is None
    longer = CurveKey.make("tiny-mlp", "sha256-of-data", config, hw, Budget(epochs=2), 0.5)
    assert cache.get(longer) is None
    gc = CurveKey.make("tiny-mlp", "sha256-of-data",
                       TrainConfig(batch_size=16, augment=False, optimizer="gc"), hw, budget, 0.5)
    assert gc.config != key.config and cache.get(gc) is None

    # a file whose stored key does not match, or that is corrupt, is a miss
    path = cache.path(key)
    d = json.loads(path.read_text())
    d["key"]["arch"] = "something-else"
    path.write_text(json.dumps(d))
    assert cache.get(key) is None
    path.write_text("{truncated")
    assert cache.get(key) is None


def test_hardware_id_and_config_hash():
    hw = hardware_id("cpu")
    assert hw.startswith("cpu:") and hw.endswith(f" x{torch.get_num_threads()}")
    a = config_hash(TrainConfig())
    assert a == config_hash(TrainConfig().to_dict()) and len(a) == 16
    assert a != config_hash(TrainConfig(lr=0.05))
