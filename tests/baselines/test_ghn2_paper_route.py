"""The 'reproduce the paper' command path of docs/baselines.md, end to end on stand-ins:
files in the official layout written by our exporter (not the official files), the tiny
official-format GHN-2 checkpoint of tests/fixtures/ppuda, synthetic images instead of
CIFAR-10. convert-ppuda, then eval --release ppuda with the official checkpoint, then the
leaderboard's checks for a ppuda run (published counts, official md5)."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from click.testing import CliRunner

from deepnetsbench.cli import main
from deepnetsbench.data.synthetic import synthetic_dataset
from deepnetsbench.graph.derive import count_params
from deepnetsbench.leaderboard.entries import validate
from deepnetsbench.releases import DEFAULT_PATH, describe_dataset, register_dataset
from deepnetsbench.space.sampler import split_item
from deepnetsbench.splits.ppuda_export import write_official

REPO = Path(__file__).resolve().parents[2]
CKPT = REPO / "tests" / "fixtures" / "ppuda" / "ghn2_tiny_official.pt"


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_convert_then_eval_the_official_checkpoint_on_the_ppuda_release(tmp_path):
    specs = {"test": [split_item("test", i).with_args(C=16) for i in range(2)]}
    folder = tmp_path / "official"
    h5, _ = write_official(folder, specs)
    counts = {"test": [count_params(s, 10, 32) for s in specs["test"]]}
    params = tmp_path / "params.json"
    params.write_text(json.dumps({"params": counts}))
    root = tmp_path / "root"
    runner = CliRunner()
    res = runner.invoke(main, ["convert-ppuda", str(folder), "--root", str(root),
                               "--published-params", str(params)])
    assert res.exit_code == 0, res.output
    out = tmp_path / "ghn2-test-ppuda.json"
    res = runner.invoke(main, ["eval", "--method", str(REPO / "baselines/ghn2/method.py"),
                               "--method-opt", f"ckpt={CKPT}", "--release", "ppuda",
                               "--split", "test", "--dataset", "synthetic", "--root", str(root),
                               "--out", str(out), "--quiet"])
    assert res.exit_code == 0, res.output
    results = json.loads(out.read_text())
    assert results["method"]["version"] == "official"  # the official checkpoint was read
    assert results["split"]["generator_version"] == "ppuda"
    md5 = hashlib.md5(h5.read_bytes()).hexdigest()
    assert results["protocol"]["extra"]["source_md5"]["deepnets1m_eval.hdf5"] == md5
    recs = results["records"]
    assert [r["status"] for r in recs] == ["ok", "ok"]
    assert [r["num_params"] for r in recs] == counts["test"]

    # the leaderboard's ppuda checks, with the stand-ins registered as the official ones
    releases = tmp_path / "releases.json"
    data = json.loads(DEFAULT_PATH.read_text())
    data["ppuda"]["files"]["deepnets1m_eval.hdf5"] = md5
    data["ppuda"]["published_params"] = {"file": str(params), "sha256": _sha(params),
                                         "source": "test"}
    releases.write_text(json.dumps(data))
    sha, pins = describe_dataset(synthetic_dataset())
    register_dataset("synthetic", sha, pins, releases)
    checked = validate(out, None, releases)
    assert checked.aggregates.n_ok == 2
