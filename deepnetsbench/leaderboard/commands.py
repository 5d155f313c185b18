"""``deepnets-bench leaderboard ...``: submit, validate, render, show, register releases."""

from __future__ import annotations

from pathlib import Path

import click

from deepnetsbench.options import json_option, root_option

_DIR = click.option("--dir", "board", default=None, type=click.Path(file_okay=False),
                    help="Leaderboard directory (default ./leaderboard, which must exist: "
                         "run in the repository's root).")
_RELEASES = click.option("--releases", type=click.Path(dir_okay=False), default=None,
                         help="Releases file (default: $DEEPNETS_BENCH_RELEASES or the packaged one).")


@click.group("leaderboard")
def leaderboard_group() -> None:
    """Validate, submit, rank and render leaderboard entries.

    A results file of `deepnets-bench eval` is checked with `validate` (nothing is
    written), added with `submit` (which renders README.md and site/), then sent as a pull
    request (docs/submitting.md). `show` prints the tables."""


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
    from deepnetsbench.leaderboard.entries import resolve_board, submit

    board = str(resolve_board(board, create=True))
    path = submit(results, board, reproduced=reproduced, releases=releases, render=do_render)
    click.echo(f"added {path}")
    if do_render:
        click.echo(f"rendered {Path(board) / 'README.md'} and {Path(board) / 'site' / 'index.html'}")
    click.echo("next: commit the entry (and the rendered files) and open a pull request")


@leaderboard_group.command("validate")
@click.argument("results", type=click.Path(dir_okay=False))
@_DIR
@_RELEASES
@json_option
def validate_cmd(results: str, board: str, releases: str | None, as_json: bool = False) -> None:
    """Run every submission check on RESULTS without writing anything.

    With --json, one object on stdout either way: "ok" true with the run's figures, or
    false with "error" and "fix" (exit status 2)."""
    from deepnetsbench.leaderboard.entries import is_board, resolve_board, validate

    if as_json:
        _validate_json(results, board, releases)
        return
    if board is None and not is_board("leaderboard"):
        click.echo("note: no ./leaderboard here, so duplicates were not checked (pass --dir)",
                   err=True)
        target = None
    else:
        target = resolve_board(board)
    res = validate(results, target, releases)
    a = res.aggregates.top1
    click.echo(f"ok: {res.method.name} {res.method.version} on {res.suite}/{res.split.name}/"
               f"{res.dataset.name}: top-1 {a.mean:.2f} ± {a.se or 0:.2f} over {res.aggregates.n} "
               "architectures; ready to submit")


def _validate_json(results: str, board: str | None, releases: str | None) -> None:
    import json

    from deepnetsbench.errors import BenchError
    from deepnetsbench.leaderboard.cli_json import validate_error_json, validate_json
    from deepnetsbench.leaderboard.entries import is_board, resolve_board, validate

    try:
        target = None if board is None and not is_board("leaderboard") else resolve_board(board)
        data = validate_json(validate(results, target, releases), results, target is not None)
    except BenchError as err:
        click.echo(json.dumps(validate_error_json(results, err.what, err.fix), indent=2))
        raise click.exceptions.Exit(2) from None
    click.echo(json.dumps(data, indent=2))


@leaderboard_group.command("render")
@_DIR
@_RELEASES
def render_cmd(board: str | None, releases: str | None) -> None:
    """Re-validate every entry, then rebuild README.md and site/index.html from them."""
    from deepnetsbench.leaderboard.entries import board_lock, resolve_board
    from deepnetsbench.leaderboard.render import render

    board = str(resolve_board(board, create=True))
    with board_lock(board):
        paths = render(board, releases)
    for p in paths:
        click.echo(f"wrote {p}")


@leaderboard_group.command("show")
@_DIR
@click.option("--suite", default=None, help="Only this suite.")
@click.option("--split", default=None, help="Only this split (test, wide, ...).")
@click.option("--dataset", default=None, help="Only this dataset (cifar10, ...).")
@json_option
def show_cmd(board: str, suite: str | None, split: str | None, dataset: str | None,
             as_json: bool = False) -> None:
    """Print the leaderboard tables."""
    from rich.console import Console
    from rich.markup import escape  # submitted names are text, not console markup
    from rich.table import Table as RichTable

    from deepnetsbench.leaderboard.board import (
        build_tables,
        fmt_ci,
        fmt_count,
        fmt_mean_se,
        fmt_seconds,
        fmt_speedup,
    )
    from deepnetsbench.leaderboard.entries import load_entries, resolve_board

    board = str(resolve_board(board))
    tables = [t for t in build_tables(load_entries(board))
              if (suite is None or t.suite == suite) and (split is None or t.split == split)
              and (dataset is None or t.dataset == dataset)]
    if as_json:
        import json

        from deepnetsbench.leaderboard.cli_json import show_json

        click.echo(json.dumps(show_json(tables, board), indent=2))
        return
    console = Console()
    if not console.is_terminal:
        console = Console(width=200)  # piped output: do not squeeze the table into 80 columns
    if not tables:
        console.print(f"no entries in {board} match" if Path(board, "entries").is_dir()
                      else f"no entries in {board} yet")
        return
    for t in tables:
        rt = RichTable(title=escape(t.title), title_justify="left")
        for name, right in [("Rank", True), ("Method", False), ("Top-1 (%)", True),
                            ("95% CI", True), ("Top-5 (%)", True), ("Pred. time", True),
                            ("Speed-up", True), ("Fine-tuned", True), ("Params", True),
                            ("Failed", True), ("Date", False), ("Status", False)]:
            rt.add_column(name, justify="right" if right else "left")
        for r in t.rows:
            rt.add_row(str(r.rank), escape(f"{r.method} {r.version}".strip()), fmt_mean_se(r.top1),
                       fmt_ci(r.top1), fmt_mean_se(r.top5), fmt_seconds(r.predict_time_s.mean),
                       fmt_speedup(r.speedup, r.speedup_lower_bound), fmt_mean_se(r.finetune_top1),
                       fmt_count(r.method_params), f"{r.n_failed}/{r.n}", r.date,
                       r.status)
        console.print(rt)


@leaderboard_group.command("import-published")
@click.argument("path", type=click.Path(dir_okay=False))
@_DIR
@click.option("--render/--no-render", "do_render", default=True, show_default=True,
              help="Rebuild README.md and site/ afterwards.")
@_RELEASES
def import_published_cmd(path: str, board: str | None, do_render: bool,
                         releases: str | None) -> None:
    """Maintainers: (re)generate the entries of status `published` (the paper's
    per-architecture figures on the ppuda release) from the official results file
    (data/results_cifar10.json of facebookresearch/ppuda)."""
    from deepnetsbench.leaderboard.entries import resolve_board
    from deepnetsbench.leaderboard.published import import_published

    board = str(resolve_board(board, create=True))
    written, removed = import_published(path, board, releases, render=do_render)
    click.echo(f"wrote {len(written)} published entries to {Path(board) / 'entries'}"
               + (f", removed {len(removed)} earlier ones" if removed else ""))
    if do_render:
        click.echo(f"rendered {Path(board) / 'README.md'} and {Path(board) / 'site' / 'index.html'}")


@leaderboard_group.command("register-split")
@click.argument("name", required=False)
@click.argument("generator_version", required=False)
@click.option("--file", "file_", type=click.Path(dir_okay=False, exists=True), required=True,
              help="The released split file (deepnets1m_<split>.h5) or episode-suite file.")
@click.option("--replace", is_flag=True, help="Replace a registration that was never used.")
@click.option("--dataset", "datasets", multiple=True, metavar="NAME",
              help="deepnets1m-lite/<split> only: a cached image dataset whose lite images "
                   "are pinned too (repeatable; default cifar10).")
@root_option
@_RELEASES
def register_split_cmd(name: str | None, generator_version: str | None, file_: str,
                       replace: bool, datasets: tuple[str, ...], root: str | None,
                       releases: str | None) -> None:
    """Maintainers: record a published split release, with every pin computed from the file
    (sha256, number of items, record names; per dataset for episode suites and for the
    lite subset of a split, NAME deepnets1m-lite/<split>)."""
    from deepnetsbench.eval.lite import LITE
    from deepnetsbench.releases import register_split_file

    if name and name.startswith(LITE + "/"):
        from deepnetsbench.data import load_dataset
        from deepnetsbench.eval.lite import register_lite

        images = [load_dataset(d, root=root, verify=True) for d in datasets or ("cifar10",)]
        name, version, pins = register_lite(name.split("/", 1)[1], file_, images,
                                            generator_version, releases, replace)
    else:
        if datasets:
            from deepnetsbench.errors import BenchError

            raise BenchError("--dataset pins the images of a deepnets1m-lite/<split> release",
                             f"drop --dataset, or name the release {LITE}/<split>")
        name, version, pins = register_split_file(name, file_, generator_version, releases,
                                                  replace)
    unit = "architectures" if name.startswith(LITE + "/") else "episodes"
    counts = (f"{pins['num_items']} items" if "num_items" in pins else ", ".join(
        f"{d}: {p['num_items']} {unit}" for d, p in pins["datasets"].items()))
    click.echo(f"registered split {name} v{version} {pins['sha256']} ({counts})")


@leaderboard_group.command("register-dataset")
@click.argument("name")
@click.option("--file", "file_", type=click.Path(dir_okay=False, exists=True), default=None,
              help="The image-cache file (default: NAME in the cache under --root).")
@root_option
@click.option("--replace", is_flag=True, help="Replace a registration that was wrong.")
@_RELEASES
def register_dataset_cmd(name: str, file_: str | None, root: str | None, replace: bool,
                         releases: str | None) -> None:
    """Maintainers: record an accepted dataset, its content hash and pins computed from the
    decoded images (class count, test size, image sizes)."""
    from deepnetsbench.data.cache import cache_path
    from deepnetsbench.releases import register_dataset_file

    sha, pins = register_dataset_file(name, file_ or cache_path(name, root), releases, replace)
    click.echo(f"registered dataset {name} {sha} ({pins['num_classes']} classes, "
               f"{pins['num_test']} test images, {pins['image_size']} px)")


COMMANDS = [leaderboard_group]
