"""``deepnets-bench leaderboard ...``: submit, validate, render, show, register releases."""

from __future__ import annotations

import hashlib
from pathlib import Path

import click

from deepnetsbench.errors import BenchError

_DIR = click.option("--dir", "board", default="leaderboard", show_default=True,
                    type=click.Path(file_okay=False), help="Leaderboard directory.")
_RELEASES = click.option("--releases", type=click.Path(dir_okay=False), default=None,
                         help="Releases file (default: $DEEPNETS_BENCH_RELEASES or the packaged one).")


@click.group("leaderboard")
def leaderboard_group() -> None:
    """Validate, submit, rank and render leaderboard entries."""


@leaderboard_group.command("submit")
@click.argument("results", type=click.Path(dir_okay=False))
@_DIR
@click.option("--reproduced", is_flag=True,
              help="Maintainers only: the numbers were reproduced from the public code.")
@click.option("--render/--no-render", "do_render", default=True, show_default=True,
              help="Rebuild README.md and site/ after adding the entry.")
@_RELEASES
def submit_cmd(results: str, board: str, reproduced: bool, do_render: bool,
               releases: str | None) -> None:
    """Check RESULTS and add it as a new entry of the leaderboard."""
    from deepnetsbench.leaderboard.entries import submit

    path = submit(results, board, reproduced=reproduced, releases=releases, render=do_render)
    click.echo(f"added {path}")
    if do_render:
        click.echo(f"rendered {Path(board) / 'README.md'} and {Path(board) / 'site' / 'index.html'}")
    click.echo("next: commit the entry (and the rendered files) and open a pull request")


@leaderboard_group.command("validate")
@click.argument("results", type=click.Path(dir_okay=False))
@_DIR
@_RELEASES
def validate_cmd(results: str, board: str, releases: str | None) -> None:
    """Run every submission check on RESULTS without writing anything."""
    from deepnetsbench.leaderboard.entries import validate

    res = validate(results, board, releases)
    a = res.aggregates.top1
    click.echo(f"ok: {res.method.name} {res.method.version} on {res.suite}/{res.split.name}/"
               f"{res.dataset.name}: top-1 {a.mean:.2f} ± {a.se or 0:.2f} over {res.aggregates.n} "
               "architectures; ready to submit")


@leaderboard_group.command("render")
@_DIR
def render_cmd(board: str) -> None:
    """Rebuild README.md and site/index.html from the entries alone."""
    from deepnetsbench.leaderboard.entries import board_lock
    from deepnetsbench.leaderboard.render import render

    with board_lock(board):
        paths = render(board)
    for p in paths:
        click.echo(f"wrote {p}")


@leaderboard_group.command("show")
@_DIR
@click.option("--suite", default=None, help="Only this suite.")
@click.option("--split", default=None, help="Only this split (test, wide, ...).")
@click.option("--dataset", default=None, help="Only this dataset (cifar10, ...).")
def show_cmd(board: str, suite: str | None, split: str | None, dataset: str | None) -> None:
    """Print the leaderboard tables."""
    from rich.console import Console
    from rich.table import Table as RichTable

    from deepnetsbench.leaderboard.board import (
        build_tables,
        fmt_ci,
        fmt_count,
        fmt_mean_se,
        fmt_seconds,
        fmt_speedup,
    )
    from deepnetsbench.leaderboard.entries import load_entries

    tables = [t for t in build_tables(load_entries(board))
              if (suite is None or t.suite == suite) and (split is None or t.split == split)
              and (dataset is None or t.dataset == dataset)]
    console = Console()
    if not console.is_terminal:
        console = Console(width=200)  # piped output: do not squeeze the table into 80 columns
    if not tables:
        console.print(f"no entries in {board} match" if Path(board, "entries").is_dir()
                      else f"no entries in {board} yet")
        return
    for t in tables:
        rt = RichTable(title=t.title, title_justify="left")
        for name, right in [("Rank", True), ("Method", False), ("Top-1 (%)", True),
                            ("95% CI", True), ("Top-5 (%)", True), ("Pred. time", True),
                            ("Speed-up", True), ("Fine-tuned", True), ("Params", True),
                            ("Failed", True), ("Date", False), ("Status", False)]:
            rt.add_column(name, justify="right" if right else "left")
        for r in t.rows:
            rt.add_row(str(r.rank), f"{r.method} {r.version}".strip(), fmt_mean_se(r.top1),
                       fmt_ci(r.top1), fmt_mean_se(r.top5), fmt_seconds(r.predict_time_s.mean),
                       fmt_speedup(r.speedup, r.speedup_lower_bound), fmt_mean_se(r.finetune_top1),
                       fmt_count(r.method_params), f"{r.n_failed}/{r.n}", r.date,
                       "reproduced" if r.reproduced else "self-reported")
        console.print(rt)


def _sha256_of(path: str) -> str:
    h = hashlib.sha256()
    try:
        with open(path, "rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                h.update(block)
    except OSError as err:
        raise BenchError(f"cannot read {path}: {err.strerror}", "check the path") from None
    return h.hexdigest()


@leaderboard_group.command("register-split")
@click.argument("name")
@click.argument("generator_version")
@click.argument("sha256", required=False)
@click.option("--file", "file_", type=click.Path(dir_okay=False), default=None,
              help="Compute the sha256 from this split file instead.")
@_RELEASES
def register_split_cmd(name: str, generator_version: str, sha256: str | None,
                       file_: str | None, releases: str | None) -> None:
    """Maintainers: record a published split release (NAME GENERATOR_VERSION SHA256)."""
    from deepnetsbench.releases import register_split

    if (sha256 is None) == (file_ is None):
        raise BenchError("give either SHA256 or --file", "e.g. register-split test 1 --file test.h5")
    sha = sha256 or _sha256_of(file_)
    path = register_split(name, generator_version, sha, releases)
    click.echo(f"registered split {name} v{generator_version} {sha} in {path}")


@leaderboard_group.command("register-dataset")
@click.argument("name")
@click.argument("content_sha256")
@_RELEASES
def register_dataset_cmd(name: str, content_sha256: str, releases: str | None) -> None:
    """Maintainers: record an accepted dataset content hash (ImageDataset.content_sha256)."""
    from deepnetsbench.releases import register_dataset

    path = register_dataset(name, content_sha256, releases)
    click.echo(f"registered dataset {name} {content_sha256} in {path}")


COMMANDS = [leaderboard_group]
