"""GHN training: learning, determinism, checkpoints, resume, CLI, torchrun (tiny, synthetic).
The recipe's pieces (split, augmentation, widths, loss) are tested in test_ghn2_recipe.py."""

from __future__ import annotations

import os
from dataclasses import replace
from pathlib import Path

import pytest
import torch

from baselines.ghn2.checkpoint import config_from_checkpoint, load_ghn, read_checkpoint
from baselines.ghn2.model import GHN2, GHN2Config
from baselines.ghn2.train import TrainConfig, Trainer, build_net, main
from deepnetsbench.data import synthetic_dataset
from deepnetsbench.errors import BenchError
from deepnetsbench.space import SPLIT_CONFIGS, sample_arch

TINY = GHN2Config(hid=8, max_shape=(8, 8, 3, 3))
SMALL_SPACE = replace(SPLIT_CONFIGS["train"], n_cells=(4, 5), steps=(1, 2), steps_deep=(1, 1))


class FixedArchs:
    """A handful of small architectures standing in for the DeepNets-1M train split."""

    def __init__(self, n: int = 4):
        self.specs = [sample_arch(SMALL_SPACE, i) for i in range(n)]
        self.num_archs = n
        self.info = {"source": "test", "num_archs": n}

    def nodes(self, i: int) -> None:
        return None

    def spec(self, i: int):
        return self.specs[i]


@pytest.fixture(scope="module")
def images():
    return synthetic_dataset(image_size=16, n_train=400, n_test=20, seed=1)


def make_trainer(tmp_path, images, resume=False, **changes) -> Trainer:
    cfg = TrainConfig(out=str(tmp_path), meta_batch=2, batch_size=16, width_range=(8, 16),
                      width_step=8, fc_dim_range=(16, 32), val_images=64, val_every=0,
                      log_every=1, ckpt_every=0, max_steps=20, progress=False, amp=False)
    cfg = replace(cfg, **changes)
    val = [s.with_args(C=8) for s in FixedArchs(2).specs]
    return Trainer(cfg, TINY, resume=resume, images=images, archs=FixedArchs(), val_specs=val)


def fixed_loss(ghn: GHN2, images) -> float:
    nets = [build_net(i, s.with_args(C=8, fc_dim=16), 10, 16)
            for i, s in enumerate(FixedArchs().specs)]
    x, y = images.train_tensors(limit=64)
    with torch.no_grad():
        preds = ghn.predict_params([n.graph for n in nets], [n.shapes for n in nets])
        losses = [torch.nn.functional.cross_entropy(
            torch.func.functional_call(n.model, p, (x,)), y) for n, p in zip(nets, preds)]
    return float(sum(losses) / len(losses))


def test_loss_decreases(tmp_path, images):
    tr = make_trainer(tmp_path, images, lr=3e-3, augment=False)
    before = fixed_loss(tr.ghn, images)
    for _ in range(15):
        assert tr.train_step() is not None
        tr.step += 1
    after = fixed_loss(tr.ghn, images)
    assert after < before - 0.05, (before, after)


def test_overflowing_gradient_drops_the_step(tmp_path, images, monkeypatch):
    """An inf gradient norm must not reach Adam: clipping it gives inf * 0 = NaN weights."""
    import baselines.ghn2.trainer as trainer_mod

    real = trainer_mod.net_losses

    tr = make_trainer(tmp_path, images)
    before = {k: v.clone() for k, v in tr.ghn.state_dict().items()}

    def inf_losses(ghn, *args, **kwargs):
        loss, losses, accs = real(ghn, *args, **kwargs)
        p = next(ghn.parameters())
        p.grad = torch.full_like(p, float("inf"))
        return loss, losses, accs

    monkeypatch.setattr(trainer_mod, "net_losses", inf_losses)
    stats = tr.train_step()
    assert stats["nonfinite"] == 1
    after = tr.ghn.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)
    monkeypatch.setattr(trainer_mod, "net_losses", real)
    stats = tr.train_step()
    assert stats["nonfinite"] == 0
    assert all(torch.isfinite(v).all() for v in tr.ghn.state_dict().values())
    assert any(not torch.equal(before[k], v) for k, v in tr.ghn.state_dict().items())


def test_same_seed_same_ghn_other_seed_differs(tmp_path, images):
    a = make_trainer(tmp_path / "a", images, seed=3)
    b = make_trainer(tmp_path / "b", images, seed=3)
    c = make_trainer(tmp_path / "c", images, seed=4)
    for tr in (a, b, c):
        tr.run(steps=2)
    sa, sb, sc = (t.ghn.state_dict() for t in (a, b, c))
    assert all(torch.equal(sa[k], sb[k]) for k in sa)
    assert not all(torch.equal(sa[k], sc[k]) for k in sa)


def test_resume_continues_exactly(tmp_path, images):
    straight = make_trainer(tmp_path / "s", images, max_steps=4)
    straight.run()
    part = make_trainer(tmp_path / "p", images, max_steps=4)
    part.run(steps=2)
    assert read_checkpoint(tmp_path / "p" / "last.pt")["train"]["step"] == 2
    resumed = make_trainer(tmp_path / "p", images, resume=True, max_steps=4)
    assert resumed.step == 2
    summary = resumed.run()
    assert summary["step"] == 4
    s1, s2 = straight.ghn.state_dict(), resumed.ghn.state_dict()
    for k in s1:
        torch.testing.assert_close(s1[k], s2[k], rtol=1e-5, atol=1e-6)
    final = read_checkpoint(tmp_path / "p" / "final.pt")
    assert "optimizer" not in final["train"] and final["metrics"]["val"]
    assert final["data"]["content_sha256"] == images.content_sha256


def test_resume_with_other_ghn_config_is_an_error(tmp_path, images):
    make_trainer(tmp_path, images).run(steps=1)
    with pytest.raises(BenchError, match="another GHN config"):
        Trainer(TrainConfig(out=str(tmp_path), progress=False), TINY.replace(hid=4),
                resume=True, images=images, archs=FixedArchs())
    same = Trainer(TrainConfig(out=str(tmp_path), progress=False), resume=True, images=images,
                   archs=FixedArchs())  # no config given: the stored one
    assert same.ghn.config == TINY and same.step == 1


def test_cli_synthetic_smoke_and_errors(tmp_path, capsys):
    out = tmp_path / "run"
    main(["--synthetic", "--max-steps", "1", "--out", str(out), "--meta-batch", "2",
          "--batch-size", "8", "--opt", "val_archs=0", "--opt", "width_range=[8,16]",
          "--ghn", "mlp", "--ghn-opt", "hid=8", "--ghn-opt", "max_shape=[8,8,3,3]",
          "--threads", "1"])
    assert (out / "final.pt").is_file() and (out / "last.pt").is_file()
    assert '"step": 1' in capsys.readouterr().out
    ghn, info = load_ghn(out / "final.pt")
    assert ghn.config.name == "mlp" and ghn.config.hid == 8
    assert info["train"]["config"]["meta_batch"] == 2
    with pytest.raises(SystemExit) as err:
        main(["--synthetic", "--out", str(out), "--ghn-opt", "depth=3"])
    assert "unknown GHN options" in capsys.readouterr().err
    with pytest.raises(SystemExit) as err:
        main(["--synthetic", "--out", str(out), "--opt", "nonsense=1"])
    assert err.value.code == 2
    assert "unknown training options" in capsys.readouterr().err


DDP_SCRIPT = """
import os, sys, torch
torch.set_num_threads(1)
if int(os.environ.get("WORLD_SIZE", "1")) > 1:
    torch.distributed.init_process_group("gloo")
from baselines.ghn2.model import GHN2Config
from baselines.ghn2.train import TrainConfig, Trainer
cfg = TrainConfig(data="synthetic", archs="sampler", exclude_eval=False, num_archs=1000,
                  width_range=(8, 16), width_step=8, fc_dim_range=(32, 64), fc_dim_step=32,
                  val_archs=0, val_every=0, val_images=200, out=sys.argv[1], progress=False,
                  meta_batch=4, batch_size=8, max_steps=2, ckpt_every=0)
tr = Trainer(cfg, GHN2Config(hid=8, max_shape=(8, 8, 3, 3)))
# float64: in float32 the GHN's backward is ill-conditioned early in training (gradient
# norms in the thousands), and splitting a meta-batch changes it by up to 1 %
tr.ghn.double()
tr.opt = torch.optim.Adam(tr.ghn.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
next_batch = tr.stream.next
tr.stream.next = lambda: tuple(t.double() if t.is_floating_point() else t
                               for t in next_batch())
tr.run()
"""


def test_torchrun_two_processes_match_one(tmp_path):
    """``torchrun --nproc-per-node 2`` (gloo on CPU) splits the meta-batch over two ranks
    (``Trainer.train_step``: each rank its nets, all-reduced gradients, the same image
    batch); two steps give the same GHN as one process training on the whole batch."""
    import subprocess
    import sys

    script = tmp_path / "ddp_steps.py"
    script.write_text(DDP_SCRIPT)
    root = Path(__file__).resolve().parents[2]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(root)}
    single = subprocess.run([sys.executable, str(script), str(tmp_path / "one")],
                            cwd=root, env=env, capture_output=True, text=True, timeout=300)
    assert single.returncode == 0, single.stderr[-2000:]
    ddp = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone",
                          "--nproc-per-node", "2", str(script), str(tmp_path / "two")],
                         cwd=root, env=env, capture_output=True, text=True, timeout=300)
    assert ddp.returncode == 0, ddp.stderr[-2000:]
    one = torch.load(tmp_path / "one" / "final.pt", weights_only=False)
    two = torch.load(tmp_path / "two" / "final.pt", weights_only=False)
    assert one["train"]["step"] == two["train"]["step"] == 2
    torch.manual_seed(0)  # the Trainer's seed: the same initial GHN
    init = GHN2(config_from_checkpoint(one)).double().state_dict()
    diff = sum(float((v - two["state_dict"][k]).pow(2).sum())
               for k, v in one["state_dict"].items()) ** 0.5
    update = sum(float((v - init[k]).pow(2).sum()) for k, v in one["state_dict"].items()) ** 0.5
    assert update > 0.05  # training moved the weights: the comparison is not vacuous
    assert diff < 1e-6 * update, (diff, update)
