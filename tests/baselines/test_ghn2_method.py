"""GHN-2 as an evaluator method plugin: loading, options, graphs, post-processing."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
import torchvision

from baselines.ghn2.checkpoint import save_checkpoint
from baselines.ghn2.model import GHN2, GHN2Config
from deepnetsbench.errors import BenchError
from deepnetsbench.eval.methods import Task, load_method
from deepnetsbench.graph import graph_from_spec
from deepnetsbench.space import SPLIT_CONFIGS, build_model, sample_arch

METHOD = Path(__file__).resolve().parents[2] / "baselines" / "ghn2" / "method.py"
TINY = GHN2Config(hid=8, max_shape=(8, 8, 3, 3))

@pytest.fixture()
def ckpt(tmp_path) -> Path:
    torch.manual_seed(0)
    return save_checkpoint(tmp_path / "ghn.pt", GHN2(TINY),
                           data={"dataset": "cifar10", "train_images": 45000},
                           archs={"source": "sampler"},
                           train={"step": 7, "elapsed_s": 1230.0, "config": {"device": "cpu"}})


def task_for(model, spec=None, graph=None, seed=0) -> Task:
    arch = SimpleNamespace(name="x", index=0, spec=spec, graph=graph, image_size=32,
                           graph_for=lambda c, s: graph)
    return Task(arch=arch, dataset="cifar10", num_classes=10, image_size=32,
                classes=[str(i) for i in range(10)], device=torch.device("cpu"), seed=seed)


def test_plugin_loads_and_fills_a_generated_net(ckpt):
    loaded = load_method(str(METHOD), {"ckpt": str(ckpt)})
    assert loaded.meta.name == "ghn2" and loaded.meta.num_params == GHN2(TINY).num_params
    assert "7 steps" in loaded.meta.trained_on
    assert loaded.meta.training_budget == "20 min on cpu, 7 steps"  # shown with the scores
    assert loaded.meta.paper == "https://arxiv.org/abs/2110.13100"
    loaded.setup(torch.device("cpu"))
    spec = sample_arch(SPLIT_CONFIGS["test"], 0)
    model = build_model(spec)
    before = {n: p.clone() for n, p in model.named_parameters()}
    assert loaded.method.predict(model, task_for(model, spec, graph_from_spec(spec))) is None
    assert all(not torch.equal(p, before[n]) for n, p in model.named_parameters())


def test_mismatched_task_graph_is_replaced_by_tracing(ckpt):
    method = load_method(str(METHOD), {"ckpt": str(ckpt)}).method
    model = torchvision.models.resnet18(num_classes=10)
    wrong = graph_from_spec(sample_arch(SPLIT_CONFIGS["test"], 0))
    before = {n: p.clone() for n, p in model.named_parameters()}
    method.predict(model, task_for(model, None, wrong))
    assert all(not torch.equal(p, before[n]) for n, p in model.named_parameters())


def test_postprocessing_options(ckpt):
    model = torchvision.models.resnet18(num_classes=10)
    plain = load_method(str(METHOD), {"ckpt": str(ckpt)}).method
    post = load_method(str(METHOD), {"ckpt": str(ckpt), "noise": 3e-5, "orth": True,
                                     "start_layer": 5}).method
    assert post.meta.name == "ghn2+noise+orth" and "orthogonal" in post.meta.description
    a = torchvision.models.resnet18(num_classes=10)
    plain.predict(a, task_for(a))
    post.predict(model, task_for(model))
    w = model.layer4[0].conv2.weight.reshape(512, -1)  # > 64 channels, past layer 5
    torch.testing.assert_close(w @ w.T, torch.eye(512), atol=1e-4, rtol=0)
    torch.testing.assert_close(model.conv1.weight, a.conv1.weight)  # layer 0: untouched


def test_missing_checkpoint_and_bad_options_are_one_line_errors(tmp_path):
    with pytest.raises(BenchError, match="not found"):
        load_method(str(METHOD), {"ckpt": str(tmp_path / "nope.pt")})
    with pytest.raises(BenchError, match="does not accept"):
        load_method(str(METHOD), {"ckpt": "random", "bogus": 1})
    with pytest.raises(BenchError, match="noise"):
        load_method(str(METHOD), {"ckpt": "random", "noise": -1})


@pytest.mark.parametrize("preset", ["ghn1", "mlp"])
def test_plugin_reads_official_checkpoints_of_each_kind(tmp_path, preset):
    torch.manual_seed(0)
    ghn = GHN2(GHN2Config.preset(preset).replace(hid=8, max_shape=(8, 8, 3, 3)))
    cfg = ghn.config
    path = tmp_path / f"{preset}_cifar10.pt"
    torch.save({"state_dict": ghn.state_dict(), "epoch": 299,
                "config": {k: getattr(cfg, k) for k in ("max_shape", "num_classes", "hypernet",
                                                        "decoder", "weight_norm", "ve",
                                                        "layernorm", "hid")}}, path)
    loaded = load_method(str(METHOD), {"ckpt": str(path)})
    assert loaded.meta.name == preset and loaded.meta.version == "official"
    assert "official ppuda checkpoint" in loaded.meta.description
    assert path.name in loaded.meta.trained_on


def test_random_ghn_for_smoke_tests():
    loaded = load_method(str(METHOD), {"ckpt": "random"})
    assert loaded.meta.version == "1-untrained"
