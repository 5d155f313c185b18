"""Shared fixtures for the evaluator tests: one tiny mock split and image set per session."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

torch.set_num_threads(1)

# Mock architectures 1 and 3 are the quickest at width 8; most tests use them.
FAST = [1, 3]


@pytest.fixture(scope="session")
def mock_root(tmp_path_factory) -> Path:
    from deepnetsbench.eval.runner import open_mock

    root = tmp_path_factory.mktemp("bench-root")
    open_mock("test", root=root)  # generates the 4-architecture split once
    return root


@pytest.fixture()
def run_eval(mock_root, tmp_path):
    """run_eval(method, **config) -> Results, on the mock split/images, journal in tmp_path."""
    from deepnetsbench.eval.methods import LoadedMethod, load_method
    from deepnetsbench.eval.runner import EvalConfig, open_mock, run_evaluation

    def run(method, options=None, hooks=(), **kw):
        loaded = method if isinstance(method, LoadedMethod) else load_method(str(method), options)
        kw.setdefault("out", tmp_path / "res.json")
        kw.setdefault("archs", FAST)
        kw.setdefault("progress", False)
        cfg = EvalConfig(mock=True, root=mock_root, **kw)
        suite, images, size = open_mock(cfg.split, cfg.dataset, mock_root, cfg.seed)
        return run_evaluation(loaded, suite, images, cfg, size, hooks=hooks)

    return run


@pytest.fixture()
def method_file(tmp_path):
    """method_file(body, name="m.py") writes a method file whose predict body is given."""

    def write(source: str, name: str = "m.py") -> Path:
        path = tmp_path / name
        path.write_text(source)
        return path

    return write


def _untimed(records) -> list[dict]:
    """Records as dicts without what varies from run to run: the timings (``predict_time_s``
    and ``extra`` entries in seconds, ``*_s``)."""
    out = []
    for rec in records:
        data = rec.model_dump(mode="json")
        data.pop("predict_time_s", None)
        data["extra"] = {k: v for k, v in data.get("extra", {}).items() if not k.endswith("_s")}
        out.append(data)
    return out


@pytest.fixture()
def untimed():
    """untimed(records) -> comparable dicts: records equal "timings aside"."""
    return _untimed


@pytest.fixture()
def ctrl_c():
    """Ctrl-C raises KeyboardInterrupt here even when the test run itself was started with
    SIGINT ignored (e.g. in the background under nohup)."""
    import signal

    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    yield
    signal.signal(signal.SIGINT, previous)
