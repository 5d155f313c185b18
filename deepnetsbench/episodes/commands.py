"""``deepnets-bench build-episodes`` and ``deepnets-bench episodes-info``."""

from __future__ import annotations

import click

from deepnetsbench.errors import BenchError
from deepnetsbench.options import root_option

__all__ = ["COMMANDS", "build_episodes_cmd", "episodes_info_cmd"]

KINDS = ("episodes-intra", "episodes-inter")
INTER_DEFAULT = ("cifar10", "mnist", "fashion-mnist")
INTER_OPTIONAL = ("cifar100", "svhn")  # used by default when they are in the cache


def _parse_pools(text: str | None) -> tuple[int, int, int] | None:
    if not text:
        return None
    try:
        parts = tuple(int(p) for p in text.split(","))
    except ValueError:
        parts = ()
    if len(parts) != 3:
        raise BenchError(f"--pools {text!r} is not three integers",
                         "pass train,val,test class counts, e.g. --pools 140,20,40")
    return parts  # type: ignore[return-value]


def _load(name: str, archive: str | None, root: str | None):
    from deepnetsbench.data import load_archive, load_dataset

    if archive:
        return load_archive(archive, name=name, root=root)
    return load_dataset(name, root=root)


def _inter_datasets(specs: tuple[str, ...], root: str | None) -> list:
    from deepnetsbench.data.cache import cache_attrs, cache_path
    from deepnetsbench.data.registry import canonical_name

    if specs:
        pairs = [(s.split("=", 1) + [None])[:2] for s in specs]
    else:
        pairs = [[n, None] for n in INTER_DEFAULT] + [
            [n, None] for n in INTER_OPTIONAL if cache_attrs(cache_path(n, root)) is not None]
    return [_load(canonical_name(n), a, root) for n, a in pairs]


@click.command("build-episodes")
@click.option("--suite", "kind", type=click.Choice(KINDS), required=True,
              help="Intra-dataset (disjoint classes of one source) or inter-dataset (source "
                   "episodes for training, whole other datasets for testing).")
@click.option("--source", default="tinyimagenet", show_default=True,
              help="Source dataset of the training (and intra test) episodes.")
@click.option("--from", "source_archive", default=None, metavar="ARCHIVE",
              help="Archive of the source (train/<class>/*, test/<class>/*); default: the cache.")
@click.option("--dataset", "datasets", multiple=True, metavar="NAME[=ARCHIVE]",
              help="Inter suites: a test dataset, from the cache or an archive (repeatable; "
                   "default cifar10, mnist, fashion-mnist, plus cifar100/svhn when cached).")
@click.option("--ways", type=int, default=10, show_default=True, help="Classes per episode.")
@click.option("--shots", type=int, default=50, show_default=True,
              help="Support images per class.")
@click.option("--queries", type=int, default=50, show_default=True,
              help="Query images per class of training episodes.")
@click.option("--test-queries", type=int, default=None,
              help="Query images per class of intra val/test episodes (default: all).")
@click.option("--train-episodes", type=int, default=1000, show_default=True,
              help="Training episodes (for training a predictor).")
@click.option("--val-episodes", type=int, default=20, show_default=True,
              help="Validation episodes (model selection).")
@click.option("--test-episodes", type=int, default=100, show_default=True,
              help="Intra test episodes.")
@click.option("--episodes-per-dataset", type=int, default=5, show_default=True,
              help="Inter: test episodes (support samples) per test dataset.")
@click.option("--pools", default=None, metavar="TRAIN,VAL,TEST",
              help="Class pool sizes (default 70/10/20%% intra, 90/10/0%% inter).")
@click.option("--image-size", type=int, default=32, show_default=True,
              help="Side length every image of the suite is resized to.")
@click.option("--seed", type=int, default=0, show_default=True,
              help="Sampling seed (the same seed and data give the same suite file).")
@click.option("--targets", default="convnet4,resnet18", show_default=True,
              help="Target architectures the suite declares (comma list).")
@click.option("--out", default=None, help="Suite file (default <root>/episodes/<suite>.h5).")
@root_option
def build_episodes_cmd(kind: str, source: str, source_archive: str | None,
                       datasets: tuple[str, ...], ways: int, shots: int, queries: int,
                       test_queries: int | None, train_episodes: int, val_episodes: int,
                       test_episodes: int, episodes_per_dataset: int, pools: str | None,
                       image_size: int, seed: int, targets: str, out: str | None,
                       root: str | None) -> None:
    """Sample a dataset-episode suite and pack it (indices only) into one HDF5 file."""
    from rich.console import Console

    from deepnetsbench.data.registry import canonical_name
    from deepnetsbench.episodes.build import EpisodeConfig, build_suite
    from deepnetsbench.episodes.info import describe_suite

    cfg = EpisodeConfig(
        kind=kind, ways=ways, shots=shots, queries=queries, test_queries=test_queries,
        train_episodes=train_episodes, val_episodes=val_episodes, test_episodes=test_episodes,
        inter_episodes=episodes_per_dataset, pools=_parse_pools(pools), image_size=image_size,
        seed=seed, targets=tuple(t.strip() for t in targets.split(",") if t.strip()))
    cfg.validate()  # fail before any slow loading
    if kind == "episodes-intra" and datasets:
        raise BenchError("--dataset is for inter-dataset suites",
                         "drop it, or use --suite episodes-inter")
    src = _load(canonical_name(source), source_archive, root)
    tests = _inter_datasets(datasets, root) if kind == "episodes-inter" else []
    path = build_suite(cfg, src, tests, out=out, root=root)
    Console().print(describe_suite(path))


@click.command("episodes-info")
@click.argument("path", required=False)
@click.option("--suite", "kind", type=click.Choice(KINDS), default=None,
              help="Describe the default file of this suite instead of PATH.")
@root_option
def episodes_info_cmd(path: str | None, kind: str | None, root: str | None) -> None:
    """Describe an episode suite (verified against its manifest)."""
    from rich.console import Console

    from deepnetsbench.episodes.info import describe_suite
    from deepnetsbench.episodes.suite import default_suite_path

    if path is None and kind is None:
        raise BenchError("no suite given", "pass a suite file or --suite episodes-intra")
    Console().print(describe_suite(path or default_suite_path(kind, root)))


COMMANDS = [build_episodes_cmd, episodes_info_cmd]
