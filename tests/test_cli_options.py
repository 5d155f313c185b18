"""Every command and option of the CLI (and of the baselines' training commands): help text
everywhere, ``-h`` everywhere, one ``--root`` meaning, grouped top-level help."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from deepnetsbench.cli import BASELINES, BASELINES_EXAMPLES, COMMANDS, SECTIONS, load_command, main
from deepnetsbench.options import ROOT_HELP


def _baselines() -> dict[str, click.Command]:
    from baselines.ghn2.train import _cli
    from baselines.pudnet.train import main as pudnet_main

    return {"baselines.ghn2.train": _cli(), "baselines.pudnet.train": pudnet_main}


def _walk(command: click.Command, path: tuple[str, ...]):
    """(path, command) for ``command`` and, for a group, every subcommand below it."""
    yield path, command
    if isinstance(command, click.Group):
        for name, sub in sorted(command.commands.items()):
            yield from _walk(sub, path + (name,))


def _all_commands() -> list[tuple[tuple[str, ...], click.Command]]:
    found = []
    for name in COMMANDS:
        found += list(_walk(load_command(name), (name,)))
    for name, command in _baselines().items():
        found += list(_walk(command, (name,)))
    return found


ALL = _all_commands()
IDS = [" ".join(path) for path, _ in ALL]


def test_the_walk_sees_every_command():
    paths = {path for path, _ in ALL}
    assert ("leaderboard", "validate") in paths and ("eval",) in paths
    assert ("baselines.ghn2.train",) in paths and len(paths) >= len(COMMANDS) + 2


@pytest.mark.parametrize(("path", "command"), ALL, ids=IDS)
def test_every_command_and_option_has_help(path, command):
    assert (command.help or "").strip(), f"{' '.join(path)} has no docstring"
    missing = [p.opts[0] for p in command.params
               if isinstance(p, click.Option) and not (p.help or "").strip()]
    assert not missing, f"{' '.join(path)}: options without help text: {missing}"


@pytest.mark.parametrize(("path", "command"), ALL, ids=IDS)
def test_root_means_the_cache_root_everywhere(path, command):
    for p in command.params:
        if "--root" in getattr(p, "opts", ()):
            assert p.help == ROOT_HELP, " ".join(path)
            assert isinstance(p.type, click.Path) and not p.type.file_okay, " ".join(path)
            assert p.default is None and p.metavar == "DIR", " ".join(path)


def test_dash_h_works_for_every_deepnets_bench_command():
    runner = CliRunner()
    for path, _ in ALL:
        if path[0].startswith("baselines."):
            continue
        res = runner.invoke(main, [*path, "-h"])
        assert res.exit_code == 0, (path, res.output)
        assert res.output.startswith(f"Usage: main {' '.join(path)}") or \
            res.output.startswith(f"Usage: deepnets-bench {' '.join(path)}"), res.output[:80]


def test_dash_h_works_for_the_baselines():
    runner = CliRunner()
    for name, command in _baselines().items():
        res = runner.invoke(command, ["-h"])
        assert res.exit_code == 0 and "--root DIR" in res.output, (name, res.output)


def _sections(text: str) -> dict[str, str]:
    """Section title -> its text in the top-level help."""
    parts = re.split(r"^(\S[^\n]*):\n", text, flags=re.M)
    return {parts[i]: parts[i + 1] for i in range(1, len(parts) - 1, 2)}


def test_top_level_help_groups_commands_with_an_example_each():
    text = CliRunner().invoke(main, ["-h"]).output
    sections = _sections(text)
    for key, (title, examples) in SECTIONS.items():
        body = sections[title]
        listed = {m.group(1) for m in re.finditer(r"^  (\S+)\s", body, re.M)}
        expected = {n for n, ref in COMMANDS.items() if ref.section == key}
        assert expected <= listed, (title, expected - listed)
        assert f"example: {examples[0]}" in body
    assert {ref.section for ref in COMMANDS.values()} <= set(SECTIONS)
    baselines = next(body for title, body in sections.items() if title.startswith("Baselines"))
    for name in BASELINES:
        assert name in baselines
    assert "example: python -m baselines.ghn2.train" in baselines


def test_help_examples_name_real_commands_and_options():
    """The examples in --help run commands and options that exist."""
    commands = dict(ALL)
    examples = [e for _, ex in SECTIONS.values() for e in ex] + list(BASELINES_EXAMPLES)
    for line in examples:
        words = line.split()
        if words[:2] == ["python", "-m"]:
            path, rest = (words[2],), words[3:]
        else:
            assert words[0] == "deepnets-bench", line
            path = tuple(w for w in words[1:3] if (w,) in commands or (words[1], w) in commands)
            rest = words[1 + len(path):]
        options = {o for p in commands[path].params for o in getattr(p, "opts", ())}
        for word in rest:
            if word.startswith("--"):
                assert word.split("=")[0] in options, (line, word)


DOCS = Path(__file__).resolve().parents[1] / "docs"


@pytest.mark.parametrize("page", ["overview.md", "guide.md", "cli.md"])
def test_doc_command_lines_name_real_commands_and_options(page):
    """Every `deepnets-bench ...` line in a code block of the page runs a real command with
    options it has (the guide's blocks also run: tests/test_docs_guide.py)."""
    commands = dict(ALL)
    text = (DOCS / page).read_text(encoding="utf-8")
    lines = [ln for block in re.findall(r"^```bash\n(.*?)^```", text, re.M | re.S)
             for ln in block.splitlines() if ln.startswith("deepnets-bench ")]
    assert lines or page == "cli.md"
    for line in lines:
        words = shlex.split(line, comments=True)[1:]
        path = (words[0],) if (words[0],) in commands else None
        if len(words) > 1 and (words[0], words[1]) in commands:
            path = (words[0], words[1])
        assert path, line
        params = commands[path].params
        options = {o for p in params for o in (*getattr(p, "opts", ()),
                                                *getattr(p, "secondary_opts", ()))}
        for word in words[len(path):]:
            if word.startswith("--"):
                assert word.split("=")[0] in options, (page, line, word)
