"""The evaluation loop: per-architecture failures, time limit, journal, resume, schema."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest
import torch

from deepnetsbench.errors import BenchError
from deepnetsbench.eval.runner import journal_path, select_indices
from deepnetsbench.results import aggregate_mismatch, load_results

FAST = [1, 3]  # the quickest mock architectures (as in conftest.py)

HEADER = """
import math, os, time
import torch
from deepnetsbench.eval.methods import MethodBase, MethodMeta

def kaiming(model):
    out = {}
    for n, p in model.named_parameters():
        out[n] = (torch.randn_like(p) * math.sqrt(2 / p[0].numel()) if p.dim() > 1
                  else torch.zeros_like(p))
    return out

class Method(MethodBase):
    meta = MethodMeta(name="probe")
"""


def probe(body: str) -> str:
    """A method file whose predict(self, model, task) runs ``body`` (indented 8)."""
    lines = "\n".join("        " + line for line in body.strip().splitlines())
    return HEADER + "\n    def predict(self, model, task):\n" + lines + "\n"


@pytest.mark.parametrize("body, message", [
    ("raise ValueError('no luck')", r"predict raised ValueError: no luck \(at .*m\.py:\d+\)"),
    ("out = kaiming(model)\nfor v in out.values():\n    v.fill_(float('nan'))\nreturn out",
     r"contain NaN or Inf"),
    ("out = kaiming(model)\nfor v in out.values():\n    v.fill_(float('inf'))\nreturn out",
     r"contain NaN or Inf"),
    ("out = kaiming(model)\nk = next(iter(out))\nout[k] = out[k][:1]\nreturn out",
     r"wrong shape: .*\(expected"),
    ("out = kaiming(model)\nout.pop(next(iter(out)))\nreturn out",
     r"misses 1 of \d+ parameters"),
    ("out = kaiming(model)\nout['not.a.param'] = torch.zeros(1)\nreturn out",
     r"unknown keys: not\.a\.param"),
    ("return [1, 2]", r"predict returned list"),
    ("for p in model.parameters():\n    p.data = p.data[:1]\nreturn None",
     r"predict changed .*parameter shapes"),
    ("time.sleep(30)", r"exceeded the time limit of 0.5 s"),
    ("while True:\n    pass", r"exceeded the time limit of 0.5 s"),
])
def test_bad_predictions_fail_the_architecture_only(run_eval, method_file, body, message):
    path = method_file(probe(body))
    t0 = time.perf_counter()
    res = run_eval(path, time_limit=0.5)
    assert time.perf_counter() - t0 < 20  # a hanging method does not hang the suite
    assert [r.status for r in res.records] == ["failed", "failed"]
    for r in res.records:
        assert r.error and "\n" not in r.error
        assert __import__("re").search(message, r.error), r.error
    assert res.aggregates.n_failed == 2 and res.aggregates.top1.mean == 0.0


def test_timeout_not_swallowed_by_except_exception(run_eval, method_file):
    path = method_file(probe("try:\n    time.sleep(30)\nexcept Exception:\n    pass\nreturn None"))
    res = run_eval(path, time_limit=0.3, archs=[1])
    assert res.records[0].status == "failed" and "time limit" in res.records[0].error


def test_failure_on_one_architecture_does_not_stop_the_run(run_eval, method_file):
    path = method_file(probe("if task.arch.index == 1:\n    raise RuntimeError('only one')\n"
                             "return kaiming(model)"))
    res = run_eval(path)
    by_index = {r.index: r for r in res.records}
    assert by_index[1].status == "failed" and "only one" in by_index[1].error
    assert by_index[3].status == "ok" and by_index[3].top1 is not None


def test_task_fields_and_lazy_graph(run_eval, method_file):
    path = method_file(probe("""
assert task._graph is None  # nothing traced unless asked
g = task.graph
names = {n for n, _ in model.named_parameters()}
listed = {n for n in g.param_names if n}
assert listed and listed <= names, sorted(listed - names)[:3]
assert task.num_classes == 10 and task.image_size == 32 and len(task.classes) == 10
assert task.dataset == "synthetic" and task.support is None
assert next(model.parameters()).device == task.device
assert task.arch.name == f"test/{task.arch.index:05d}"
return kaiming(model)
"""))
    res = run_eval(path)
    assert [r.status for r in res.records] == ["ok", "ok"], [r.error for r in res.records]


def test_data_prepared_once(run_eval, mock_root):
    from deepnetsbench.eval.methods import load_method
    from deepnetsbench.eval.runner import EvalConfig, open_mock, run_evaluation

    suite, images, size = open_mock("test", root=mock_root)
    calls = []
    original = images.test_tensors

    def counting(*a, **k):
        calls.append(1)
        return original(*a, **k)

    images.test_tensors = counting
    cfg = EvalConfig(out=str(mock_root / "once.json"), progress=False, mock=True, restart=True)
    res = run_evaluation(load_method("kaiming"), suite, images, cfg, size)
    assert len(res.records) == 4 and len(calls) == 1


def test_results_round_trip_and_aggregates(run_eval, tmp_path):
    res = run_eval("kaiming", seed=3)
    loaded = load_results(tmp_path / "res.json")
    assert loaded.model_dump() == res.model_dump()
    assert aggregate_mismatch(loaded) is None
    p = loaded.protocol
    assert (p.batch_size, p.bn_mode, p.eval_images, p.seed, p.version) == (64, "batch", 128, 3, "2")
    assert p.extra["isolation"] == "process" and p.extra["worker_starts"] == 1
    assert p.time_limit_s == 300.0 and p.extra["mock"] is True
    assert loaded.split.num_items == 4 and len(loaded.split.sha256) == 64
    assert loaded.dataset.name == "synthetic" and len(loaded.dataset.content_sha256) == 64


def test_same_seed_same_numbers(run_eval, tmp_path):
    a = run_eval("random", out=tmp_path / "a.json")
    b = run_eval("random", out=tmp_path / "b.json")
    assert [r.top1 for r in a.records] == [r.top1 for r in b.records]


def test_hooks_extend_records(run_eval):
    def finetune(ctx):
        assert ctx.record["top1"] is not None
        return {"finetune": {"top1": 50.0, "epochs": 0}}

    def broken(ctx):
        raise RuntimeError("hook failed")

    def invalid(ctx):
        return {"top1": 250.0}  # outside 0..100: refused, the record keeps its accuracy

    res = run_eval("kaiming", hooks=[finetune, broken, invalid])
    for r in res.records:
        assert r.status == "ok" and r.finetune == {"top1": 50.0, "epochs": 0}
        assert "hook failed" in r.extra["broken_error"]
        assert "ValidationError" in r.extra["invalid_error"] and r.top1 <= 100
    assert res.aggregates.finetune_top1.mean == 50.0


# ----------------------------------------------------------------------------- resume

# The method runs in a worker process: a Ctrl-C at the terminal reaches the evaluator, which
# this method imitates by sending SIGINT to it (DNB_PARENT) and waiting to be stopped.
COUNTING = HEADER + """
    def predict(self, model, task):
        with open(os.environ["DNB_LOG"], "a") as f:
            f.write(f"{task.arch.index}\\n")
        if os.environ.get("DNB_STOP") == str(task.arch.index):
            if os.environ.get("DNB_HANG"):
                with open(os.environ["DNB_HANG"] + ".part", "w") as f:
                    f.write(str(os.getpid()))
                os.replace(os.environ["DNB_HANG"] + ".part", os.environ["DNB_HANG"])
                time.sleep(120)
            import signal
            os.kill(int(os.environ["DNB_PARENT"]), signal.SIGINT)
            time.sleep(120)
        return kaiming(model)
"""


def _log(path) -> list[int]:
    return [int(x) for x in path.read_text().split()] if path.exists() else []


def test_resume_after_interrupt_computes_only_the_rest(run_eval, method_file, tmp_path,
                                                       monkeypatch, ctrl_c):
    path = method_file(COUNTING)
    log = tmp_path / "calls.log"
    monkeypatch.setenv("DNB_LOG", str(log))
    monkeypatch.setenv("DNB_STOP", "3")
    monkeypatch.setenv("DNB_PARENT", str(os.getpid()))
    with pytest.raises(KeyboardInterrupt):
        run_eval(path, archs=[1, 2, 3])
    partial = load_results(tmp_path / "res.json")  # written on interrupt
    assert [r.index for r in partial.records] == [1, 2]
    assert partial.protocol.extra["complete"] is False and "incomplete" in partial.notes
    assert _log(log) == [1, 2, 3]

    monkeypatch.delenv("DNB_STOP")
    res = run_eval(path, archs=[1, 2, 3])
    assert _log(log) == [1, 2, 3, 3]  # only the missing architecture ran
    assert [r.index for r in res.records] == [1, 2, 3] and res.notes == ""
    assert res.started_at == partial.started_at
    res2 = run_eval(path, archs=[1, 2, 3])  # complete: recomputes nothing
    assert _log(log) == [1, 2, 3, 3]
    assert [r.model_dump() for r in res2.records] == [r.model_dump() for r in res.records]


def test_resume_after_sigkill(mock_root, method_file, tmp_path):
    path = method_file(COUNTING)
    log, hang, out = tmp_path / "calls.log", tmp_path / "hanging", tmp_path / "k.json"
    cmd = [sys.executable, "-m", "deepnetsbench.cli", "eval", "--mock", "--method", str(path),
           "--root", str(mock_root), "--out", str(out), "--arch", "1,2,3", "--quiet"]
    env = {**os.environ, "DNB_LOG": str(log), "DNB_STOP": "3", "DNB_HANG": str(hang),
           "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.time() + 120
        while not hang.exists():
            assert proc.poll() is None, proc.stderr.read().decode()
            assert time.time() < deadline
            time.sleep(0.1)
        proc.send_signal(signal.SIGKILL)
        proc.wait(30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert not out.exists()  # killed hard: only the journal survives
    lines = journal_path(out).read_text().splitlines()
    assert sum('"record"' in line for line in lines) == 2  # records 1 and 2
    worker = int(hang.read_text())  # the method's worker dies with the evaluator
    deadline = time.time() + 30
    while _alive(worker):
        assert time.time() < deadline, "the method's worker outlived the killed evaluator"
        time.sleep(0.2)

    env.pop("DNB_STOP")
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert _log(log) == [1, 2, 3, 3]
    res = load_results(out)
    assert [r.index for r in res.records] == [1, 2, 3]
    assert all(r.status == "ok" for r in res.records)


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(") ")[-1][:1] != "Z"  # a zombie is dead
    except OSError:
        return False


def test_journal_of_another_run_is_refused(run_eval, tmp_path):
    run_eval("kaiming", archs=[1])
    with pytest.raises(BenchError) as err:
        run_eval("random", archs=[1])
    text = err.value.one_line()
    assert "different run" in text and "--restart" in text and "\n" not in text
    with pytest.raises(BenchError, match="different run"):
        run_eval("kaiming", archs=[1], seed=5)
    res = run_eval("random", archs=[1], restart=True)
    assert res.method.name == "random"


def test_results_without_journal_not_overwritten(run_eval, tmp_path):
    (tmp_path / "res.json").write_text("{}")
    with pytest.raises(BenchError, match="no journal"):
        run_eval("kaiming", archs=[1])
    assert (tmp_path / "res.json").read_text() == "{}"


def test_torn_journal_tail_is_dropped(run_eval, tmp_path):
    run_eval("kaiming", archs=[1])
    jp = journal_path(tmp_path / "res.json")
    with open(jp, "a") as f:
        f.write('{"record": {"index": 3, "na')  # a write cut by a crash
    res = run_eval("kaiming", archs=[1, 3])
    assert [r.index for r in res.records] == [1, 3]
    lines = jp.read_text().splitlines()
    assert [json.loads(x)["record"]["index"] for x in lines[1:] if '"record"' in x] == [1, 3]


def test_corrupt_journal_line_is_an_error(run_eval, tmp_path):
    run_eval("kaiming", archs=[1])
    jp = journal_path(tmp_path / "res.json")
    jp.write_text(jp.read_text() + "garbage\n")
    with pytest.raises(BenchError, match="line 4 is corrupt"):  # header, method, record 1
        run_eval("kaiming", archs=[1, 3])


def test_select_indices():
    assert select_indices(5) == [0, 1, 2, 3, 4]
    assert select_indices(5, limit=2) == [0, 1]
    assert select_indices(5, [3, 1, 3], limit=None) == [3, 1]
    assert select_indices(5, [4, 2, 0], limit=2) == [4, 2]
    with pytest.raises(BenchError, match="outside the split"):
        select_indices(5, [5])
    with pytest.raises(BenchError):
        select_indices(5, limit=0)


def test_eval_images_limit_recorded(run_eval):
    res = run_eval("kaiming", eval_images=64, archs=[1])
    assert res.protocol.eval_images == 64 and res.dataset.num_test == 128
    with pytest.raises(BenchError, match="outside 1..128"):
        run_eval("kaiming", eval_images=500, archs=[1], restart=True)


def test_cuda_device_without_cuda_is_one_line(run_eval):
    if torch.cuda.is_available():
        pytest.skip("CUDA is available here")
    with pytest.raises(BenchError, match="CUDA is not available"):
        run_eval("kaiming", device="cuda")


def test_fast_architectures_exist(mock_root):
    from deepnetsbench.eval.runner import open_mock

    suite, _, _ = open_mock("test", root=mock_root)
    assert len(suite) == 4 and all(i < len(suite) for i in FAST)
    rec = suite[1]
    assert rec.spec.args.C == 8


def test_setup_failure_leaves_nothing_and_fixed_file_runs(run_eval, method_file, tmp_path):
    path = method_file(HEADER + "\n    def setup(self, device):\n        raise OSError('no ckpt')\n"
                       "\n    def predict(self, model, task):\n        return kaiming(model)\n")
    with pytest.raises(BenchError, match="setup failed: OSError: no ckpt"):
        run_eval(path)
    assert not (tmp_path / "res.json").exists()
    method_file(probe("return kaiming(model)"))  # the user fixes the file: new sha256
    res = run_eval(path)  # the empty journal of the failed run is no obstacle
    assert [r.status for r in res.records] == ["ok", "ok"]


def test_outer_alarm_timer_and_handler_survive(run_eval):
    def outer(signum, frame):  # e.g. a test-timeout plugin's handler
        raise AssertionError("outer timer fired")

    previous = signal.signal(signal.SIGALRM, outer)
    signal.setitimer(signal.ITIMER_REAL, 100.0)
    try:
        run_eval("kaiming", archs=[1], time_limit=50, isolation="in-process")  # SIGALRM here
        assert signal.getsignal(signal.SIGALRM) is outer
        assert 50 < signal.getitimer(signal.ITIMER_REAL)[0] <= 100
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def test_mock_run_restarts_when_the_method_file_changed(mock_root, method_file, tmp_path,
                                                        capsys):
    """The template's loop: edit the method, re-run `eval --mock`. Only the file's content
    may differ; any other difference is still refused."""
    from rich.console import Console

    from deepnetsbench.eval.runner import EvalConfig, open_mock, run_evaluation

    def run(**kw):
        cfg = EvalConfig(mock=True, root=mock_root, out=tmp_path / "m.json", archs=[1],
                         progress=False, **kw)
        suite, images, size = open_mock("test", root=mock_root)
        return run_evaluation(str(path), suite, images, cfg, size,
                              console=Console(stderr=True, width=300))

    path = method_file(probe("return kaiming(model)"))
    first = run()
    path.write_text(probe("return kaiming(model)  # edited"))
    second = run()
    assert "the method changed since" in capsys.readouterr().err
    assert second.method.file_sha256 != first.method.file_sha256
    assert [r.status for r in second.records] == ["ok"]
    with pytest.raises(BenchError, match="different run"):
        run(seed=9)  # not the method: refused as before


def test_script_without_main_guard_runs(mock_root, tmp_path):
    """The worker never re-imports the evaluator's __main__: a plain script that evaluates
    at top level must not run again inside it."""
    script = tmp_path / "plain.py"
    script.write_text(
        "from deepnetsbench.eval.runner import EvalConfig, evaluate\n"
        f"res = evaluate('kaiming', EvalConfig(mock=True, root={str(mock_root)!r}, archs=[1],\n"
        f"               out={str(tmp_path / 'p.json')!r}, progress=False))\n"
        "print('records', len(res.records), res.records[0].status)\n")
    out = subprocess.run([sys.executable, str(script)], capture_output=True, text=True,
                         timeout=300, env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.count("records 1 ok") == 1
