"""CLI: ``build``, ``info`` and ``convert-ppuda``."""

from __future__ import annotations

from pathlib import Path

import click
import numpy as np

from deepnetsbench.errors import BenchError
from deepnetsbench.options import root_option
from deepnetsbench.splits.build import ALL_SPLITS, build_split
from deepnetsbench.splits.format import release_dir, split_path

_root = root_option()


@click.command("build")
@click.option("--split", "splits", multiple=True, type=click.Choice(ALL_SPLITS),
              help="Split(s) to generate (default: every evaluation split and predefined).")
@click.option("--suite", default="deepnets1m", show_default=True,
              help="deepnets1m, or an episode suite (see `deepnets-bench build-episodes`).")
@click.option("--num", type=int, default=None, help="Number of architectures (default: published size).")
@click.option("--workers", type=int, default=2, show_default=True,
              help="Processes generating architectures (the files do not depend on it).")
@click.option("--seed", type=int, default=None, help="Override the split's seed.")
@_root
def build_cmd(splits, suite, num, workers, seed, root):
    """Generate and pack DeepNets-1M splits (resumable, deterministic)."""
    if suite != "deepnets1m":
        raise BenchError(f"`build --suite {suite}` is not an architecture suite",
                         "use `deepnets-bench build-episodes` for dataset-episode suites")
    splits = splits or ("val", "test", "wide", "deep", "dense", "bnfree", "predefined")
    for split in splits:
        path = build_split(split, num, root=root, workers=workers, seed=seed)
        click.echo(f"{split}: {path}")


@click.command("info")
@click.option("--split", "splits", multiple=True, type=click.Choice(ALL_SPLITS),
              help="Only these splits (repeatable; default: every split in the cache).")
@click.option("--release", default=None, help="A named release, e.g. ppuda (default: the built splits).")
@_root
def info_cmd(splits, release, root):
    """Table of the splits (and episode suites) in the cache: counts, parameters, nodes,
    versions, sha256.

    Also lists the cached image datasets (classes, sizes, content hashes)."""
    from rich.console import Console
    from rich.table import Table

    from deepnetsbench.splits.dataset import DeepNets1M

    directory = release_dir(root, release)
    table = Table(title=f"DeepNets-1M splits in {directory}")
    for col in ("split", "archs", "params median (M)", "params min-max (M)", "nodes mean (max)",
                "generator", "format", "sha256"):
        table.add_column(col)
    shown = 0
    for split in splits or ALL_SPLITS:
        path = split_path(directory, split)
        if not path.exists():
            if splits:
                table.add_row(split, "missing", "", "", "", "", "", "run `deepnets-bench build`")
            continue
        ds = DeepNets1M(split, path=path)
        p = ds.num_params / 1e6
        n = ds.num_nodes()
        table.add_row(split, f"{len(ds):,}", f"{np.median(p):.2f}", f"{p.min():.2f}-{p.max():.1f}",
                      f"{n.mean():.0f} ({n.max()})", str(ds.attrs.get("generator_version")),
                      str(ds.attrs.get("format_version")), (ds.sha256 or "")[:16])
        shown += 1
    console = Console()
    console.print(table)
    if not shown and not splits:
        click.echo("no splits yet: run `deepnets-bench download` or `deepnets-bench build`")
    if not splits and not release:  # dataset-episode suites live beside the splits
        from deepnetsbench.episodes.info import describe_suite
        from deepnetsbench.episodes.suite import episodes_dir

        for path in sorted(episodes_dir(root).glob("*.h5")):
            console.print(describe_suite(path))
        from deepnetsbench.data.commands import image_table

        console.print(image_table(root))  # classes, sizes and content hashes


@click.command("convert-ppuda")
@click.argument("folder", type=click.Path(exists=True, file_okay=False))
@click.option("--train/--no-train", default=False,
              help="Also convert deepnets1m_train.hdf5 (10 GB, streamed; resumable).")
@click.option("--allow-mismatch", is_flag=True,
              help="Convert even if parameter counts differ from the published ones; the "
                   "release is then marked unverified (generator version ppuda-unverified).")
@click.option("--workers", type=int, default=2, show_default=True,
              help="Processes for the TRAIN conversion.")
@click.option("--published-params", type=click.Path(exists=True, dir_okay=False), default=None,
              help="Published counts to check against (default: the packaged "
                   "results_cifar10.json figures).")
@_root
def convert_ppuda_cmd(folder, train, allow_mismatch, workers, published_params, root):
    """Convert the official DeepNets-1M files in FOLDER into the `ppuda` release.

    FOLDER holds deepnets1m_eval.hdf5 and the unpacked deepnets1m_meta.tar.gz (and
    deepnets1m_train.hdf5 with --train). Read the result with DeepNets1M(split,
    release="ppuda") or evaluate on it with `eval --release ppuda`."""
    from deepnetsbench.splits.fetch import convert_official
    from deepnetsbench.splits.format import release_dir
    from deepnetsbench.splits.ppuda_convert import RELEASE, ParamMismatch

    out = release_dir(root, RELEASE)
    try:
        paths = convert_official(Path(folder), out, train=train, allow_mismatch=allow_mismatch,
                                 workers=workers, published=published_params, progress=True)
    except ParamMismatch as err:
        for line in err.lines:
            click.echo(line, err=True)
        raise
    for path in paths:
        click.echo(f"wrote {path}")
    click.echo(f"checks: {out / 'ppuda_report.json'}")


COMMANDS = [build_cmd, info_cmd, convert_ppuda_cmd]
