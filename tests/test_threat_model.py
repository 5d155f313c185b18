"""The threat model's regression suite (docs/submitting.md, "Threat model").

Every attack that once produced an accepted or wrong result has a test. The attacks on the
evaluator itself (a method plugin that cheats from inside the run) are here; the others
live beside the code they exercise and are indexed in ``ATTACKS`` below, which a test keeps
honest (every listed test exists).
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

FAST = [1, 3]  # the quickest mock architectures (tests/eval/conftest.py)
TESTS = Path(__file__).resolve().parent

#: attack -> the test that keeps it out (path relative to tests/, test function name).
ATTACKS = {
    "plugin patches the scorer (evaluate_accuracy -> 99.5 %)":
        ("test_threat_model.py", "test_patching_the_scorer_changes_nothing"),
    "plugin reads the test images/labels from the caller's frames or the heap":
        ("test_threat_model.py", "test_no_test_data_in_the_worker"),
    "plugin leaves a forward hook / replaces model.forward for scoring":
        ("test_threat_model.py", "test_hooks_and_forward_do_not_travel"),
    "sys.exit / os._exit / a crash in predict stops the run":
        ("test_threat_model.py", "test_exit_and_crash_fail_one_architecture"),
    "predict catches the timeout and sleeps on":
        ("test_threat_model.py", "test_overrunning_worker_is_killed"),
    "edited split.num_items / dataset.num_test, dropped records":
        ("leaderboard/test_leaderboard_threats.py", "test_relabelled_partial_run_is_refused"),
    "byte flipped in the split file with its mtime restored":
        ("splits/test_splits_threats.py", "test_flipped_byte_with_restored_mtime_is_detected"),
    "an episode suite edited with its mtime restored":
        ("splits/test_splits_threats.py", "test_episode_suites_are_verified_by_content"),
    "another split with the official hash written into its manifest":
        ("splits/test_splits_threats.py", "test_manifest_claim_is_not_trusted"),
    "h5py read error mid-run is a traceback":
        ("splits/test_splits_threats.py", "test_read_error_mid_run_is_one_line"),
    "speedup.value = Infinity (page JSON unparsable)":
        ("leaderboard/test_leaderboard_threats.py", "test_non_finite_numbers_are_refused"),
    "non-UTF-8, deeply nested or 200 MB results files":
        ("leaderboard/test_leaderboard_threats.py", "test_hostile_files_are_one_line_refusals"),
    "method.url with )<script>, a name with \\r":
        ("leaderboard/test_leaderboard_threats.py", "test_hostile_text_is_refused_and_escaped"),
    "a hand-edited entry is rendered":
        ("leaderboard/test_leaderboard_threats.py", "test_render_revalidates_entries"),
    "render/show outside the repository use an empty ./leaderboard":
        ("leaderboard/test_leaderboard_threats.py", "test_render_and_show_need_a_leaderboard"),
    "mock results refused as 'not a released split'; in-process results":
        ("leaderboard/test_leaderboard_threats.py", "test_mock_and_in_process_results_are_refused"),
    "download --dataset cifar10 --from mnist.tar.gz":
        ("data/test_data_importer.py", "test_from_checks_a_registered_dataset"),
    "an all-failed run exits 0":
        ("eval/test_eval_commands.py",
         "test_raising_method_gives_failed_records_and_exit_2_when_nothing_succeeded"),
    "eval --mock after editing the method fails on the journal":
        ("eval/test_eval_runner.py", "test_mock_run_restarts_when_the_method_file_changed"),
    "SIGTERM stops a run without results":
        ("eval/test_eval_commands.py", "test_ctrl_c_and_sigterm_keep_done_work_and_exit_130"),
    "a 224 px import is killed at 21.7 GB":
        ("data/test_data_importer.py", "test_224px_import_streams_in_bounded_memory"),
    "the first grey JPEG decides the colour mode":
        ("data/test_data_importer.py", "test_any_colour_image_makes_the_dataset_rgb"),
    "class names lost in the cache":
        ("data/test_data_importer.py", "test_class_names_are_stored_in_the_cache"),
    ".ppm images skipped with 'found 0'":
        ("data/test_data_importer.py", "test_common_formats_are_read"),
    "info lists no image dataset":
        ("data/test_data_importer.py", "test_info_lists_cached_image_datasets"),
}


def test_every_attack_has_its_test():
    for attack, (file, name) in ATTACKS.items():
        path = TESTS / file
        assert path.is_file(), f"{attack}: {file} is missing"
        names = {n.name for n in ast.walk(ast.parse(path.read_text(encoding="utf-8")))
                 if isinstance(n, ast.FunctionDef)}
        assert name in names, f"{attack}: {file} has no {name}"


# ----------------------------------------------------------------------------- the evaluator

HEADER = """
import math, os, sys, time
import torch
from deepnetsbench.eval.methods import MethodBase, MethodMeta

def kaiming(model):
    return {n: (torch.randn_like(p) * math.sqrt(2 / p[0].numel()) if p.dim() > 1
                else torch.zeros_like(p)) for n, p in model.named_parameters()}
"""


@pytest.fixture(scope="module")
def mock_root(tmp_path_factory) -> Path:
    from deepnetsbench.eval.runner import open_mock

    root = tmp_path_factory.mktemp("threat-root")
    open_mock("test", root=root)
    return root


@pytest.fixture
def attack(mock_root, tmp_path, one_thread):
    """attack(source, **config) -> Results of a method file (HEADER + source) on mock
    architectures 1 and 3, isolated as ``deepnets-bench eval`` runs it."""
    from deepnetsbench.eval.runner import EvalConfig, open_mock, run_evaluation

    def run(source: str, **kw):
        path = tmp_path / "attack.py"
        path.write_text(HEADER + source)
        cfg = EvalConfig(mock=True, root=mock_root, out=tmp_path / "res.json", archs=FAST,
                         progress=False, restart=True, **kw)
        suite, images, size = open_mock("test", root=mock_root)
        return run_evaluation(str(path), suite, images, cfg, size)
    return run


def test_patching_the_scorer_changes_nothing(attack):
    import deepnetsbench.eval.accuracy as accuracy
    import deepnetsbench.eval.runner as runner
    import deepnetsbench.eval.scoring as scoring

    before = (runner.evaluate_arch, scoring.evaluate_accuracy, accuracy.evaluate_accuracy)
    res = attack("""
import deepnetsbench.eval.accuracy, deepnetsbench.eval.runner, deepnetsbench.eval.scoring
fake = lambda *a, **k: (99.5, 100.0)
for m in (deepnetsbench.eval.accuracy, deepnetsbench.eval.scoring, deepnetsbench.eval.runner):
    m.evaluate_accuracy = fake            # at import time ...

class Method(MethodBase):
    meta = MethodMeta(name="patcher")
    def predict(self, model, task):
        deepnetsbench.eval.scoring.evaluate_accuracy = fake   # ... and during predict
        return kaiming(model)
""")
    assert [r.status for r in res.records] == ["ok", "ok"]
    assert all(r.top1 < 50 for r in res.records), [r.top1 for r in res.records]
    assert (runner.evaluate_arch, scoring.evaluate_accuracy, accuracy.evaluate_accuracy) == before


def test_no_test_data_in_the_worker(attack, tmp_path):
    """The mock's 128 test images are [128, 3, 32, 32]: nothing of that shape, nor any
    local called images/x/y holding tensors, exists anywhere in the method's process."""
    report = tmp_path / "found.txt"
    res = attack(f"""
import gc

class Method(MethodBase):
    def predict(self, model, task):
        found = []
        frame = sys._getframe(1)
        while frame is not None:
            for k, v in frame.f_locals.items():
                if k in ("images", "x", "y", "journal") or "EvalImages" in type(v).__name__:
                    found.append(f"frame local {{k}}")
            frame = frame.f_back
        for obj in gc.get_objects():
            if isinstance(obj, torch.Tensor) and obj.shape[:1] == (128,):
                found.append(f"tensor {{tuple(obj.shape)}}")
        open({str(report)!r}, "a").write(repr(found) + "\\n")
        return kaiming(model)
""")
    assert [r.status for r in res.records] == ["ok", "ok"]
    lines = report.read_text().splitlines()
    assert lines == ["[]", "[]"], lines


def test_hooks_and_forward_do_not_travel(attack, tmp_path):
    """A forward hook or a replaced forward would let a method answer with chosen logits;
    only tensors reach the evaluator's own network."""
    marker = tmp_path / "called"
    res = attack(f"""
def mark(*args):
    open({str(marker)!r}, "a").write("x")

class Method(MethodBase):
    def predict(self, model, task):
        model.register_forward_hook(lambda m, i, o: (mark(), torch.zeros_like(o))[1])
        model.forward = lambda x: (mark(), torch.zeros(x.shape[0], task.num_classes))[1]
        return None   # filled "in place": the evaluator still takes tensors only
""")
    assert [r.status for r in res.records] == ["ok", "ok"]
    assert not marker.exists()  # neither ran when the evaluator scored


CRASH = """
import signal

class Method(MethodBase):
    def predict(self, model, task):
        how = os.environ["DNB_HOW"]
        if task.arch.index == 1:
            if how == "exit":
                sys.exit(3)
            if how == "_exit":
                os._exit(3)
            os.kill(os.getpid(), signal.SIGSEGV)
        return kaiming(model)
"""


@pytest.mark.parametrize("how, message", [
    ("exit", r"^predict raised SystemExit: 3"),
    ("_exit", r"worker died during predict \(exit status 3"),
    ("segv", r"worker died during predict \(killed by SIGSEGV"),
])
def test_exit_and_crash_fail_one_architecture(attack, monkeypatch, how, message):
    monkeypatch.setenv("DNB_HOW", how)  # the worker starts with the evaluator's environment
    res = attack(CRASH)
    first, second = res.records
    assert first.status == "failed" and re.search(message, first.error), first.error
    assert second.status == "ok", second.error  # a fresh worker took the next one
    assert res.protocol.extra["worker_starts"] == 2


def test_overrunning_worker_is_killed(attack):
    import time

    t0 = time.perf_counter()
    res = attack("""
class Method(MethodBase):
    def predict(self, model, task):
        if task.arch.index == 1:
            while True:          # swallows any exception a timer could raise, and sleeps on
                try:
                    time.sleep(60)
                except BaseException:
                    pass
        return kaiming(model)
""", time_limit=1.0)
    assert time.perf_counter() - t0 < 60
    first, second = res.records
    assert first.status == "failed" and "exceeded the time limit of 1 s" in first.error
    assert "worker was stopped" in first.error and first.predict_time_s is None
    assert second.status == "ok" and second.predict_time_s < 1.0
