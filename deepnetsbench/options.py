"""Command-line options that several commands share, defined once so that they mean the
same thing everywhere (``tests/test_cli_options.py`` checks every command uses these).

Only click is imported here: the command modules import this at load time, and ``--help``
must stay torch-free.
"""

from __future__ import annotations

import click

__all__ = ["JSON_HELP", "ROOT_HELP", "json_option", "root_option"]

ROOT_HELP = ("Cache root for datasets, splits and episode suites: this folder, else "
             "$DEEPNETS_BENCH_ROOT, else ~/.cache/deepnets-bench.")
JSON_HELP = "Print one JSON object on stdout instead of tables (shape: docs/cli.md)."


def root_option(func=None):
    """``--root DIR``: the cache root, resolved by :func:`deepnetsbench.paths.data_root`."""
    option = click.option("--root", type=click.Path(file_okay=False), default=None,
                          metavar="DIR", help=ROOT_HELP)
    return option if func is None else option(func)


def json_option(func=None):
    """``--json``: machine-readable output, one JSON object on stdout."""
    option = click.option("--json", "as_json", is_flag=True, help=JSON_HELP)
    return option if func is None else option(func)
