"""The ``deepnets-bench`` command line.

Each concept keeps its commands in its own ``commands.py``; this file only lists them and
turns :class:`~deepnetsbench.errors.BenchError` into a one-line error. The list is static
(name, module, attribute, one-line summary) so that ``--help`` and ``--version`` import
neither torch nor any command module: a command's module is imported only when that
command runs (or shows its own help). ``tests/test_cli.py`` keeps the table equal to the
commands the modules define.

``--help`` groups the commands (data, evaluate, leaderboard) with one example each, and
lists the baselines' training commands, which are ``python -m`` modules of the
``baselines`` package rather than subcommands: they have their own options and import
torch and the baselines at start, and the suite runs without them (docs/cli.md).
"""

from __future__ import annotations

import importlib
import sys
from typing import NamedTuple

import click

from deepnetsbench import __version__
from deepnetsbench.errors import BenchError


class CommandRef(NamedTuple):
    """Where a command lives, the summary ``--help`` shows without importing it, and the
    section of ``--help`` it is listed in (a key of :data:`SECTIONS`)."""

    module: str
    attr: str
    summary: str
    section: str


_SPLITS, _DATA, _EVAL = "deepnetsbench.splits.commands", "deepnetsbench.data.commands", \
    "deepnetsbench.eval.commands"
_EPISODES = "deepnetsbench.episodes.commands"

#: Sections of ``--help``: key -> (title, examples). Commands are listed in table order.
SECTIONS: dict[str, tuple[str, tuple[str, ...]]] = {
    "data": ("Data", ("deepnets-bench download --dataset cifar10",)),
    "evaluate": ("Evaluate", ("deepnets-bench eval --method mine.py --split test "
                              "--dataset cifar10",)),
    "leaderboard": ("Leaderboard", ("deepnets-bench leaderboard validate "
                                    "mine-test-cifar10.json",)),
}

#: The baselines' training commands: listed under "Baselines", never imported by the CLI.
BASELINES: dict[str, str] = {
    "python -m baselines.ghn2.train": "Train GHN-2 (or GHN-1, MLP) on DeepNets-1M TRAIN "
                                      "architectures and an image dataset.",
    "python -m baselines.pudnet.train": "Train PudNet on an episode suite's training "
                                        "episodes.",
}
BASELINES_EXAMPLES = (
    "python -m baselines.ghn2.train --data cifar10 --device cuda --out runs/ghn2",
    "deepnets-bench eval --method baselines/ghn2/method.py --method-opt "
    "ckpt=runs/ghn2/final.pt",
)

COMMANDS: dict[str, CommandRef] = {
    "list": CommandRef("deepnetsbench.catalog", "list_cmd",
                       "List the suites, splits with their releases, datasets, methods and "
                       "episode suites, known and in the cache.", "data"),
    "download": CommandRef(_DATA, "download",
                           "Fetch image datasets and the architecture splits into the cache, "
                           "then list the cache.", "data"),
    "build": CommandRef(_SPLITS, "build_cmd",
                        "Generate and pack DeepNets-1M splits (resumable, deterministic).",
                        "data"),
    "convert-ppuda": CommandRef(_SPLITS, "convert_ppuda_cmd",
                                "Convert the official DeepNets-1M files in FOLDER into the "
                                "`ppuda` release.", "data"),
    "build-episodes": CommandRef(_EPISODES, "build_episodes_cmd",
                                 "Sample a dataset-episode suite and pack it (indices only) "
                                 "into one HDF5 file.", "data"),
    "info": CommandRef(_SPLITS, "info_cmd",
                       "Table of the splits (and episode suites) in the cache: counts, "
                       "parameters, nodes, versions, sha256.", "data"),
    "episodes-info": CommandRef(_EPISODES, "episodes_info_cmd",
                                "Describe an episode suite (verified against its manifest).",
                                "data"),
    "new-method": CommandRef(_EVAL, "new_method_cmd",
                             "Write a commented method template to PATH (it runs as is).",
                             "evaluate"),
    "eval": CommandRef(_EVAL, "eval_cmd",
                       "Evaluate a parameter-prediction method on a DeepNets-1M split or an "
                       "episode suite.", "evaluate"),
    "merge": CommandRef(_EVAL, "merge_cmd",
                        "Merge the shard results of one run into one results file.", "evaluate"),
    "train-ref": CommandRef("deepnetsbench.training.commands", "train_ref",
                            "Train a reference model and record accuracy against training "
                            "seconds.", "evaluate"),
    "demo": CommandRef("deepnetsbench.demo", "demo",
                       "Run the pipeline end to end: split -> images -> eval -> results.",
                       "evaluate"),
    "leaderboard": CommandRef("deepnetsbench.leaderboard.commands", "leaderboard_group",
                              "Validate, submit, rank and render leaderboard entries.",
                              "leaderboard"),
}


def load_command(name: str) -> click.Command | None:
    """The click command ``name`` (importing its module), or None when this install lacks
    the module."""
    ref = COMMANDS.get(name)
    if ref is None:
        return None
    try:
        module = importlib.import_module(ref.module)
    except ModuleNotFoundError as err:
        if err.name == ref.module:  # a partial install runs the commands it has
            return None
        raise
    return getattr(module, ref.attr, None)


class _Group(click.Group):
    """Commands resolved on first use; the top-level help is drawn from :data:`COMMANDS`."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(set(COMMANDS) | set(self.commands))

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        return self.commands.get(name) or load_command(name)

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        """One section per :data:`SECTIONS` entry, each with an example, then the
        baselines; a stand-in command carries each summary, so nothing is imported."""
        names = self.list_commands(ctx)
        if not names:
            return
        sections: dict[str, list[tuple[str, str]]] = {key: [] for key in SECTIONS}
        for name in [n for n in COMMANDS if n in names] + [n for n in names if n not in COMMANDS]:
            ref = COMMANDS.get(name)
            command = self.commands.get(name) or click.Command(name, help=ref.summary)
            key = ref.section if ref is not None and ref.section in sections else "evaluate"
            sections[key].append((name, command))
        for key, commands in sections.items():
            if not commands:
                continue
            width = max(len(name) for name, _ in commands)
            limit = 2 * (formatter.width - formatter.current_indent - 4 - width)  # two lines
            rows = [(name, command.get_short_help_str(limit)) for name, command in commands]
            title, examples = SECTIONS[key]
            _section(formatter, title, rows, examples)
        _section(formatter, "Baselines (python -m modules of this repository)",
                 list(BASELINES.items()), BASELINES_EXAMPLES, col_max=8)

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except BenchError as err:
            click.secho(f"error: {err.one_line()}", fg="red", err=True)
            sys.exit(2)
        except KeyboardInterrupt:
            click.secho("interrupted: work already finished is kept; re-run to resume.",
                        fg="yellow", err=True)
            sys.exit(130)


def _section(formatter: click.HelpFormatter, title: str, rows: list[tuple[str, str]],
             examples: tuple[str, ...], col_max: int = 30) -> None:
    """A titled list of commands, then its examples unwrapped (ready to copy)."""
    with formatter.section(title):
        formatter.write_dl(rows, col_max=col_max)
        formatter.write_paragraph()
        for i, line in enumerate(examples):
            label = "example:" if i == 0 else "then:"
            formatter.write(f"{'':>{formatter.current_indent}}{label:<9}{line}\n")


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="deepnets-bench")
def main() -> None:
    """Benchmark suite for parameter prediction (DeepNets-1M, GHN-2, PudNet).

    Start with `deepnets-bench list` (what is known and what is in your cache) and
    docs/overview.md; every command takes -h. The cache root is --root, else
    $DEEPNETS_BENCH_ROOT, else ~/.cache/deepnets-bench.
    """


if __name__ == "__main__":
    main()
