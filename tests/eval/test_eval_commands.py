"""The CLI: ``new-method`` writes a runnable template; ``eval --mock`` runs it end to end."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from deepnetsbench.cli import main
from deepnetsbench.eval.commands import default_out
from deepnetsbench.results import load_results


@pytest.fixture()
def cli(mock_root, monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    runner = CliRunner()

    def invoke(*args: str):
        return runner.invoke(main, [*args], catch_exceptions=False)

    return invoke


def test_new_method_then_eval_mock(cli, mock_root, tmp_path):
    r = cli("new-method", "mine.py")
    assert r.exit_code == 0 and (tmp_path / "mine.py").exists()
    assert "deepnets-bench eval --mock --method mine.py" in (tmp_path / "mine.py").read_text()
    r = cli("eval", "--mock", "--method", "mine.py", "--root", str(mock_root), "--arch", "1,3",
            "--method-opt", "gain=1.0", "--quiet")
    assert r.exit_code == 0, r.output
    assert "top-1 %" in r.output and "2 (2 ok, 0 failed)" in r.output
    res = load_results(tmp_path / "mine-test-mock.json")
    assert res.method.name == "my-method" and res.method.file_sha256
    assert res.protocol.extra["method_options"] == {"gain": 1.0}
    assert [r.status for r in res.records] == ["ok", "ok"]
    assert (tmp_path / "mine-test-mock.json.journal").exists()


def test_new_method_refuses_overwrite(cli, tmp_path):
    (tmp_path / "mine.py").write_text("# mine\n")
    r = cli("new-method", "mine.py")
    assert r.exit_code == 2 and "already exists" in r.output and "--force" in r.output
    assert (tmp_path / "mine.py").read_text() == "# mine\n"
    assert cli("new-method", "mine.py", "--force").exit_code == 0
    assert cli("new-method", "mine.txt").exit_code == 2


def test_syntax_error_is_one_line_exit_2(cli, mock_root, tmp_path):
    (tmp_path / "bad.py").write_text("class Method:\n    def predict(self, model, task)\n")
    r = cli("eval", "--mock", "--method", "bad.py", "--root", str(mock_root))
    assert r.exit_code == 2
    lines = [x for x in r.output.splitlines() if x.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: syntax error")
    assert "bad.py:2" in lines[0] and "Traceback" not in r.output


def test_raising_method_gives_failed_records_and_exit_2_when_nothing_succeeded(
        cli, mock_root, tmp_path):
    (tmp_path / "boom.py").write_text(
        "class Method:\n    def predict(self, model, task):\n"
        "        if task.arch.index == 1:\n            raise RuntimeError('x')\n")
    r = cli("eval", "--mock", "--method", "boom.py", "--root", str(mock_root), "--arch", "1",
            "--out", "boom.json")
    assert r.exit_code == 2, r.output  # nothing succeeded: an error, with the results kept
    assert "1 (0 ok, 1 failed)" in r.output
    assert "error: no architecture succeeded (1 of 1 failed; the first: predict raised " \
           "RuntimeError: x" in r.output
    rec = load_results(tmp_path / "boom.json").records[0]
    assert rec.status == "failed" and "boom.py:4" in rec.error
    r = cli("eval", "--mock", "--method", "boom.py", "--root", str(mock_root), "--arch", "1,3",
            "--out", "boom.json")
    assert r.exit_code == 0, r.output  # one failure among successes is a result
    assert "2 (1 ok, 1 failed)" in r.output


def test_bad_arch_and_options_are_one_line(cli, mock_root):
    r = cli("eval", "--mock", "--method", "kaiming", "--root", str(mock_root), "--arch", "x")
    assert r.exit_code == 2 and "--arch" in r.output
    r = cli("eval", "--mock", "--method", "kaiming", "--root", str(mock_root), "--arch", "9")
    assert r.exit_code == 2 and "outside the split" in r.output
    r = cli("eval", "--mock", "--method", "kaiming", "--root", str(mock_root),
            "--method-opt", "nope=1")
    assert r.exit_code == 2 and "does not accept" in r.output
    r = cli("eval", "--mock", "--method", "nothing-like-this", "--root", str(mock_root))
    assert r.exit_code == 2 and "neither a built-in" in r.output
    r = cli("eval", "--mock", "--method", "kaiming", "--split", "predefined",
            "--root", str(mock_root))
    assert r.exit_code == 2 and "generated splits" in r.output


def test_missing_split_is_one_line(cli, tmp_path):
    r = cli("eval", "--method", "kaiming", "--root", str(tmp_path / "empty"))
    assert r.exit_code == 2 and r.output.startswith("error:") and "fix:" in r.output


def test_default_out():
    assert default_out("kaiming", "test", "cifar10", False) == "kaiming-test-cifar10.json"
    assert default_out("runs/my ghn.py", "wide", "cifar10", True) == "my_ghn-wide-mock.json"


@pytest.mark.parametrize("sig", ["SIGINT", "SIGTERM"])
def test_ctrl_c_and_sigterm_keep_done_work_and_exit_130(cli, mock_root, tmp_path, monkeypatch,
                                                        ctrl_c, sig):
    # The method runs in a worker; it signals the evaluator (this process) as a terminal's
    # Ctrl-C or a job scheduler's SIGTERM would, then waits to be stopped.
    monkeypatch.setenv("DNB_PARENT", str(__import__("os").getpid()))
    (tmp_path / "stop.py").write_text(
        "import os, signal, time\n"
        "class Method:\n"
        "    def predict(self, model, task):\n"
        "        if task.arch.index == 3:\n"
        f"            os.kill(int(os.environ['DNB_PARENT']), signal.{sig})\n"
        "            time.sleep(60)\n"
        "        return None\n")
    r = cli("eval", "--mock", "--method", "stop.py", "--root", str(mock_root), "--arch", "1,3",
            "--out", "s.json", "--quiet")
    assert r.exit_code == 130 and "re-run to resume" in r.output
    res = load_results(tmp_path / "s.json")
    assert [x.index for x in res.records] == [1] and res.protocol.extra["complete"] is False
