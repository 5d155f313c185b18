"""benchmarks/gpu_check.py: its --device cpu --quick run passes, so that it cannot rot."""

from __future__ import annotations

import json

import pytest
import torch


def test_quick_cpu_run_passes_every_check(gpu_check, tmp_path, one_thread):
    out = tmp_path / "report.json"
    rc = gpu_check.main(["--device", "cpu", "--quick", "--root", str(tmp_path / "root"),
                         "--out", str(out)])
    report = json.loads(out.read_text())
    assert rc == 0, report
    assert report["ok"] and list(report["checks"]) == list(gpu_check.CHECKS)
    checks = report["checks"]
    assert checks["evaluator"]["kaiming"]["top1_mean"] >= 0
    assert checks["evaluator"]["shards_merged_max_top1_diff"] == 0
    assert checks["ghn2_train"]["steps"] == 2 and checks["ghn2_train"]["params_device"] == "cpu"
    assert checks["resnet50_latency"]["params"] == 23_528_522
    assert checks["ddp"]["backend"] == "gloo"
    assert checks["torchrun_eval"]["rank_device"] == "cpu" and checks["torchrun_eval"]["records"] == 2


def test_a_broken_check_fails_loudly(gpu_check, tmp_path, monkeypatch, capsys):
    def broken(ctx):
        raise RuntimeError("CUDA error: an illegal memory access was encountered")

    monkeypatch.setitem(gpu_check.RUNNERS, "ddp", broken)
    out = tmp_path / "report.json"
    rc = gpu_check.main(["--device", "cpu", "--quick", "--only", "environment,ddp",
                         "--root", str(tmp_path), "--out", str(out)])
    assert rc == 1
    report = json.loads(out.read_text())
    assert report["checks"]["ddp"] == {"ok": False, "seconds": report["checks"]["ddp"]["seconds"],
                                       "error": "RuntimeError: CUDA error: an illegal memory "
                                                "access was encountered"}
    assert "FAILED ddp" in capsys.readouterr().err


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has a GPU")
def test_missing_gpu_stops_at_the_environment_check(gpu_check, tmp_path):
    out = tmp_path / "report.json"
    assert gpu_check.main(["--device", "cuda", "--root", str(tmp_path), "--out", str(out)]) == 1
    report = json.loads(out.read_text())
    assert list(report["checks"]) == ["environment"]
    assert "is_available() is False" in report["checks"]["environment"]["error"]
