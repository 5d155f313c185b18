from click.testing import CliRunner

import deepnetsbench.demo as demo_mod
from deepnetsbench.cli import main


def test_demo_runs_end_to_end_on_synthetic_images(tmp_path, monkeypatch):
    monkeypatch.setattr(demo_mod, "SHARED_CIFAR", tmp_path / "absent.tar.gz")
    res = CliRunner().invoke(main, ["demo", "--root", str(tmp_path), "--archs", "1",
                                    "--eval-images", "64"])
    assert res.exit_code == 0, res.output
    assert "synthetic" in res.output and "test/00000" in res.output
    assert (tmp_path / "demo" / "results_kaiming.json").exists()
