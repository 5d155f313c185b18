"""``deepnets-bench eval`` and ``deepnets-bench new-method``."""

from __future__ import annotations

import click

from deepnetsbench.errors import BenchError

__all__ = ["COMMANDS", "eval_cmd", "new_method_cmd"]

SPLITS = ("train", "val", "test", "wide", "deep", "dense", "bnfree", "predefined")


def _parse_archs(values: tuple[str, ...]) -> list[int] | None:
    archs: list[int] = []
    for value in values:
        for part in value.split(","):
            part = part.strip()
            if not part:
                continue
            try:
                archs.append(int(part))
            except ValueError:
                raise BenchError(f"--arch {part!r} is not an integer index",
                                 "pass indices like --arch 3 --arch 5 or --arch 3,5") from None
    return archs or None


def default_out(method: str, split: str, dataset: str, mock: bool) -> str:
    """``mine-test-cifar10.json``: one file per method x split x dataset, so that re-running
    a command resumes it and another method never collides with its journal."""
    from pathlib import Path

    stem = Path(method).stem if method.endswith(".py") else method
    stem = "".join(c if c.isalnum() or c in "-_." else "_" for c in stem) or "method"
    return f"{stem}-{split}-{'mock' if mock else dataset}.json"


@click.command("eval")
@click.option("--method", "method", required=True,
              help="A method file (mine.py) or a built-in: random, kaiming, orthogonal, mean.")
@click.option("--method-opt", "method_opts", multiple=True, metavar="KEY=VALUE",
              help="Option passed to the method's constructor (repeatable).")
@click.option("--suite", default="deepnets1m", show_default=True, type=click.Choice(["deepnets1m"]))
@click.option("--split", default="test", show_default=True, type=click.Choice(SPLITS))
@click.option("--dataset", default="cifar10", show_default=True, help="Image dataset name.")
@click.option("--device", default="cpu", show_default=True, help="cpu, cuda or cuda:<i>.")
@click.option("--limit", type=int, default=None, help="Evaluate only the first N architectures.")
@click.option("--arch", "arch", multiple=True, metavar="I[,J...]",
              help="Evaluate these architecture indices (repeatable or comma list).")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--out", default=None,
              help="Results JSON (default <method>-<split>-<dataset>.json, or "
                   "<method>-<split>-mock.json with --mock). A journal OUT.journal beside it "
                   "makes the run resumable: re-run the same command to continue.")
@click.option("--root", default=None, help="Data root (default $DEEPNETS_BENCH_ROOT or cache).")
@click.option("--batch-size", type=int, default=64, show_default=True,
              help="Evaluation batch size (the protocol's 64; recorded).")
@click.option("--time-limit", type=float, default=300.0, show_default=True,
              help="Seconds per architecture for the prediction (0: no limit).")
@click.option("--eval-images", type=int, default=None,
              help="Score only the first N test images (quick checks; leaderboard runs use all).")
@click.option("--no-flops", is_flag=True, help="Do not count conv/linear MACs per network.")
@click.option("--mock", is_flag=True,
              help="Smoke test: 4 tiny generated networks and 128 synthetic images, on CPU in "
                   "seconds.")
@click.option("--restart", is_flag=True, help="Discard an existing journal at --out and start over.")
@click.option("--quiet", is_flag=True, help="No progress bar.")
def eval_cmd(method: str, method_opts: tuple[str, ...], suite: str, split: str, dataset: str,
             device: str, limit: int | None, arch: tuple[str, ...], seed: int, out: str | None,
             root: str | None, batch_size: int, time_limit: float, eval_images: int | None,
             no_flops: bool, mock: bool, restart: bool, quiet: bool) -> None:
    """Evaluate a parameter-prediction method on a DeepNets-1M split."""
    from rich.console import Console

    from deepnetsbench.eval.methods import parse_method_options
    from deepnetsbench.eval.runner import EvalConfig, evaluate, journal_path, summary_table

    if time_limit < 0:
        raise BenchError(f"--time-limit must be >= 0, got {time_limit}", "pass 0 for no limit")
    options = parse_method_options(method_opts)
    cfg = EvalConfig(
        suite=suite, split=split, dataset=dataset, device=device, limit=limit,
        archs=_parse_archs(arch), seed=seed,
        out=out or default_out(method, split, dataset, mock), root=root,
        batch_size=batch_size, time_limit=time_limit or None, eval_images=eval_images,
        mock=mock, restart=restart, flops=not no_flops, progress=not quiet)
    results = evaluate(method, cfg, options)
    console = Console()
    console.print(summary_table(results))
    console.print(f"results: {cfg.out}  (journal: {journal_path(cfg.out)})")
    if results.notes:
        console.print(f"[yellow]{results.notes}[/]")


@click.command("new-method")
@click.argument("path", type=click.Path(dir_okay=False))
@click.option("--force", is_flag=True, help="Overwrite an existing file.")
def new_method_cmd(path: str, force: bool) -> None:
    """Write a commented method template to PATH (it runs as is)."""
    from deepnetsbench.eval.template import write_template

    written = write_template(path, force)
    click.echo(f"wrote {written}; try it: deepnets-bench eval --mock --method {written}")


COMMANDS = [eval_cmd, new_method_cmd]
