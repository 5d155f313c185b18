"""CLI: ``build``, ``info`` and ``convert-ppuda``."""

from __future__ import annotations

from pathlib import Path

import click
import numpy as np

from deepnetsbench.errors import BenchError
from deepnetsbench.paths import splits_dir
from deepnetsbench.splits.build import ALL_SPLITS, build_split
from deepnetsbench.splits.format import split_path

_root = click.option("--root", type=click.Path(file_okay=False), default=None,
                     help="Cache root (default $DEEPNETS_BENCH_ROOT or ~/.cache/deepnets-bench).")


@click.command("build")
@click.option("--split", "splits", multiple=True, type=click.Choice(ALL_SPLITS),
              help="Split(s) to generate (default: every evaluation split and predefined).")
@click.option("--suite", default="deepnets1m", show_default=True,
              help="deepnets1m, or an episode suite (see `deepnets-bench build-episodes`).")
@click.option("--num", type=int, default=None, help="Number of architectures (default: published size).")
@click.option("--workers", type=int, default=2, show_default=True)
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
@click.option("--split", "splits", multiple=True, type=click.Choice(ALL_SPLITS))
@_root
def info_cmd(splits, root):
    """Table of the splits (and episode suites) in the cache: counts, parameters, nodes,
    versions, sha256.

    Also lists the cached image datasets (classes, sizes, content hashes)."""
    from rich.console import Console
    from rich.table import Table

    from deepnetsbench.splits.dataset import DeepNets1M

    directory = splits_dir(root)
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
        ds = DeepNets1M(split, root=root)
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
    if not splits:  # dataset-episode suites live beside the architecture splits
        from deepnetsbench.episodes.info import describe_suite
        from deepnetsbench.episodes.suite import episodes_dir

        for path in sorted(episodes_dir(root).glob("*.h5")):
            console.print(describe_suite(path))
        from deepnetsbench.data.commands import image_table

        console.print(image_table(root))  # classes, sizes and content hashes


@click.command("convert-ppuda")
@click.argument("folder", type=click.Path(exists=True, file_okay=False))
@click.option("--train/--no-train", default=False, help="Also convert deepnets1m_train.hdf5.")
@_root
def convert_ppuda_cmd(folder, train, root):
    """Convert official DeepNets-1M files you already have (deepnets1m_eval.hdf5,
    deepnets1m_meta.tar.gz or its JSON files) into the suite's format."""
    from deepnetsbench.splits.fetch import convert_official

    for path in convert_official(Path(folder), splits_dir(root), train=train):
        click.echo(f"wrote {path}")


COMMANDS = [build_cmd, info_cmd, convert_ppuda_cmd]
