"""The command line: a static, lazy command table that stays equal to the real commands."""

from __future__ import annotations

import importlib
import json
import re
import subprocess
import sys
from pathlib import Path

from click.testing import CliRunner

import deepnetsbench
from deepnetsbench.cli import COMMANDS, load_command, main

PACKAGE = Path(deepnetsbench.__file__).parent

PROBE = """
import json, sys
import deepnetsbench.cli
from click.testing import CliRunner
out = [CliRunner().invoke(deepnetsbench.cli.main, [a]).output for a in ("--help", "--version")]
heavy = sorted(m for m in ("torch", "numpy", "h5py", "pandas", "pydantic", "rich")
               if m in sys.modules)
print(json.dumps({"heavy": heavy, "commands": sorted(m for m in sys.modules
                                                      if m.endswith(".commands"))}))
"""


def _defined_commands() -> dict[str, tuple[str, object]]:
    """name -> (module, command) for every ``COMMANDS = [...]`` list in the package."""
    found = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        if not re.search(r"^COMMANDS = \[", path.read_text(encoding="utf-8"), re.M):
            continue
        rel = path.relative_to(PACKAGE.parent).with_suffix("")
        module = importlib.import_module(".".join(rel.parts))
        for command in module.COMMANDS:
            found[command.name] = (module.__name__, command)
    return found


def test_help_and_version_import_no_heavy_module():
    # A subprocess: this test session has long imported torch.
    out = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True,
                         check=True).stdout
    probe = json.loads(out.strip().splitlines()[-1])
    assert probe == {"heavy": [], "commands": []}


def test_table_matches_the_commands_the_modules_define():
    defined = _defined_commands()
    assert sorted(defined) == sorted(COMMANDS), "update deepnetsbench/cli.py COMMANDS"
    for name, (module, command) in defined.items():
        ref = COMMANDS[name]
        assert ref.module == module, name
        assert getattr(importlib.import_module(ref.module), ref.attr) is command, name
        assert ref.summary == command.get_short_help_str(limit=1000), (
            f"{name}: summary in deepnetsbench/cli.py differs from its docstring")


def test_help_lists_every_command_and_a_command_still_runs():
    runner = CliRunner()
    text = runner.invoke(main, ["--help"]).output
    for name in COMMANDS:
        assert re.search(rf"^\s+{re.escape(name)}\s", text, re.M), name
    res = runner.invoke(main, ["new-method", "--help"])
    assert res.exit_code == 0 and "template" in res.output
    assert load_command("no-such-command") is None


def test_python_dash_m_runs_the_cli():
    res = subprocess.run([sys.executable, "-m", "deepnetsbench", "--version"],
                         capture_output=True, text=True, check=True)
    assert res.stdout.strip() == f"deepnets-bench, version {deepnetsbench.__version__}"
