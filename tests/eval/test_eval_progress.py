"""The run's cost line and its progress bar: MACs from the specs, images inside an
architecture, a MACs-weighted time left from the first batches and then the finished
architectures."""

from __future__ import annotations

import io

import pytest
from rich.console import Console

from deepnetsbench.eval import progress as progress_mod
from deepnetsbench.eval.progress import (
    RunCost,
    RunProgress,
    arch_macs,
    format_count,
    format_duration,
    run_cost,
)


def test_formats():
    assert format_count(2.18e15) == "2.18 P" and format_count(437e6) == "437 M"
    assert format_count(950) == "950" and format_count(1.5e3) == "1.5 K"
    assert format_duration(45) == "45 s" and format_duration(12 * 60) == "12 min"
    assert format_duration(3 * 3600 + 5 * 60) == "3 h 05 min"


def test_cost_line_and_weights():
    cost = RunCost(items=[4, 7, 9], images=1000, macs=[100, 300, None])
    assert cost.total_macs == (100 + 300 + 200) * 1000  # the unknown one counts as the mean
    assert cost.weights() == {4: 100_000.0, 7: 300_000.0, 9: 200_000.0}
    line = cost.line()
    assert line.startswith("cost: 3 architectures x 1,000 images = 3,000 network passes")
    assert "600 K MACs" in line and "mean 200 MACs per image" in line
    assert "1 counted as the mean" in line


def test_run_cost_agrees_with_the_evaluators_count(mock_root):
    """The cost uses spec_macs; the evaluator's records count MACs on the built network."""
    import torch

    from deepnetsbench.eval.inputs import EvalImages, open_mock
    from deepnetsbench.eval.scoring import count_macs

    suite, dataset, size = open_mock("test", root=mock_root)
    images = EvalImages(dataset, size, torch.device("cpu"), limit=100)
    cost = run_cost(suite, [0, 1, 2, 3], images)
    assert cost.images == 100 and len(cost.macs) == 4
    for i, macs in zip(cost.items, cost.macs):
        model = suite[i].build_model(num_classes=images.num_classes, image_size=size)
        assert macs == count_macs(model, size, torch.device("cpu"))


def test_arch_macs_of_an_unbuildable_record_is_none():
    class Broken:
        spec = None
        image_size = 32

        def build_model(self, **kw):
            raise RuntimeError("no")

    assert arch_macs(Broken(), 10, 32) is None


class Clock:
    def __init__(self):
        self.t = 100.0

    def __call__(self) -> float:
        return self.t


@pytest.fixture
def clock(monkeypatch):
    c = Clock()
    monkeypatch.setattr(progress_mod.time, "perf_counter", c)
    return c


def _console() -> tuple[Console, io.StringIO]:
    buf = io.StringIO()
    return Console(file=buf, width=200, force_terminal=False), buf


def test_time_left_from_first_batches_then_from_finished_architectures(clock):
    console, buf = _console()
    # three architectures, the last one three times the work of the others
    bar = RunProgress(True, console, total=3, weights={0: 1e9, 1: 1e9, 2: 3e9}, device="cpu")
    with bar:
        bar.start(0, "a")
        assert bar.eta_seconds() is None and bar.measuring
        clock.t += 0.5  # prediction
        bar.images(0, 1000)
        clock.t += 0.5
        bar.images(200, 1000)  # the first batch (kernel set-up): not timed
        clock.t += 0.5
        bar.images(400, 1000)  # too early for the estimate (< FIRST_BATCHES_S)
        assert bar.eta_seconds() is None
        clock.t += 0.5
        bar.images(600, 1000)  # 0.4e9 work in 1 s after the first batch: 0.4e9 per second
        assert not bar.measuring
        left = 5e9 - 0.6e9
        assert bar.eta_seconds() == pytest.approx(left / 0.4e9)
        clock.t += 1.0
        assert bar.eta_seconds() == pytest.approx(left / 0.4e9 - 1.0)  # counts down
        bar.images(1000, 1000)
        clock.t += 0.5
        bar.advance(True)  # 1e9 work in 3.5 s in all, prediction included
        assert bar.eta_seconds() == pytest.approx(4e9 / (1e9 / 3.5))
        bar.start(1, "b")
        clock.t += 1.0
        bar.advance(False)  # a failure: its work is gone, its time does not set the rate
        assert bar.eta_seconds() == pytest.approx(3e9 / (1e9 / 3.5))
        assert bar.ok == 1 and bar.failed == 1
    text = buf.getvalue()
    assert "estimate on cpu: 11 s left (from the first batches, scoring only: 400 M MACs/s)" \
        in text
    assert "estimate on cpu: 14 s left (after the first architecture, with prediction and " \
        "building: 286 M MACs/s)" in text
    assert text.count("estimate") == 2


def test_without_weights_items_count_alike_and_nothing_is_claimed(clock):
    console, buf = _console()
    bar = RunProgress(True, console, total=4, done=1)
    with bar:
        bar.start(1, "x")
        clock.t += 2.0
        bar.advance(True)
        assert bar.eta_seconds() == pytest.approx(2 * 2.0)  # two items left, 2 s each
    assert "estimate" not in buf.getvalue()  # no MACs, no MACs/s


def test_disabled_bar_draws_and_prints_nothing(clock):
    console, buf = _console()
    bar = RunProgress(False, console, total=2, weights={0: 1.0, 1: 1.0})
    with bar:
        bar.start(0, "a")
        bar.images(0, 10)
        assert not bar.measuring  # nothing synchronises a device for a bar nobody sees
        bar.images(10, 10)
        bar.advance(True)
        bar.log("hidden")
    assert buf.getvalue() == ""


def test_a_mock_run_prints_its_cost_and_estimates_before_results(mock_root, tmp_path):
    from deepnetsbench.eval.methods import load_method
    from deepnetsbench.eval.runner import EvalConfig, open_mock, run_evaluation

    console, buf = _console()
    cfg = EvalConfig(mock=True, root=mock_root, archs=[1, 3], out=tmp_path / "r.json",
                     progress=True, isolation="in-process")
    suite, images, size = open_mock("test", root=mock_root)
    res = run_evaluation(load_method("kaiming"), suite, images, cfg, size, console=console)
    text = buf.getvalue()
    expected = run_cost(suite, [1, 3], type("I", (), {"num_classes": 10, "image_size": size,
                                                      "eval_images": len(images.test_y)})())
    assert text.splitlines()[0] == expected.line()
    assert "estimate on cpu:" in text and "after the first architecture" in text
    assert sum(r.flops for r in res.records) * len(images.test_y) == expected.total_macs
    # a finished run re-run prints no cost: nothing is left to do
    console2, buf2 = _console()
    run_evaluation(load_method("kaiming"), suite, images, cfg, size, console=console2)
    assert "cost:" not in buf2.getvalue()
