"""Shared test set-up: small thread counts (CI has 2 cores), the ../shared data folder, and
which tests are ``slow``.

``pytest`` runs every test (the README's command, what CI runs); ``pytest -m "not slow"`` is
the development loop. A test is slow when it runs real data or several processes end to end;
:data:`SLOW` lists them in one place, with the reason, so that the cost of the suite is
visible here rather than spread over decorators (``@pytest.mark.slow`` works too).
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

torch.set_num_threads(2)

#: ../shared/data beside the checkout, or $DEEPNETS_BENCH_SHARED_DATA (a worktree elsewhere).
SHARED_DATA = Path(os.environ.get("DEEPNETS_BENCH_SHARED_DATA")
                   or Path(__file__).resolve().parents[1].parent / "shared" / "data")


#: node id (a file, a test, or one parametrisation) -> why it is slow.
SLOW = {
    "tests/baselines/test_ghn2_reference.py": "the committed GHN-2 checkpoint through the "
    "evaluator on real CIFAR-10 (~30 s)",
    "tests/baselines/test_ghn2_train.py::test_torchrun_two_processes_match_one":
        "two torchrun processes training GHN-2 (~12 s)",
    "tests/data/test_data_shared.py::test_other_archives": "decodes three real archives, "
    "Tiny-ImageNet's 110,000 images among them (~12 s)",
    "tests/eval/test_eval_shared.py": "real CIFAR-10 through the evaluator at evaluation width",
    "tests/episodes/test_episodes_shared.py": "episode suites from real archives",
    "tests/eval/test_eval_distributed.py::test_two_ranks_write_the_merged_run":
        "two torchrun processes (~10 s)",
    "tests/eval/test_eval_distributed.py::test_a_failing_rank_stops_the_run_with_its_reason":
        "two torchrun processes (~10 s)",
    "tests/benchmarks/test_gpu_check.py::test_quick_cpu_run_passes_every_check":
        "every check of benchmarks/gpu_check.py end to end, a torchrun among them (~15 s)",
    "tests/graph/test_graph_torchvision.py::test_predefined_model_gets_a_graph[regnet_y_128gf]":
        "builds a 644 M-parameter model (~14 s)",
    "tests/leaderboard/test_leaderboard_browser.py": "starts headless Chromium (~17 s)",
    "tests/eval/test_eval_runner.py::test_resume_after_sigkill":
        "an eval subprocess killed mid-run, then resumed (~5-10 s)",
    "tests/data/test_data_importer.py::test_224px_import_streams_in_bounded_memory":
        "imports a large 224 px archive to bound its memory (~12 s)",
    "tests/test_docs_guide.py::test_every_block_of_the_guide_runs":
        "docs/guide.md end to end: builds TRAIN and TEST, trains, three eval runs with "
        "their workers (80 s at load 6 on the shared 2-core machine)",
}


def _slow_reason(nodeid: str) -> str | None:
    path, _, name = nodeid.partition("::")
    for key in (nodeid, f"{path}::{name.split('[')[0]}", path):
        if key in SLOW:
            return SLOW[key]
    return None


def pytest_collection_modifyitems(config, items):
    for item in items:
        if _slow_reason(item.nodeid) is not None:
            item.add_marker(pytest.mark.slow)


@pytest.fixture(scope="session")
def shared_data() -> Path:
    if not SHARED_DATA.is_dir():
        pytest.skip(f"real datasets not available ({SHARED_DATA} is absent)")
    return SHARED_DATA


@pytest.fixture()
def one_thread():
    """One torch thread: tiny tensors gain nothing from a second one, and on a shared 2-core
    machine every multi-threaded op waits for a busy core."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="session")
def shared_archive(shared_data):
    """shared_archive("cifar10") -> the path of ../shared/data/cifar10.tar.gz (or skip)."""

    def find(name: str) -> Path:
        path = shared_data / f"{name}.tar.gz"
        if not path.is_file():
            pytest.skip(f"{path} is absent")
        return path

    return find


@pytest.fixture(scope="session")
def shared_cifar10_root(tmp_path_factory):
    """The data root that ``shared_cifar10`` decodes into."""
    return tmp_path_factory.mktemp("cifar-root")


@pytest.fixture(scope="session")
def shared_cifar10(shared_archive, shared_cifar10_root):
    """The real CIFAR-10 archive, decoded once per test session into a temporary cache."""
    from deepnetsbench.data import load_archive

    return load_archive(shared_archive("cifar10"), root=shared_cifar10_root, progress=False)
