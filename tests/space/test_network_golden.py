"""Our networks against the official builder's figures (tests/fixtures/ppuda, see its README).

Every official spec of nets.json must give exactly the official parameter count at both
resolutions and the official state_dict (same keys in the same order, same shapes), so that
official weights load with strict=True. Built on the meta device: no storage, no compute.
"""

import pytest
import torch
from ppuda_golden import FIXTURES, load_nets, spec_of

from deepnetsbench.space import build_model
from deepnetsbench.splits.predefined import DEEPNETS_VIT, build_predefined

NETS = [r for r in load_nets() if r["id"] != "predefined_resnet50"]
SIZES = {"num_params": (32, 10), "num_params_224": (224, 10), "num_params_1000": (32, 1000),
         "num_params_224_1000": (224, 1000)}


def _meta_model(record, image_size, num_classes):
    with torch.device("meta"):
        if record["id"] == "predefined_resnet50":
            return build_predefined("resnet50", num_classes, image_size)
        return build_model(spec_of(record), num_classes, image_size)


def test_fixture_covers_the_official_space():
    ids = [r["id"] for r in load_nets()]
    assert len(ids) >= 50 and "predefined_vit" in ids and "predefined_resnet50" in ids
    ops = {op for r in NETS for op, _ in r["genotype"]["normal"] + r["genotype"]["reduce"]}
    assert len(ops) == 15


@pytest.mark.parametrize("record", load_nets(), ids=lambda r: r["id"])
def test_parameter_counts_equal_the_official_ones(record):
    checked = 0
    for key, (size, classes) in SIZES.items():
        if key in record:
            model = _meta_model(record, size, classes)
            assert sum(p.numel() for p in model.parameters()) == record[key], key
            checked += 1
    assert checked >= 2


@pytest.mark.parametrize("record", load_nets(), ids=lambda r: r["id"])
def test_state_dict_names_and_shapes_equal_the_official_ones(record):
    model = _meta_model(record, 32, record["net_args"]["num_classes"])
    ours = {k: list(v.shape) for k, v in model.state_dict().items()}
    assert list(ours) == list(record["param_shapes"])  # names and order
    assert ours == record["param_shapes"]


def test_predefined_vit_is_the_official_record():
    record = next(r for r in NETS if r["id"] == "predefined_vit")
    assert spec_of(record) == DEEPNETS_VIT
    assert record["num_params"] == 1_012_234


FORWARD = sorted((FIXTURES / "forward").glob("*.pt")) if (FIXTURES / "forward").is_dir() else []


@pytest.mark.skipif(not FORWARD, reason="no forward fixtures yet (GOLDEN helper)")
@pytest.mark.parametrize("path", FORWARD, ids=lambda p: p.stem)
def test_official_weights_give_the_official_logits(path, one_thread):
    blob = torch.load(path, map_location="cpu", weights_only=False)
    kw = blob["net_args"]
    size = 224 if kw.get("is_imagenet_input") else 32
    model = build_model(spec_of({"net_args": kw, "genotype": kw["genotype"]}),
                        kw["num_classes"], size)
    assert sum(p.numel() for p in model.parameters()) == blob["num_params"]
    model.load_state_dict(blob["state_dict"], strict=True)
    model.eval()
    with torch.no_grad():
        logits = model(blob["input"])
    torch.testing.assert_close(logits, blob["logits"], atol=1e-5, rtol=1e-5)
