"""``torchrun -m deepnetsbench eval``: two gloo processes on CPU give the unsharded run."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from deepnetsbench.errors import BenchError
from deepnetsbench.eval.distributed import (
    TorchrunEnv,
    rank_device,
    run_distributed,
    torchrun_env,
    wants_distributed,
)
from deepnetsbench.eval.runner import EvalConfig, evaluate
from deepnetsbench.results import load_results

FAILING_ON_RANK_1 = """
import os
from deepnetsbench.errors import BenchError
from deepnetsbench.eval.methods import MethodBase, MethodMeta

class Method(MethodBase):
    meta = MethodMeta(name="rank-probe")

    def setup(self, device):
        if os.environ.get("RANK") == "1":
            raise BenchError("no weights on this node", "copy them there")

    def predict(self, model, task):
        return None  # the built model's own initialisation
"""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _torchrun(args: list[str], cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path), "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", "2",
           "--master-addr", "127.0.0.1", "--master-port", str(_free_port()),
           "-m", "deepnetsbench", "eval", *args]
    return subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=240)


def test_two_ranks_write_the_merged_run(mock_root, tmp_path, untimed):
    res = _torchrun(["--mock", "--method", "kaiming", "--root", str(mock_root), "--quiet",
                     "--arch", "1,2,3", "--out", "dist.json"], tmp_path)
    assert res.returncode == 0, res.stdout + res.stderr
    merged = load_results(tmp_path / "dist.json")
    full = evaluate("kaiming", EvalConfig(mock=True, root=mock_root, out=tmp_path / "one.json",
                                          archs=[1, 2, 3], progress=False))
    assert untimed(merged.records) == untimed(full.records)
    assert merged.protocol.extra["merged"] == {"rule": "macs-lpt-1", "shards": 2,
                                               "devices": ["cpu", "cpu"]}
    shards = [load_results(tmp_path / f"dist-shard{k}of2.json") for k in (1, 2)]
    assert sorted(r.index for s in shards for r in s.records) == [1, 2, 3]
    assert merged.protocol.extra["architectures"] == [1, 2, 3]
    assert res.stdout.count("results: ") == 1  # only rank 0 reports


def test_a_failing_rank_stops_the_run_with_its_reason(mock_root, tmp_path):
    (tmp_path / "m.py").write_text(FAILING_ON_RANK_1)
    res = _torchrun(["--mock", "--method", "m.py", "--root", str(mock_root), "--quiet",
                     "--arch", "1,3", "--out", "dist.json"], tmp_path)
    assert res.returncode != 0
    out = res.stdout + res.stderr
    assert "rank 1 (shard 2/2) failed: method setup failed" in out
    assert "no weights on this node" in out
    assert not (tmp_path / "dist.json").exists()


def test_torchrun_environment_and_devices(monkeypatch):
    assert torchrun_env({}) is None
    assert torchrun_env({"RANK": "1", "WORLD_SIZE": "4", "LOCAL_RANK": "0"}) == TorchrunEnv(1, 4, 0)
    with pytest.raises(BenchError, match="not integers"):
        torchrun_env({"RANK": "x", "WORLD_SIZE": "2"})
    assert wants_distributed(False, {"RANK": "0", "WORLD_SIZE": "2"})
    assert not wants_distributed(False, {"RANK": "0", "WORLD_SIZE": "1"})
    assert not wants_distributed(False, {})
    assert rank_device("cpu", 3) == "cpu"
    monkeypatch.delenv("RANK", raising=False)
    monkeypatch.delenv("WORLD_SIZE", raising=False)
    with pytest.raises(BenchError, match="needs the environment torchrun sets"):
        run_distributed("kaiming", EvalConfig(mock=True))
