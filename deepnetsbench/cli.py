"""The ``deepnets-bench`` command line.

Each concept registers its own commands in its ``commands.py`` module; this file only
assembles them and turns :class:`~deepnetsbench.errors.BenchError` into a one-line error.
"""

from __future__ import annotations

import importlib
import sys

import click

from deepnetsbench import __version__
from deepnetsbench.errors import BenchError

# (module, attribute) of every command or group; a module that is missing is skipped so
# that a partial install still runs the commands it has.
COMMAND_MODULES = [
    "deepnetsbench.splits.commands",
    "deepnetsbench.data.commands",
    "deepnetsbench.eval.commands",
    "deepnetsbench.leaderboard.commands",
    "deepnetsbench.episodes.commands",
    "deepnetsbench.training.commands",
    "deepnetsbench.demo",
]


class _Group(click.Group):
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


def _register() -> None:
    for name in COMMAND_MODULES:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as err:
            if err.name == name:
                continue
            raise
        for command in getattr(module, "COMMANDS", []):
            main.add_command(command)


_register()

if __name__ == "__main__":
    main()
