"""PREDEFINED: the official split first (published counts), then torchvision, adjusted for
32 px inputs like the official ``adjust_net``."""

import pytest
import torch
from torch import nn

from deepnetsbench.splits.predefined import (
    DEEPNETS_VIT,
    build_predefined,
    predefined_names,
    runnable_size,
)

pytestmark = pytest.mark.usefixtures("one_thread")


def count(name, num_classes, size):
    return sum(p.numel() for p in build_predefined(name, num_classes, size, "meta").parameters())


def test_official_split_comes_first():
    names = predefined_names()
    assert names[:2] == ["resnet50", "deepnets_vit"]
    assert len(names) == len(set(names)) > 70


@pytest.mark.parametrize("name,classes,size,published", [
    ("resnet50", 10, 32, 23_520_842), ("resnet50", 1000, 224, 25_557_032),
    ("deepnets_vit", 10, 32, 1_012_234), ("deepnets_vit", 1000, 224, 1_244_392),
])
def test_published_parameter_counts(name, classes, size, published):
    assert count(name, classes, size) == published


def test_resnet50_small_image_adjustment():
    torch.manual_seed(0)
    plain = build_predefined("resnet50", 10, 224)
    torch.manual_seed(0)
    small = build_predefined("resnet50", 10, 32)
    conv = small.conv1
    assert conv.kernel_size == (3, 3) and conv.stride == (1, 1) and conv.padding == (1, 1)
    torch.testing.assert_close(conv.weight, plain.conv1.weight[:, :, 2:5, 2:5])  # the centre
    assert isinstance(small.maxpool, nn.Identity) and isinstance(plain.maxpool, nn.MaxPool2d)
    assert plain.conv1.kernel_size == (7, 7) and plain.conv1.stride == (2, 2)
    out = {}
    small.layer4.register_forward_hook(lambda _m, _i, o: out.update(side=o.shape[-1]))
    small.eval()(torch.randn(1, 3, 32, 32))
    assert out["side"] == 4  # not 1x1 as the unadjusted model at 32 px


def test_deepnets_vit_is_the_official_net():
    g, a = DEEPNETS_VIT.genotype, DEEPNETS_VIT.args
    assert g.normal == (("none", 0), ("msa", 1)) and g.reduce == (("none", 0), ("avg_pool_3x3", 1))
    assert (a.C, a.n_cells, a.preproc, a.C_mult, a.norm, a.is_vit) == (128, 12, False, 1,
                                                                      "bn-track", True)
    model = build_predefined("deepnets_vit", 10, 32, "meta")
    assert [n for n, _ in model.classifier.named_children()] == ["0"]


def _strides(model, prefix):
    return [m.stride for n, m in model.named_modules()
            if n.startswith(prefix) and isinstance(m, nn.Conv2d)]


def test_adjust_net_rules_of_the_other_families():
    small = lambda n: build_predefined(n, 10, 32, "meta")  # noqa: E731
    large = lambda n: build_predefined(n, 10, 224, "meta")  # noqa: E731
    d = small("densenet121")
    assert d.features[0].kernel_size == (3, 3) and d.features[0].stride == (1, 1)
    assert isinstance(d.features[3], nn.Identity)
    assert set(_strides(small("mobilenet_v2"), "features.")[:8]) == {(1, 1)}
    assert (2, 2) in _strides(large("mobilenet_v2"), "features.0")
    assert not any(isinstance(m, nn.MaxPool2d) for m in small("vgg11").features[:10])
    a = small("alexnet")
    assert a.features[0].stride == (1, 1) and isinstance(a.features[2], nn.Identity)
    assert small("mnasnet0_5").layers[0].stride == (1, 1)
    assert small("convnext_tiny").features[0][0].stride == (1, 1)
    # ShuffleNetV2, GoogLeNet: the pool goes, the first conv keeps its stride (the official
    # code sets the stride on the conv's wrapper module, where it has no effect)
    s = small("shufflenet_v2_x0_5")
    assert isinstance(s.maxpool, nn.Identity) and s.conv1[0].stride == (2, 2)
    g = small("googlenet")
    assert isinstance(g.maxpool1, nn.Identity) and g.conv1.conv.stride == (2, 2)
    # large inputs and families without a rule are left as torchvision builds them
    assert isinstance(large("densenet121").features[3], nn.MaxPool2d)
    assert small("efficientnet_b0").features[0][0].stride == (2, 2)


def test_adjusted_models_run_at_32px_and_fallback_sizes_remain():
    assert runnable_size("alexnet", 10, 32) == 32  # runs thanks to the adjustment
    assert runnable_size("inception_v3", 10, 32) > 32
