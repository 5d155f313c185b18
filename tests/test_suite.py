"""The test suite's own layout: one command runs everything, slow tests are named in one
place (tests/conftest.py SLOW), and that list names tests that exist."""

from __future__ import annotations

import re
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def _slow_table(pytestconfig) -> dict[str, str]:
    """tests/conftest.py's SLOW, as pytest loaded it (other folders have a conftest too)."""
    root = REPO / "tests" / "conftest.py"
    for plugin in pytestconfig.pluginmanager.get_plugins():
        if Path(getattr(plugin, "__file__", "") or "") == root:
            return plugin.SLOW
    raise AssertionError(f"{root} is not loaded")


def _readme_test_command() -> str:
    text = (REPO / "README.md").read_text(encoding="utf-8")
    block = text.split("Set up and run the tests", 1)[1].split("```bash\n", 1)[1]
    return block.split("\n```", 1)[0].strip()


def test_ci_runs_exactly_the_readme_command_and_it_filters_nothing():
    command = _readme_test_command()
    ci = (REPO / ".ci" / "run").read_text(encoding="utf-8").strip().splitlines()
    assert ci[-1].strip() == command
    pytest_args = command.split("-m pytest", 1)[1]
    assert " -m " not in f" {pytest_args} " and " -k " not in f" {pytest_args} "


def test_every_slow_entry_names_an_existing_test(pytestconfig):
    for key, why in _slow_table(pytestconfig).items():
        assert why, key
        path, _, name = key.partition("::")
        source = (REPO / path).read_text(encoding="utf-8")  # fails if the file is gone
        if name:
            func = name.split("[")[0]
            assert re.search(rf"^def {re.escape(func)}\(", source, re.M), key
