"""The released training recipe, piece by piece: widths, split, augmentation, epochs, loss,
optimiser and schedule defaults (docs/baselines.md, "Training")."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from baselines.ghn2.archs import build_net, sample_width, width_grid
from baselines.ghn2.data import ImageStream, random_crop_flip, split_train_val
from baselines.ghn2.model import GHN2, GHN2Config
from baselines.ghn2.step import net_losses
from baselines.ghn2.trainer import TrainConfig
from deepnetsbench.data import synthetic_dataset
from deepnetsbench.graph.derive import count_params
from deepnetsbench.space import SPLIT_CONFIGS, sample_arch

WIDTHS = width_grid(32, 128, 16)
FC_DIMS = width_grid(64, 512, 64)


def test_defaults_are_the_released_recipe():
    cfg = TrainConfig()
    assert (cfg.meta_batch, cfg.batch_size, cfg.epochs, cfg.lr, cfg.weight_decay) == (
        8, 64, 300, 1e-3, 1e-5)
    assert cfg.grad_clip == 5.0 and cfg.max_nodes == 2200 and cfg.gamma == 0.1
    assert [round(m * 300) for m in cfg.milestones] == [200, 250]
    assert width_grid(*cfg.width_range, cfg.width_step).tolist() == [32, 48, 64, 80, 96, 112, 128]
    assert width_grid(*cfg.fc_dim_range, cfg.fc_dim_step).tolist() == list(range(64, 513, 64))


def tier(spec) -> int:
    """How many of the smallest widths a net may draw (the released loader's rule, at the
    size the official meta records: C = 32, 10 classes, 32 px)."""
    m, a = count_params(spec.with_args(C=32), 10, 32) / 1e6, spec.args
    if (m > 0.8 or not a.glob_avg or a.n_cells > 12
            or any(op in ("conv_5x5", "conv_7x7") for op in spec.genotype.ops())):
        return 1
    return 2 if (m > 0.4 or a.n_cells > 10) else 3 if (m > 0.2 or a.n_cells > 8) else 7


def test_width_sampling_follows_the_released_rule():
    rng = np.random.default_rng(0)
    tiers, draws = Counter(), Counter()
    big_fc_narrow = 0
    for i in range(150):
        spec = sample_arch(SPLIT_CONFIGS["train"], i).with_args(C=80)  # stored C is ignored
        k = tier(spec)
        tiers[k] += 1
        for _ in range(8):
            c, f = sample_width(spec, rng, WIDTHS, FC_DIMS)
            assert c in WIDTHS[:k], (i, k, c)
            assert f in FC_DIMS
            if f > 256:
                assert k == 7 and c <= 64, (i, k, c, f)
                big_fc_narrow += 1
            draws[(k, c)] += 1
    assert set(tiers) == {1, 2, 3, 7}, tiers  # every tier occurs in 150 train nets
    assert {c for (k, c) in draws if k == 7} == set(WIDTHS.tolist())
    assert big_fc_narrow > 0


def test_split_is_the_last_tenth_or_the_last_50_per_class():
    tr, va = split_train_val(50_000)
    assert tr.tolist() == list(range(45_000)) and va.tolist() == list(range(45_000, 50_000))
    tr, va = split_train_val(100, 7)
    assert va.tolist() == list(range(93, 100))
    labels = np.repeat(np.arange(3), 60)[np.random.default_rng(0).permutation(180)]
    tr, va = split_train_val(180, labels=labels)
    assert len(va) == 150 and Counter(labels[va].tolist()) == {0: 50, 1: 50, 2: 50}
    for c in range(3):  # the last 50 of each class
        assert set(np.flatnonzero(labels == c)[-50:]) <= set(va.tolist())


def test_crop_pads_black_before_normalisation():
    ds = synthetic_dataset(image_size=8, n_train=16, n_test=4, seed=0)
    stream = ImageStream(ds, np.arange(16), 16, 8, torch.device("cpu"), True, 0)
    x, _ = stream.next()
    black = stream.normalise(torch.zeros(1, 3, 1, 1)).view(3)
    # some image was shifted: its border holds exactly the normalised black pixel
    border = torch.cat([x[:, :, 0, :], x[:, :, -1, :], x[:, :, :, 0], x[:, :, :, -1]], dim=2)
    hits = (border - black.view(1, 3, 1)).abs().amax(1) < 1e-6
    assert hits.any()
    z = random_crop_flip(torch.rand(4, 3, 8, 8), pad=0, generator=torch.Generator())
    assert z.shape == (4, 3, 8, 8)


def test_an_epoch_ends_with_the_remainder_batch():
    ds = synthetic_dataset(image_size=8, n_train=100, n_test=4, seed=0)
    stream = ImageStream(ds, np.arange(90), 64, 8, torch.device("cpu"), False, 0)
    sizes = [len(stream.next()[1]) for _ in range(3)]
    assert sizes == [64, 26, 64] and stream.epoch == 1


def test_loss_is_the_mean_over_the_meta_batch_with_optional_smoothing():
    torch.manual_seed(0)
    ghn = GHN2(GHN2Config(hid=8, max_shape=(8, 8, 3, 3)))
    specs = [sample_arch(SPLIT_CONFIGS["train"], i).with_args(C=8, fc_dim=16) for i in range(2)]
    nets = [build_net(i, s, 10, 16) for i, s in enumerate(specs)]
    for n in nets:  # no dropout, for an exact comparison (BN keeps batch statistics)
        n.model.eval()
    x, y = torch.randn(8, 3, 16, 16), torch.randint(0, 10, (8,))

    def grads():
        return torch.cat([p.grad.flatten() for p in ghn.parameters()])

    for eps in (0.0, 0.1):
        ghn.zero_grad()
        loss, losses, _ = net_losses(ghn, nets, x, y, label_smoothing=eps)
        with torch.no_grad():
            preds = ghn.predict_params([n.graph for n in nets], [n.shapes for n in nets])
            want = [float(F.cross_entropy(torch.func.functional_call(n.model, p, (x,)), y,
                                          label_smoothing=eps)) for n, p in zip(nets, preds)]
        assert losses == pytest.approx(want, rel=1e-5)
        assert float(loss) == pytest.approx(np.mean(want), rel=1e-5)
    g_mean = grads()
    ghn.zero_grad()
    net_losses(ghn, nets, x, y, label_smoothing=0.1, meta_batch=4)  # a rank of a 4-net batch
    torch.testing.assert_close(grads(), g_mean / 2, rtol=1e-4, atol=1e-7)


def test_channels_last_batchnorm_equals_batchnorm():
    """Training nets' BatchNorm hands its backward a dense NHWC gradient: same outputs and
    gradients as nn.BatchNorm2d, for the gradient layouts a cell produces (a channel slice
    of a concatenation, NCHW)."""
    from baselines.ghn2.fastops import ChannelsLastBN, use_fast_ops

    torch.manual_seed(0)
    ref = torch.nn.BatchNorm2d(6, track_running_stats=False)
    fast = use_fast_ops(torch.nn.Sequential(torch.nn.BatchNorm2d(6, track_running_stats=False),
                                            torch.nn.BatchNorm2d(6)))
    assert all(type(m) is ChannelsLastBN for m in fast)
    fast = fast[0]
    fast.load_state_dict(ref.state_dict())
    x = torch.randn(4, 6, 5, 5).contiguous(memory_format=torch.channels_last)
    x.requires_grad_(True)
    r, other = torch.randn(4, 6, 5, 5), torch.randn(4, 3, 5, 5)
    dense: list[bool] = []
    for layout in ("slice", "nchw"):
        outs = []
        for m in (ref, fast):
            y = m(x)
            if m is fast:  # runs after the module's own hook: sees what its backward gets
                y.register_hook(lambda g: dense.append(
                    g.is_contiguous(memory_format=torch.channels_last)))
            if layout == "slice":  # the gradient of a channel slice of a concatenation
                z = torch.cat([y, other.contiguous(memory_format=torch.channels_last)], 1)[:, :6]
            else:
                z = y.contiguous()
            outs.append((y, torch.autograd.grad((z * r).sum(), [x, *m.parameters()])))
        torch.testing.assert_close(outs[1][0], outs[0][0])
        for u, v in zip(outs[0][1], outs[1][1]):  # float rounding of the BN reductions
            torch.testing.assert_close(v, u, rtol=1e-5, atol=1e-6)
    assert dense == [True, True]


class _NoArchs:
    """An architecture source the constructor never reads."""

    num_archs, info = 1, {}


def test_imagenet_size_images_take_the_imagenet_recipe(tmp_path):
    """ImageNet-size training: resized crops at the training size (validation resized),
    the last 50 images per class held out, label smoothing 0.1, the ImageNet GHN config."""
    from baselines.ghn2.trainer import Trainer

    ds = synthetic_dataset(image_size=144, n_train=120, n_test=4, seed=0, num_classes=2)
    stream = ImageStream(ds, np.arange(120), 4, 128, torch.device("cpu"), True, 0)
    assert stream.next()[0].shape == (4, 3, 128, 128)
    assert stream.convert(np.arange(3))[0].shape == (3, 3, 128, 128)
    tr = Trainer(TrainConfig(out=str(tmp_path), progress=False, image_size=128), images=ds,
                 archs=_NoArchs())
    assert tr.label_smoothing == 0.1 and len(tr.val_idx) == 100
    assert tr.ghn.config.max_shape == (64, 64, 16, 16) and tr.ghn.config.num_classes == 2
