"""The ``deepnets-bench`` command line.

Each concept keeps its commands in its own ``commands.py``; this file only lists them and
turns :class:`~deepnetsbench.errors.BenchError` into a one-line error. The list is static
(name, module, attribute, one-line summary) so that ``--help`` and ``--version`` import
neither torch nor any command module: a command's module is imported only when that
command runs (or shows its own help). ``tests/test_cli.py`` keeps the table equal to the
commands the modules define.
"""

from __future__ import annotations

import importlib
import sys
from typing import NamedTuple

import click

from deepnetsbench import __version__
from deepnetsbench.errors import BenchError


class CommandRef(NamedTuple):
    """Where a command lives, and the summary ``--help`` shows without importing it."""

    module: str
    attr: str
    summary: str


_SPLITS, _DATA, _EVAL = "deepnetsbench.splits.commands", "deepnetsbench.data.commands", \
    "deepnetsbench.eval.commands"
_EPISODES = "deepnetsbench.episodes.commands"

COMMANDS: dict[str, CommandRef] = {
    "build": CommandRef(_SPLITS, "build_cmd",
                        "Generate and pack DeepNets-1M splits (resumable, deterministic)."),
    "info": CommandRef(_SPLITS, "info_cmd",
                       "Table of the splits (and episode suites) in the cache: counts, "
                       "parameters, nodes, versions, sha256."),
    "convert-ppuda": CommandRef(_SPLITS, "convert_ppuda_cmd",
                                "Convert the official DeepNets-1M files you have "
                                "(deepnets1m_eval.hdf5 and the unpacked deepnets1m_meta.tar.gz; "
                                "deepnets1m_train.hdf5 with --train) into the `ppuda` release "
                                "(DeepNets1M(split, release=\"ppuda\"), `eval --release "
                                "ppuda`)."),
    "download": CommandRef(_DATA, "download",
                           "Fetch image datasets and the architecture splits into the cache, "
                           "then list the cache."),
    "eval": CommandRef(_EVAL, "eval_cmd",
                       "Evaluate a parameter-prediction method on a DeepNets-1M split or an "
                       "episode suite."),
    "merge": CommandRef(_EVAL, "merge_cmd",
                        "Merge the shard results of one run into one results file."),
    "new-method": CommandRef(_EVAL, "new_method_cmd",
                             "Write a commented method template to PATH (it runs as is)."),
    "leaderboard": CommandRef("deepnetsbench.leaderboard.commands", "leaderboard_group",
                              "Validate, submit, rank and render leaderboard entries."),
    "build-episodes": CommandRef(_EPISODES, "build_episodes_cmd",
                                 "Sample a dataset-episode suite and pack it (indices only) "
                                 "into one HDF5 file."),
    "episodes-info": CommandRef(_EPISODES, "episodes_info_cmd",
                                "Describe an episode suite (verified against its manifest)."),
    "train-ref": CommandRef("deepnetsbench.training.commands", "train_ref",
                            "Train a reference model and record accuracy against training "
                            "seconds."),
    "demo": CommandRef("deepnetsbench.demo", "demo",
                       "Run the pipeline end to end: split -> images -> eval -> results."),
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
        names = self.list_commands(ctx)
        if not names:
            return
        limit = formatter.width - 6 - max(len(n) for n in names)
        rows = []
        for name in names:  # a stand-in command carries the summary: nothing is imported
            command = self.commands.get(name) or click.Command(name, help=COMMANDS[name].summary)
            rows.append((name, command.get_short_help_str(limit)))
        with formatter.section("Commands"):
            formatter.write_dl(rows)

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


@click.group(cls=_Group)
@click.version_option(__version__, prog_name="deepnets-bench")
def main() -> None:
    """Benchmark suite for parameter prediction (DeepNets-1M, GHN-2, PudNet)."""


if __name__ == "__main__":
    main()
