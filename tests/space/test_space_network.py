import pytest
import torch

from deepnetsbench.space import ArchSpec, Genotype, NetArgs, build_model
from deepnetsbench.space.sampler import split_item


def _spec(normal, reduce=None, **args):
    reduce = reduce or normal
    steps = len(normal) // 2
    concat = tuple(range(2, steps + 2))
    return ArchSpec(Genotype(tuple(normal), concat, tuple(reduce), concat), NetArgs(**args))


@pytest.mark.parametrize("split", ["test", "deep", "dense", "bnfree"])
def test_generated_nets_run_forward_and_backward(split):
    spec = split_item(split, 0).with_args(C=8)
    model = build_model(spec, num_classes=7, image_size=32)
    out = model(torch.randn(2, 3, 32, 32))
    assert out.shape == (2, 7)
    out.sum().backward()


@pytest.mark.parametrize("op", ["msa", "cse", "conv_7x1_1x7", "dil_conv_5x5", "skip_connect",
                                "avg_pool_3x3", "max_pool_3x3", "sep_conv_5x5"])
def test_every_op_builds_in_normal_and_reduction_cells(op):
    spec = _spec([(op, 0), ("conv_3x3", 1)], C=8, n_cells=4, is_vit=op == "msa")
    for size in (32, 28):
        assert build_model(spec, 10, size)(torch.randn(2, 3, size, size)).shape == (2, 10)


def test_imagenet_resolution_and_flatten_head():
    spec = _spec([("conv_3x3", 0), ("sep_conv_3x3", 1)], C=8, n_cells=4, glob_avg=False,
                 stem_type=1, fc_layers=2, fc_dim=16)
    assert build_model(spec, 1000, 224)(torch.randn(1, 3, 224, 224)).shape == (1, 1000)


def test_invalid_genotypes_are_refused():
    with pytest.raises(ValueError):
        build_model(_spec([("none", 0), ("none", 1)]))
    with pytest.raises(ValueError):
        build_model(_spec([("conv_3x3", 5), ("conv_3x3", 1)]))
