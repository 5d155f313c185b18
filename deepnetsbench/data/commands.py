"""``deepnets-bench download``: image datasets and DeepNets-1M splits into the cache."""

from __future__ import annotations

import importlib
from pathlib import Path

import click
from rich.console import Console
from rich.table import Table

from deepnetsbench.errors import BenchError
from deepnetsbench.options import root_option
from deepnetsbench.paths import data_root, images_dir, splits_dir


@click.command("download")
@root_option
@click.option("--dataset", "datasets", multiple=True,
              help="Image dataset to fetch (repeatable; default: cifar10).")
@click.option("--from", "archives", multiple=True, type=click.Path(exists=True),
              help="Local archive (.tar.gz/.tgz/.tar/.zip) or folder with train/ and test/ "
                   "class folders; repeatable, paired with --dataset in order.")
@click.option("--image-size", type=int, default=None,
              help="Resize every image of an archive to this size (default: native; ImageNet 224).")
@click.option("--splits/--no-splits", default=True, show_default=True,
              help="Also fetch the DeepNets-1M architecture splits.")
@click.option("--build", is_flag=True, help="Build the splits locally instead of downloading them.")
@click.option("--offline", is_flag=True, help="Never use the network; only local files.")
@click.option("--base-url", default=None, help="Base URL of the split files (overrides the default and $DEEPNETS_BENCH_URL_*).")
@click.option("--train/--no-train", default=False, show_default=True,
              help="Also fetch (10.3 GB official) or build the TRAIN split.")
@click.option("--train-num", type=int, default=None,
              help="With --build: number of TRAIN architectures (default 1,000,000).")
@click.option("--workers", type=int, default=2, show_default=True, help="Build processes.")
@click.option("--allow-mismatch", is_flag=True,
              help="Convert the official files even if parameter counts differ from the "
                   "published ones (the ppuda release is then marked unverified).")
@click.option("--yes", "-y", is_flag=True, help="Assume yes (implied when stdin is not a terminal).")
def download(
    root: str | None,
    datasets: tuple[str, ...],
    archives: tuple[str, ...],
    image_size: int | None,
    splits: bool,
    build: bool,
    offline: bool,
    base_url: str | None,
    train: bool,
    train_num: int | None,
    workers: int,
    allow_mismatch: bool,
    yes: bool,
) -> None:
    """Fetch image datasets and the architecture splits into the cache, then list the cache."""
    from deepnetsbench.data.archive import archive_stem, import_archive
    from deepnetsbench.data.cache import cache_attrs
    from deepnetsbench.data.fetch import load_dataset

    # Never interactive: nothing here asks a question, so --yes (or a non-tty stdin) changes
    # nothing today; it is accepted so that scripts can pass it unconditionally.
    del yes
    root_path = data_root(root)
    console = Console(stderr=True)
    if archives:
        if datasets and len(datasets) != len(archives):
            raise BenchError(
                f"{len(datasets)} --dataset for {len(archives)} --from",
                "give one --dataset per --from (in the same order), or none to use the archive names",
            )
        names = datasets or tuple(archive_stem(a) for a in archives)
        for name, archive in zip(names, archives):
            # streamed into the cache; the dataset is not read back into memory here
            attrs = cache_attrs(import_archive(archive, name=name, root=root_path,
                                               image_size=image_size)) or {}
            h, w, c = attrs.get("shape", (0, 0, 0))
            console.print(f"[green]ok[/] {attrs.get('name', name)}: {attrs.get('n_train')} train / "
                          f"{attrs.get('n_test')} test images, {h}x{w}x{c}, from {archive}")
    else:
        for name in datasets or ("cifar10",):
            ds = load_dataset(name, root=root_path, download=not offline)
            console.print(f"[green]ok[/] {ds.name}: {len(ds.train_x)} train / {len(ds.test_x)} test images")
    try:
        if splits:
            _fetch_splits(console, root_path, build, offline, base_url,
                          train=train, train_num=train_num, workers=workers,
                          allow_mismatch=allow_mismatch)
    finally:  # show what is there even when the splits failed
        Console().print(cache_table(root_path))


def _fetch_splits(console: Console, root: Path, build: bool, offline: bool, base_url: str | None,
                  **options) -> None:
    try:
        module = importlib.import_module("deepnetsbench.splits.fetch")
        fetch_splits = module.fetch_splits
    except ModuleNotFoundError as err:
        if err.name not in ("deepnetsbench.splits.fetch", "deepnetsbench.splits"):
            raise
        console.print("[yellow]the split fetcher (deepnetsbench.splits.fetch) is not available in "
                      "this install; splits skipped[/]")
        return
    except AttributeError:
        console.print("[yellow]deepnetsbench.splits.fetch has no fetch_splits(); splits skipped[/]")
        return
    fetch_splits(root=root, build=build, offline=offline, base_url=base_url, progress=True,
                 **options)


def _size(n: int) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1024 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n} B"


def image_rows(root: str | Path | None = None) -> list[dict]:
    """The cached image datasets as dicts (``info --json``): name, classes and their
    names, split sizes, image shape, file size, content hash; ``readable: False`` for a
    file whose attributes cannot be read."""
    from deepnetsbench.data.cache import json_list, list_cache

    rows = []
    for path, attrs in list_cache(root):
        row = {"path": str(path), "size_bytes": path.stat().st_size, "readable": attrs is not None}
        if attrs is not None:
            classes = json_list(attrs.get("classes"))
            row.update(name=str(attrs["name"]), classes=classes,
                       class_names=json_list(attrs.get("class_names"), classes),
                       n_train=int(attrs["n_train"]), n_test=int(attrs["n_test"]),
                       image=[int(v) for v in attrs["shape"]],
                       content_sha256=str(attrs.get("content_sha256", "")))
        else:
            row["name"] = path.stem
        rows.append(row)
    return rows


def _image_rows(table: Table, root: str | Path | None) -> None:
    from rich.markup import escape

    from deepnetsbench.data.cache import json_list, list_cache

    for path, attrs in list_cache(root):
        if attrs is None:
            table.add_row("images", escape(path.stem), "", "", "",
                          "[red]unreadable: re-run download[/]", _size(path.stat().st_size), "")
            continue
        h, w, c = attrs["shape"]
        classes = json_list(attrs.get("classes"))
        names = json_list(attrs.get("class_names"), classes)
        shown = ", ".join(names[:3]) + (", ..." if len(names) > 3 else "")
        table.add_row(
            "images", escape(str(attrs["name"])), f"{len(classes)} ({escape(shown)})",
            str(attrs["n_train"]), str(attrs["n_test"]), f"{h}x{w}x{c}",
            _size(path.stat().st_size), str(attrs.get("content_sha256", ""))[:12])


def _table(title: str) -> Table:
    table = Table(title=title)
    for col in ("kind", "name", "classes", "train", "test", "image", "size", "sha256"):
        right = col in ("train", "test", "size")
        table.add_column(col, justify="right" if right else "left",
                         overflow="fold", no_wrap=col not in ("name", "classes", "sha256"))
    return table


def image_table(root: str | Path | None = None) -> Table:
    """A rich table of the cached image datasets: classes (and names), split sizes, image
    size, content hash."""
    table = _table(f"image datasets in {images_dir(root)}")
    _image_rows(table, root)
    if not table.rows:
        table.add_row("-", "(none: deepnets-bench download)", "", "", "", "", "", "")
    return table


def cache_table(root: str | Path | None = None) -> Table:
    """A rich table of the image datasets and split files in the cache."""
    table = _table(f"deepnets-bench cache: {data_root(root)}")
    _image_rows(table, root)
    sdir = splits_dir(root)
    for path in sorted(p for p in sdir.rglob("*") if p.is_file() and not p.name.endswith(".part")):
        table.add_row("splits", str(path.relative_to(sdir)), "", "", "", "", _size(path.stat().st_size), "")
    if not table.rows:
        table.add_row("-", f"(empty: {images_dir(root)})", "", "", "", "", "", "")
    return table


COMMANDS = [download]
