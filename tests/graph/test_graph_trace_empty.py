"""trace_graph runs the model on an empty batch: the same graph as tracing one image.

Autograd records the same functions whatever the batch size, except fused attention
(which trace_graph replaces by the plain formula during that pass); a model that cannot
take an empty batch is traced on one image.
"""

import pytest
import torch
import torch.nn.functional as F
from graph_golden import load, spec_from_official
from torch import nn

from deepnetsbench.graph import graph_from_spec, trace_graph
from deepnetsbench.space import build_model
from deepnetsbench.space.sampler import SPLIT_CONFIGS, sample_arch
from deepnetsbench.splits.predefined import build_predefined, runnable_size


@pytest.fixture(autouse=True)
def _single_thread(one_thread):
    yield


def _batches(model):
    """The batch sizes the model's forward passes see (appended to the returned list)."""
    seen = []
    model.register_forward_pre_hook(lambda m, args: seen.append(args[0].shape[0]))
    return seen


def _both(model, size, device="cpu"):
    seen = _batches(model)
    empty = trace_graph(model, size)
    used_empty = seen[:1] == [0] and len(seen) == 1
    one = trace_graph(model, size, example=torch.randn(1, 3, size, size, device=device))
    return empty, one, used_empty


def test_deepnets_nets_trace_on_an_empty_batch():
    for split in sorted(SPLIT_CONFIGS):
        for i in range(4):
            spec = sample_arch(SPLIT_CONFIGS[split], i).with_args(C=8 + 4 * (i % 4), fc_dim=16)
            empty, one, used_empty = _both(build_model(spec, 10, 32), 32)
            assert used_empty, f"{split}/{i}: fell back to one image"
            assert empty.equals(one) and empty.equals(graph_from_spec(spec, 10, 32)), \
                f"{split}/{i}"


def test_official_specs_trace_on_an_empty_batch():
    nets = load("nets.json")
    if nets is None:
        pytest.skip("tests/fixtures/ppuda/nets.json is absent")
    n = 0
    for rec in nets:
        if rec["id"] == "predefined_resnet50":
            continue
        spec = spec_from_official(rec["net_args"]).with_args(C=8, fc_dim=16)
        if spec.args.is_vit:
            spec = spec.with_args(C=16)  # 8 heads
        empty, one, used_empty = _both(build_model(spec, 10, 32), 32)
        assert used_empty and empty.equals(one), rec["id"]
        n += 1
    assert n >= 50


@pytest.mark.parametrize("name", ["resnet50", "vit_b_16", "swin_t", "maxvit_t", "deepnets_vit",
                                  "efficientnet_b0", "densenet121", "inception_v3",
                                  "squeezenet1_0", "convnext_tiny"])
def test_torchvision_models_trace_on_an_empty_batch(name):
    """Attention of both kinds (nn.MultiheadAttention in ViT, the fused call in ours),
    shifted windows, squeeze-excitation, concatenations, auxiliary-free Inception."""
    size = runnable_size(name, 10, 32)
    try:
        model = build_predefined(name, 10, size, device="meta")
        device = "meta"
    except Exception:  # noqa: BLE001 - some constructors initialise with real data
        model, device = build_predefined(name, 10, size), "cpu"
    empty, one, used_empty = _both(model, size, device)
    assert used_empty, "fell back to one image"
    assert empty.equals(one)


def test_fused_attention_called_by_keywords_is_seen_through():
    class Attn(nn.Module):
        def __init__(self):
            super().__init__()
            self.qkv = nn.Linear(3, 24)
            self.out = nn.Linear(8, 10)

        def forward(self, x):
            q, k, v = self.qkv(x.flatten(2).transpose(1, 2)).unflatten(-1, (3, 2, 4)).unbind(2)
            a = F.scaled_dot_product_attention(query=q.transpose(1, 2), key=k.transpose(1, 2),
                                               value=v.transpose(1, 2))
            return self.out(a.transpose(1, 2).flatten(2).mean(1))

    empty, one, used_empty = _both(Attn(), 4)
    assert used_empty and empty.equals(one)


def test_a_model_that_cannot_take_an_empty_batch_is_traced_on_one_image():
    class Flat(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv2d(3, 4, 3, padding=1)
            self.fc = nn.Linear(4 * 8 * 8, 10)

        def forward(self, x):
            return self.fc(self.conv(x).view(x.size(0), -1))

    model = Flat()
    seen = _batches(model)
    g = trace_graph(model, 8)
    assert seen == [0, 1]
    assert g.equals(trace_graph(model, 8, example=torch.randn(1, 3, 8, 8)))
    assert g.param_names[-2:] == ["fc.weight", "fc.bias"]
