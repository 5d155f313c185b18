"""CLI: ``build``, ``info`` and ``convert-ppuda``."""

from __future__ import annotations

from pathlib import Path

import click
import numpy as np

from deepnetsbench.errors import BenchError
from deepnetsbench.options import json_option, root_option
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


INFO_KIND = "deepnets-bench-info"
INFO_VERSION = 1


def split_rows(root, release: str | None, splits: tuple[str, ...] = ()) -> list[dict]:
    """One dict per split file in the release's folder (hashed and verified as it is
    opened): architectures, parameter and node statistics, versions, sha256. A split named
    in ``splits`` but absent gets ``present: False``."""
    from deepnetsbench.splits.dataset import DeepNets1M

    directory = release_dir(root, release)
    rows = []
    for split in splits or ALL_SPLITS:
        path = split_path(directory, split)
        if not path.exists():
            if splits:
                rows.append({"split": split, "path": str(path), "present": False})
            continue
        ds = DeepNets1M(split, path=path)
        p = ds.num_params / 1e6
        n = ds.num_nodes()
        rows.append({
            "split": split, "path": str(path), "present": True, "archs": len(ds),
            "params_median_m": float(np.median(p)), "params_min_m": float(p.min()),
            "params_max_m": float(p.max()), "nodes_mean": float(n.mean()),
            "nodes_max": int(n.max()), "generator_version": ds.attrs.get("generator_version"),
            "format_version": ds.attrs.get("format_version"), "sha256": ds.sha256 or ""})
    return rows


def _split_table(rows: list[dict], directory):
    from rich.table import Table

    table = Table(title=f"DeepNets-1M splits in {directory}")
    for col in ("split", "archs", "params median (M)", "params min-max (M)", "nodes mean (max)",
                "generator", "format", "sha256"):
        table.add_column(col)
    for r in rows:
        if not r["present"]:
            table.add_row(r["split"], "missing", "", "", "", "", "", "run `deepnets-bench build`")
            continue
        table.add_row(r["split"], f"{r['archs']:,}", f"{r['params_median_m']:.2f}",
                      f"{r['params_min_m']:.2f}-{r['params_max_m']:.1f}",
                      f"{r['nodes_mean']:.0f} ({r['nodes_max']})", str(r["generator_version"]),
                      str(r["format_version"]), r["sha256"][:16])
    return table


@click.command("info")
@click.option("--split", "splits", multiple=True, type=click.Choice(ALL_SPLITS),
              help="Only these splits (repeatable; default: every split in the cache).")
@click.option("--release", default=None, help="A named release, e.g. ppuda (default: the built splits).")
@_root
@json_option
def info_cmd(splits, release, root, as_json):
    """Table of the splits (and episode suites) in the cache: counts, parameters, nodes,
    versions, sha256.

    Also lists the cached image datasets (classes, sizes, content hashes)."""
    directory = release_dir(root, release)
    rows = split_rows(root, release, splits)
    others = not splits and not release  # episode suites and images live beside the splits
    suites = []
    if others:
        from deepnetsbench.episodes.suite import episodes_dir

        suites = sorted(episodes_dir(root).glob("*.h5"))
    if as_json:
        import json

        from deepnetsbench.data.commands import image_rows
        from deepnetsbench.episodes.info import suite_summary

        data = {"kind": INFO_KIND, "version": INFO_VERSION, "directory": str(directory),
                "release": release, "splits": rows,
                "episode_suites": [suite_summary(p) for p in suites] if others else None,
                "datasets": image_rows(root) if others else None}
        click.echo(json.dumps(data, indent=2, sort_keys=True))
        return
    from rich.console import Console

    console = Console()
    console.print(_split_table(rows, directory))
    if not rows and not splits:
        click.echo("no splits yet: run `deepnets-bench download` or `deepnets-bench build`")
    if others:
        from deepnetsbench.data.commands import image_table
        from deepnetsbench.episodes.info import describe_suite

        for path in suites:
            console.print(describe_suite(path))
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
    click.echo(f"wrote {out / 'deepnets1m_predefined.h5'} (the official PREDEFINED pair, "
               "built from code)")
    click.echo(f"checks: {out / 'ppuda_report.json'}")


COMMANDS = [build_cmd, info_cmd, convert_ppuda_cmd]
