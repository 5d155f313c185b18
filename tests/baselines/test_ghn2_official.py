"""Our GHNs reproduce the official code's predictions, without the official code.

The fixtures in tests/fixtures/ppuda (README.md there says exactly how) were made once by
running the official ppuda code in a scratch folder: three tiny GHNs (GHN-2, GHN-1, MLP;
``hid = 16``, ``max_shape = (16, 16, 11, 11)``, random init with the official seed), saved
in the official checkpoint format, and the parameters each predicted for six small official
networks (graphs built by the official code) plus summary statistics for the PREDEFINED
ResNet-50 and ViT. Here the checkpoints go through ``load_ghn`` and our own networks and
graphs (``build_model`` + ``graph_from_spec``); every predicted tensor must equal the
official one to 1e-5 relative, and the parameters the official GHN pruned (dead
preprocessing and ops) must be exactly the ones we leave unpredicted.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from baselines.ghn2.checkpoint import OFFICIAL, describe, load_ghn
from deepnetsbench.graph import graph_from_module, graph_from_spec
from deepnetsbench.space import ArchSpec, Genotype, NetArgs, build_model
from deepnetsbench.splits.predefined import DEEPNETS_VIT, build_predefined

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "ppuda"
KINDS = ("ghn2", "ghn1", "mlp")
NORMS = {"bnorm": "bn", "bn-track": "bn-track", None: None}
RTOL = 1e-5

pytestmark = pytest.mark.skipif(not (FIXTURES / "ghn_tiny_predictions.pt").is_file(),
                                reason="golden GHN fixtures absent")


def spec_of(args: dict) -> ArchSpec:
    """Our spec for the official ``Network(**args)`` (official defaults where absent)."""
    g = args["genotype"]
    genotype = Genotype(tuple((op, i) for op, i in g["normal"]), tuple(g["normal_concat"]),
                        tuple((op, i) for op, i in g["reduce"]), tuple(g["reduce_concat"]))
    return ArchSpec(genotype, NetArgs(
        C=args["C"], n_cells=args["n_cells"], stem_type=args.get("stem_type", 0),
        stem_pool=args.get("stem_pool", False), ks=args.get("ks", 3),
        norm=NORMS[args.get("norm", "bn-track")], preproc=args.get("preproc", True),
        glob_avg=args.get("glob_avg", True), fc_layers=args.get("fc_layers", 0),
        fc_dim=args.get("fc_dim", 0), C_mult=args.get("C_mult", 2), is_vit=args.get("is_vit")))


@pytest.fixture(scope="module")
def golden() -> dict:
    return torch.load(FIXTURES / "ghn_tiny_predictions.pt", weights_only=True)


@pytest.fixture(scope="module")
def records() -> dict:
    return {r["id"]: r for r in json.loads((FIXTURES / "nets.json").read_text())}


def rel_err(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a.double() - b.double()).norm() / b.double().norm().clamp_min(1e-30))


@pytest.mark.parametrize("kind", KINDS)
def test_official_checkpoint_loads_and_says_so(kind):
    ghn, info = load_ghn(FIXTURES / f"{kind}_tiny_official.pt")
    assert info["format"] == OFFICIAL and info["epoch"] == 0
    assert ghn.config.name == kind and ghn.config.hid == 16
    assert ghn.num_params == {"ghn2": 179_000, "ghn1": 178_952, "mlp": 177_352}[kind]
    assert describe(info) == f"official ppuda checkpoint ({kind}, 10 classes, 11x11 grid, epoch 0)"


@pytest.mark.parametrize("kind", KINDS)
def test_predictions_equal_the_official_ones(kind, golden, records):
    ghn, _ = load_ghn(FIXTURES / f"{kind}_tiny_official.pt")
    ghn.eval()
    for net_id in golden["nets"]:
        spec = spec_of(records[net_id]["net_args"])
        model = build_model(spec, 10, 32)
        ghn.predict(model, graph_from_spec(spec, 10, 32))
        want = golden["params"][kind][net_id]
        ours = dict(model.named_parameters())
        pruned = set(golden["pruned"][net_id][kind]["pruned_to_none"])
        assert set(ghn.last_missing[0]) == pruned, net_id
        assert set(want) == set(ours) - pruned, net_id
        errors = {name: rel_err(ours[name].detach(), w) for name, w in want.items()}
        worst = max(errors, key=errors.get)
        assert errors[worst] < RTOL, (net_id, worst, errors[worst])


@pytest.mark.parametrize("kind", KINDS)
def test_predefined_resnet50_and_vit_match_the_official_statistics(kind, golden):
    ghn, _ = load_ghn(FIXTURES / f"{kind}_tiny_official.pt")
    ghn.eval()
    nets = {"predefined_resnet50": build_predefined("resnet50", 10, 32),
            "predefined_vit": build_model(DEEPNETS_VIT, 10, 32)}
    for net_id, model in nets.items():
        ghn.predict(model, graph_from_module(model, 32))
        stats = golden["predefined_stats"][kind][net_id]
        ours = dict(model.named_parameters())
        assert set(stats) == set(ours), net_id
        for name, (numel, total, squares, first) in stats.items():
            p = ours[name].detach().double()
            assert p.numel() == numel, name
            assert float(p.square().sum()) == pytest.approx(squares, rel=2 * RTOL), name
            scale = (squares * numel) ** 0.5  # |sum| can cancel: compare on the norm's scale
            assert abs(float(p.sum()) - total) <= RTOL * max(scale, 1e-12), name
            torch.testing.assert_close(p.flatten()[:8], torch.tensor(first, dtype=p.dtype),
                                       rtol=RTOL, atol=RTOL * float(p.abs().max()))
