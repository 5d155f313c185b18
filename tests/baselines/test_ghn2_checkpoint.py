"""GHN checkpoints: ours round-trip, files in the official layout load and say so, and
mangled, foreign or outdated files are one-line errors naming what is wrong."""

from __future__ import annotations

import pytest
import torch
import torchvision

from baselines.ghn2.checkpoint import (
    FORMAT,
    OFFICIAL,
    describe,
    load_ghn,
    save_checkpoint,
)
from baselines.ghn2.model import GHN2, GHN2Config
from deepnetsbench.errors import BenchError

TINY = GHN2Config(hid=8, max_shape=(8, 8, 3, 3))


def official_file(path, ghn: GHN2, **changes):
    """A file laid out as the official train_ghn.py writes it (Adam state included, under
    the official key ``optimzer``)."""
    cfg = ghn.config
    opt = torch.optim.Adam(ghn.parameters(), 1e-3, weight_decay=1e-5)
    ckpt = {"state_dict": ghn.state_dict(), "optimzer": opt.state_dict(), "epoch": 299,
            "config": {"max_shape": cfg.max_shape, "num_classes": cfg.num_classes,
                       "hypernet": cfg.hypernet, "decoder": cfg.decoder,
                       "weight_norm": cfg.weight_norm, "ve": cfg.ve,
                       "layernorm": cfg.layernorm, "hid": cfg.hid}}
    ckpt.update(changes)
    torch.save(ckpt, path)
    return path


def test_our_checkpoint_round_trips(tmp_path):
    torch.manual_seed(0)
    ghn = GHN2(TINY)
    path = save_checkpoint(tmp_path / "g.pt", ghn, epoch=3, data={"dataset": "x"})
    loaded, info = load_ghn(path)
    assert info["format"] == FORMAT and info["data"] == {"dataset": "x"}
    assert loaded.config == TINY
    for k, v in ghn.state_dict().items():
        assert torch.equal(v, loaded.state_dict()[k])
    assert describe(info) == "deepnets-bench checkpoint (ghn2, 10 classes, 3x3 grid, epoch 3)"
    with pytest.raises(BenchError, match="another GHN config"):
        load_ghn(path, config=TINY.replace(hid=16))
    # our files carry what the official loader reads: config (its 8 keys) + state_dict
    raw = torch.load(path, weights_only=True)
    assert set(raw["config"]) == {"max_shape", "num_classes", "hypernet", "decoder",
                                  "weight_norm", "ve", "layernorm", "hid"}
    assert raw["epoch"] == 3 and raw["state_dict"].keys() == ghn.state_dict().keys()


@pytest.mark.parametrize("preset", ["ghn2", "ghn1", "mlp"])
def test_official_layout_loads_and_says_so(tmp_path, preset):
    torch.manual_seed(1)
    cfg = GHN2Config.preset(preset).replace(hid=8, max_shape=(8, 8, 3, 3))
    ghn = GHN2(cfg).eval()
    loaded, info = load_ghn(official_file(tmp_path / f"{preset}.pt", ghn))
    assert info["format"] == OFFICIAL and info["epoch"] == 299
    assert loaded.config == cfg
    assert describe(info) == (f"official ppuda checkpoint ({preset}, 10 classes, 3x3 grid, "
                              "epoch 299)")
    model = torchvision.models.resnet18(num_classes=10)
    want = {k: v.clone() for k, v in ghn.predict(model).named_parameters()}
    for k, v in loaded.predict(model).named_parameters():
        assert torch.equal(v, want[k]), k


def test_official_config_may_omit_flags(tmp_path):
    """Flags absent from an official config take the official constructor's defaults
    (GHN-1 at hid 32)."""
    ghn = GHN2(GHN2Config.preset("ghn1").replace(max_shape=(8, 8, 3, 3)))
    path = tmp_path / "old.pt"
    torch.save({"state_dict": ghn.state_dict(), "epoch": 0,
                "config": {"max_shape": (8, 8, 3, 3), "num_classes": 10}}, path)
    loaded, info = load_ghn(path)
    assert loaded.config.name == "ghn1" and loaded.config.hid == 32
    assert info["format"] == OFFICIAL


def test_mangled_checkpoints_name_what_is_missing(tmp_path):
    ghn = GHN2(TINY)
    sd = ghn.state_dict()
    cut = {k: v for k, v in sd.items() if not k.startswith("decoder.conv")}
    with pytest.raises(BenchError, match=r"missing 4 tensors \['decoder.conv.0.bias'"):
        load_ghn(official_file(tmp_path / "cut.pt", ghn, state_dict=cut))
    bad = dict(sd, **{"embed.weight": torch.zeros(3, 8)})
    with pytest.raises(BenchError, match=r"wrong shapes \[\('embed.weight', \(3, 8\)\)\]"):
        load_ghn(official_file(tmp_path / "shape.pt", ghn, state_dict=bad))
    ghn1 = GHN2(TINY.replace(ve=False, weight_norm=False, layernorm=False))
    extra = dict(ghn1.state_dict(), **{"gnn.mlp_ve.fc.0.weight": torch.zeros(4, 8)})
    with pytest.raises(BenchError, match=r"unexpected \['gnn.mlp_ve.fc.0.weight'\]"):
        load_ghn(official_file(tmp_path / "extra.pt", ghn1, state_dict=extra))
    cfg = {"num_classes": 10}
    with pytest.raises(BenchError, match=r"lacks \['max_shape'\]"):
        load_ghn(official_file(tmp_path / "cfg.pt", ghn, config=cfg))
    with pytest.raises(BenchError, match=r"unknown GHN config keys \['depth'\]"):
        load_ghn(official_file(tmp_path / "cfg2.pt", ghn,
                               config={"max_shape": (8, 8, 3, 3), "num_classes": 10,
                                       "depth": 3}))
    no_cfg = tmp_path / "nocfg.pt"
    torch.save({"state_dict": sd, "epoch": 1}, no_cfg)
    with pytest.raises(BenchError, match=r"no 'config' dict"):
        load_ghn(no_cfg)


def test_foreign_and_outdated_files_are_one_line_errors(tmp_path):
    net = tmp_path / "resnet.pt"
    torch.save(torchvision.models.resnet18().state_dict(), net)
    with pytest.raises(BenchError, match=r"no 'state_dict' or 'config' dict \(its keys: "
                                         r"\['bn1.bias'"):
        load_ghn(net)
    tensor = tmp_path / "tensor.pt"
    torch.save(torch.zeros(3), tensor)
    with pytest.raises(BenchError, match="holds a Tensor"):
        load_ghn(tensor)
    old = tmp_path / "v1.pt"
    torch.save({"format": FORMAT, "format_version": 1, "config": {"hid": 32},
                "state_dict": {}}, old)
    with pytest.raises(BenchError, match="format-1 .* retrain") as err:
        load_ghn(old)
    assert "\n" not in str(err.value)
    (tmp_path / "junk.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(BenchError, match="cannot read"):
        load_ghn(tmp_path / "junk.pt")
    with pytest.raises(BenchError, match="does not exist"):
        load_ghn(tmp_path / "missing.pt")
