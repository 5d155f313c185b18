"""The cell operations against the official definitions (deepnets1m-official.md section 2)."""

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from deepnetsbench.space.ops import CSE, MSA, FactorizedReduce, Zero, bn_layer, make_op
from deepnetsbench.space.primitives import PRIMITIVES, parse_op

pytestmark = pytest.mark.usefixtures("one_thread")


def n_params(m: nn.Module) -> int:
    return sum(p.numel() for p in m.parameters())


@pytest.mark.parametrize("c", [8, 16, 32])
def test_parameter_formulas_of_every_op(c):
    """Per-op counts of the spec's table (c_in = c_out = c, BN on)."""
    expect = {
        "none": 0, "max_pool_3x3": 0, "avg_pool_3x3": 0,
        "sep_conv_3x3": 2 * (9 * c + c * c + 2 * c), "sep_conv_5x5": 2 * (25 * c + c * c + 2 * c),
        "dil_conv_3x3": 9 * c + c * c + 2 * c, "dil_conv_5x5": 25 * c + c * c + 2 * c,
        "conv_1x1": c * c + 2 * c, "conv_3x3": 9 * c * c + 2 * c, "conv_5x5": 25 * c * c + 2 * c,
        "conv_7x7": 49 * c * c + 2 * c, "conv_7x1_1x7": 14 * c * c + 2 * c,
        "msa": 6 * c * c + 7 * c, "cse": c * c + c // 2 + c,
    }
    for op, count in expect.items():
        for stride in (1, 2):
            assert n_params(make_op(op, c, c, stride, "bn")) == count, (op, stride)
    assert n_params(make_op("skip_connect", c, c, 1, "bn")) == 0
    assert n_params(make_op("skip_connect", c, c, 2, "bn")) == c * c + 2 * c  # FactorizedReduce


def test_msa_width_not_divisible_by_eight():
    c, inner = 20, 16  # 8 heads of 20 // 8 = 2 channels
    assert n_params(MSA(c)) == 4 * inner * c + 2 * c * c + 7 * c
    with pytest.raises(ValueError, match="8 channels"):
        MSA(7)


def test_bn_variants():
    assert isinstance(bn_layer(4, None), nn.Identity)
    plain, track = bn_layer(4, "bn"), bn_layer(4, "bn-track")
    assert not plain.track_running_stats and plain.running_mean is None
    assert set(plain.state_dict()) == {"weight", "bias"}
    assert track.track_running_stats and "running_mean" in track.state_dict()
    with pytest.raises(ValueError, match="norm"):
        bn_layer(4, "bnorm")
    # BN-free ops keep their layer indices (Identity in place of BatchNorm2d)
    keys = set(make_op("sep_conv_3x3", 8, 8, 1, None).state_dict())
    assert keys == {"op.1.weight", "op.2.weight", "op.5.weight", "op.6.weight"}


def test_official_parameter_names():
    assert set(make_op("conv_7x1_1x7", 4, 6, 1, "bn").state_dict()) == {
        "op.1.weight", "op.2.weight", "op.3.weight", "op.3.bias"}
    conv = make_op("conv_7x1_1x7", 4, 6, 2, None).op
    assert conv[1].weight.shape == (4, 4, 1, 7) and conv[2].weight.shape == (6, 4, 7, 1)
    assert conv[1].stride == (1, 2) and conv[2].stride == (2, 1)
    assert set(make_op("dil_conv_5x5", 4, 4, 1, "bn").state_dict()) == {
        "op.1.weight", "op.2.weight", "op.3.weight", "op.3.bias"}
    assert set(MSA(16).state_dict()) == {
        "to_qkv.weight", "to_out.0.weight", "to_out.0.bias", "ln1.weight", "ln1.bias",
        "ln2.weight", "ln2.bias", "ff.net.0.weight", "ff.net.0.bias", "ff.net.3.weight",
        "ff.net.3.bias"}
    assert set(CSE(8).state_dict()) == {"fc1.weight", "fc1.bias", "fc2.weight", "fc2.bias"}
    assert set(FactorizedReduce(4, 8, "bn").state_dict()) == {
        "conv_1.weight", "conv_2.weight", "bn.weight", "bn.bias"}


@pytest.mark.parametrize("op", PRIMITIVES[1:])
@pytest.mark.parametrize("stride", [1, 2])
def test_output_shapes(op, stride):
    x = torch.randn(2, 8, 8, 8)
    assert make_op(op, 8, 8, stride, "bn")(x).shape == (2, 8, 8 // stride, 8 // stride)


def test_dilated_conv_padding_keeps_the_size():
    for k, pad in ((3, 2), (5, 4)):
        conv = make_op(f"dil_conv_{k}x{k}", 4, 4, 1, None).op[1]
        assert conv.dilation == (2, 2) and conv.padding == (pad, pad) and conv.groups == 4


def test_msa_matches_a_plain_transformer_block(one_thread):
    torch.manual_seed(0)
    m = MSA(16).eval()
    x = torch.randn(2, 16, 3, 3)
    t = x.flatten(2).transpose(1, 2)  # (B, N, C)
    q, k, v = F.linear(F.layer_norm(t, (16,), m.ln1.weight, m.ln1.bias),
                       m.to_qkv.weight).chunk(3, dim=-1)
    heads = [F.scaled_dot_product_attention(*(u[..., 2 * h:2 * h + 2] for u in (q, k, v)))
             for h in range(8)]
    y = F.linear(torch.cat(heads, dim=-1), m.to_out[0].weight, m.to_out[0].bias) + t
    h = F.layer_norm(y, (16,), m.ln2.weight, m.ln2.bias)
    h = F.linear(F.gelu(F.linear(h, m.ff.net[0].weight, m.ff.net[0].bias)),
                 m.ff.net[3].weight, m.ff.net[3].bias)
    ref = (y + h).transpose(1, 2).reshape(2, 16, 3, 3)
    torch.testing.assert_close(m(x), ref, atol=1e-5, rtol=1e-5)
    # stride: the block runs at full resolution, the result is subsampled
    m.stride = 2
    torch.testing.assert_close(m(x), ref[:, :, ::2, ::2], atol=1e-5, rtol=1e-5)


class _PlainMSA(MSA):
    """The block with the attention written out: softmax(q k^T * scale) v per head."""

    def forward(self, x):
        t = x.flatten(2).transpose(1, 2)
        q, k, v = (u.unflatten(-1, (self.heads, -1)).transpose(1, 2)
                   for u in self.to_qkv(self.ln1(t)).chunk(3, dim=-1))
        a = (torch.matmul(q, k.transpose(-2, -1)) * self.scale).softmax(dim=-1)
        y = self.to_out(torch.matmul(a, v).transpose(1, 2).flatten(2)) + t
        y = self.ff(self.ln2(y)) + y
        return y.transpose(1, 2).reshape(x.shape)[:, :, ::self.stride, ::self.stride]


@pytest.mark.parametrize("stride", [1, 2])
def test_msa_fused_attention_equals_the_plain_formula(stride, one_thread):
    """MSA computes attention with scaled_dot_product_attention: the same outputs and
    gradients (input and every parameter) as the formula written out."""
    torch.manual_seed(0)
    fused, plain = MSA(16, stride=stride), _PlainMSA(16, stride=stride)
    plain.load_state_dict(fused.state_dict())
    x = torch.randn(2, 16, 6, 6, requires_grad=True)
    a, b = plain(x), fused(x)
    torch.testing.assert_close(b, a, rtol=1e-5, atol=1e-6)
    ga = torch.autograd.grad(a.square().sum(), [x, *plain.parameters()])
    gb = torch.autograd.grad(b.square().sum(), [x, *fused.parameters()])
    for u, v in zip(ga, gb):
        torch.testing.assert_close(v, u, rtol=1e-4, atol=1e-5)


def test_ops_run_on_an_empty_batch():
    """Graph tracing runs the network on zero images (deepnetsbench.graph.trace)."""
    for m in (MSA(16, stride=2), CSE(8)):
        x = torch.empty(0, m.to_qkv.in_features if isinstance(m, MSA) else 8, 4, 4)
        assert m(x).shape[0] == 0


def test_cse_is_a_hardswish_gate_applied_after_pooling():
    torch.manual_seed(0)
    m = CSE(8)
    x = torch.randn(2, 8, 4, 4)
    s = x.mean((2, 3))
    gate = F.hardswish(m.fc2(F.relu(m.fc1(s))))
    torch.testing.assert_close(m(x), x * gate[:, :, None, None])
    m.stride = 2
    torch.testing.assert_close(m(x), (x * gate[:, :, None, None])[:, :, ::2, ::2])


def test_factorized_reduce_halves_and_pads_only_odd_sides():
    torch.manual_seed(0)
    fr = FactorizedReduce(3, 8, None)
    x = torch.randn(1, 3, 6, 6)
    y = fr(x)
    r = F.relu(x)
    torch.testing.assert_close(y, torch.cat([fr.conv_1(r), fr.conv_2(r[:, :, 1:, 1:])], 1))
    assert fr(torch.randn(1, 3, 7, 7)).shape == (1, 8, 4, 4)
    with pytest.raises(ValueError, match="even"):
        FactorizedReduce(3, 7, None)


def test_zero_and_parse_op():
    assert not Zero(2)(torch.ones(1, 1, 4, 4)).any()
    assert parse_op("conv_7x1_1x7") == ("conv2", 7)
    assert parse_op("sep_conv_5x5") == ("sep_conv", 5)
    assert parse_op("max_pool_3x3") == ("max_pool", 3)
    assert parse_op("skip_connect") == ("skip_connect", 0) and parse_op("msa") == ("msa", 0)
