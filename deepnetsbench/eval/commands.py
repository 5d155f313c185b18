"""``deepnets-bench eval`` and ``deepnets-bench new-method``."""

from __future__ import annotations

import click

from deepnetsbench.errors import BenchError
from deepnetsbench.options import root_option

__all__ = ["COMMANDS", "eval_cmd", "merge_cmd", "new_method_cmd"]

SPLITS = ("train", "val", "test", "wide", "deep", "dense", "bnfree", "predefined", "all")
SUITES = ("deepnets1m", "deepnets1m-lite", "episodes-intra", "episodes-inter")


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


def default_out(method: str, split: str, dataset: str | None, mock: bool, suite: str = "deepnets1m",
                target: str | None = None, release: str | None = None) -> str:
    """``mine-test-cifar10.json``: one file per method x suite x split x dataset (x target),
    so that re-running a command resumes it and another method never collides with its
    journal."""
    from pathlib import Path

    stem = Path(method).stem if method.endswith(".py") else method
    stem = "".join(c if c.isalnum() or c in "-_." else "_" for c in stem) or "method"
    parts = [stem] + ([suite] if suite != "deepnets1m" else []) + [split]
    if release:
        parts.append(release)
    parts.append("mock" if mock else (dataset or "source"))
    if target:
        parts.append(target)
    return "-".join(parts) + ".json"


def _hooks(suite: str, speedup: str | None, train_budget: str | None, finetune_epochs: float,
           finetune_noise: float, finetune_orth: bool, root: str | None, train_images: int | None):
    """Record hooks for --speedup / --finetune-epochs (docs/speedup.md)."""
    hooks = []
    if speedup:
        budget = train_budget or ("30ep,120s" if suite != "deepnets1m" else "5ep")
        if suite == "deepnets1m":
            from deepnetsbench.paths import data_root
            from deepnetsbench.training.hooks import SpeedupHook, TrainData
            from deepnetsbench.training.trainer import Budget

            hooks.append(SpeedupHook(trainer=speedup, budget=Budget.parse(budget),
                                     cache_root=data_root(root) / "curves",
                                     data=TrainData(limit=train_images)))
        else:
            from deepnetsbench.episodes.evaluate import SupportTrainingSpeedup

            hooks.append(SupportTrainingSpeedup(trainer=speedup, budget=budget))
    if finetune_epochs:
        if suite != "deepnets1m":
            raise BenchError("--finetune-epochs is defined for the deepnets1m suite",
                             "drop it for dataset-episode suites")
        from deepnetsbench.training.hooks import FinetuneHook, TrainData

        hooks.append(FinetuneHook(epochs=finetune_epochs, trainer=speedup or "sgd",
                                  noise=finetune_noise, orthogonal=finetune_orth,
                                  data=TrainData(limit=train_images)))
    return hooks


@click.command("eval")
@click.option("--method", "method", required=True,
              help="A method file (mine.py) or a built-in: random, kaiming, orthogonal, mean.")
@click.option("--method-opt", "method_opts", multiple=True, metavar="KEY=VALUE",
              help="Option passed to the method's constructor (repeatable).")
@click.option("--suite", default="deepnets1m", show_default=True, type=click.Choice(SUITES),
              help="Architecture suite (deepnets1m-lite: a fixed subset of each split on "
                   "1,000 test images, for CPUs), or a dataset-episode suite (fixed target "
                   "network). --split all runs every evaluation split, one file each.")
@click.option("--split", default="test", show_default=True, type=click.Choice(SPLITS),
              help="Split to evaluate (episode suites: test or val).")
@click.option("--release", default=None,
              help="A named split release, e.g. ppuda (the official files converted with "
                   "`deepnets-bench convert-ppuda`); default: the built/downloaded splits.")
@click.option("--dataset", default=None,
              help="Image dataset (default cifar10; for episode suites: the test dataset, "
                   "default the suite's own).")
@click.option("--target", default=None,
              help="Episode suites: target network (convnet4, resnet18; default the suite's first).")
@click.option("--suite-file", default=None, type=click.Path(dir_okay=False),
              help="Episode suites: the suite file (default the one in the cache).")
@click.option("--speedup", type=click.Choice(["sgd", "gc"]), default=None,
              help="Also measure the speedup over this reference trainer (docs/speedup.md).")
@click.option("--train-budget", default=None, metavar="EPOCHS|SECONDS",
              help="Reference training budget, e.g. 5ep, 300s or 5ep,300s (default 5ep; "
                   "episodes 30ep,120s).")
@click.option("--finetune-epochs", type=float, default=0.0,
              help="Also fine-tune k epochs from the prediction and from random init.")
@click.option("--finetune-noise", type=float, default=0.0,
              help="Post-processing before fine-tuning: noise with this beta (e.g. 3e-5).")
@click.option("--finetune-orth", is_flag=True,
              help="Post-processing before fine-tuning: orthogonal re-init of wide layers.")
@click.option("--train-images", type=int, default=None,
              help="Reference/fine-tune training on the first N training images (default all).")
@click.option("--device", default="cpu", show_default=True, help="cpu, cuda or cuda:<i>.")
@click.option("--limit", type=int, default=None, help="Evaluate only the first N architectures.")
@click.option("--arch", "arch", multiple=True, metavar="I[,J...]",
              help="Evaluate these architecture indices (repeatable or comma list).")
@click.option("--seed", type=int, default=0, show_default=True,
              help="Run seed; architecture i gets its own seed from it (task.seed).")
@click.option("--out", default=None,
              help="Results JSON (default <method>-<split>-<dataset>.json, or "
                   "<method>-<split>-mock.json with --mock). A journal OUT.journal beside it "
                   "makes the run resumable: re-run the same command to continue.")
@root_option
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
@click.option("--shard", default=None, metavar="K/N",
              help="Evaluate shard K of N (a fixed MACs-balanced partition; default --out "
                   "gets -shardKofN); join the shards with deepnets-bench merge.")
@click.option("--distributed", is_flag=True,
              help="One shard per torchrun rank, each on its own device; rank 0 merges into "
                   "--out (implied under torchrun with more than one process).")
@click.option("--in-process", "in_process", is_flag=True,
              help="Debugging: run predict() inside the evaluator instead of its isolated "
                   "worker (full tracebacks, debuggers); the results cannot be submitted.")
@click.option("--verify", is_flag=True,
              help="Hash the split file even when it is large (the TRAIN split); smaller "
                   "files are always hashed.")
def eval_cmd(method: str, method_opts: tuple[str, ...], suite: str, split: str,
             release: str | None, dataset: str | None, target: str | None, suite_file: str | None,
             speedup: str | None, train_budget: str | None, finetune_epochs: float,
             finetune_noise: float, finetune_orth: bool, train_images: int | None,
             device: str, limit: int | None, arch: tuple[str, ...], seed: int, out: str | None,
             root: str | None, batch_size: int, time_limit: float, eval_images: int | None,
             no_flops: bool, mock: bool, restart: bool, quiet: bool, shard: str | None = None,
             distributed: bool = False, in_process: bool = False, verify: bool = False) -> None:
    """Evaluate a parameter-prediction method on a DeepNets-1M split or an episode suite."""
    from deepnetsbench.eval.methods import parse_method_options
    from deepnetsbench.eval.runner import EvalConfig, evaluate

    if time_limit < 0:
        raise BenchError(f"--time-limit must be >= 0, got {time_limit}", "pass 0 for no limit")
    options = parse_method_options(method_opts)
    episodes = suite.startswith("episodes")
    if episodes and split not in ("test", "val"):
        raise BenchError(f"episode suites have val and test episodes, not {split!r}",
                         "pass --split test or --split val")
    if episodes and mock:
        raise BenchError("--mock runs on the deepnets1m suite", "drop --suite for the smoke test")
    if release and (episodes or mock):
        raise BenchError("--release names a DeepNets-1M split release",
                         "drop --release for episode suites and --mock")
    if not episodes and (target or suite_file):
        raise BenchError("--target/--suite-file belong to episode suites",
                         "pass --suite episodes-intra or episodes-inter")
    if split == "all" and (mock or shard or distributed or arch):
        raise BenchError("--split all runs every evaluation split, one after the other",
                         "drop --mock/--shard/--distributed/--arch, or name one --split")
    hooks = _hooks(suite if episodes else "deepnets1m", speedup, train_budget, finetune_epochs,
                   finetune_noise, finetune_orth, root, train_images)
    cfg = EvalConfig(
        suite=suite, split=split, release=release,
        dataset=dataset or ("cifar10" if not episodes else None),
        device=device, limit=limit, archs=_parse_archs(arch), seed=seed,
        out=out or default_out(method, split, dataset or ("cifar10" if not episodes else None),
                               mock, suite, target, release), root=root,
        batch_size=batch_size, time_limit=time_limit or None, eval_images=eval_images,
        mock=mock, restart=restart, flops=not no_flops, progress=not quiet,
        isolation="in-process" if in_process else "process", verify=verify)
    if split == "all":
        _eval_all(method, cfg, options, hooks, out)
        return
    from deepnetsbench.eval.distributed import evaluate_split, wants_distributed

    if shard or wants_distributed(distributed):
        results = evaluate_split(method, cfg, options, hooks, shard, distributed, out is None)
        if results is None:
            return  # a torchrun rank other than 0: rank 0 reports the merged run
    elif episodes:
        from deepnetsbench.episodes.evaluate import evaluate_from_config

        results = evaluate_from_config(method, cfg, options, hooks, suite_file=suite_file,
                                       target=target)
    else:
        results = evaluate(method, cfg, options, hooks=hooks)
    _report(results, cfg.out)
    _fail_if_nothing_succeeded(results)


def _report(results, out) -> None:
    from rich.console import Console

    from deepnetsbench.eval.runner import journal_path, summary_table

    console = Console()
    console.print(summary_table(results))
    journal = journal_path(out)  # a merged file (torchrun) has none
    console.print(f"results: {out}" + (f"  (journal: {journal})" if journal.exists() else ""))
    if results.notes:
        console.print(f"[yellow]{results.notes}[/]")


def _eval_all(method: str, cfg, options, hooks, out: str | None) -> None:
    """``--split all``: every evaluation split in turn, each into its own results file (the
    leaderboard takes one split per file); a re-run resumes each split."""
    from dataclasses import replace

    from deepnetsbench.eval.lite import split_outs
    from deepnetsbench.eval.runner import evaluate

    done = []
    for split, path in split_outs(method, cfg, out, default_out).items():
        results = evaluate(method, replace(cfg, split=split, out=path), options, hooks=hooks)
        _report(results, path)
        done.append(results)
    for results in done:
        _fail_if_nothing_succeeded(results)


def _fail_if_nothing_succeeded(results) -> None:
    """A run in which no architecture succeeded is an error (exit status 2), not a result."""
    agg = results.aggregates
    if agg.n and not agg.n_ok:
        first = next((r.error for r in results.records if r.error), "")
        raise BenchError(f"no architecture succeeded ({agg.n_failed} of {agg.n} failed; the "
                         f"first: {first[:300]})",
                         "fix the method (every error is in the results file), or debug it "
                         "with --in-process on one architecture (--arch 0)")


@click.command("new-method")
@click.argument("path", type=click.Path(dir_okay=False))
@click.option("--force", is_flag=True, help="Overwrite an existing file.")
def new_method_cmd(path: str, force: bool) -> None:
    """Write a commented method template to PATH (it runs as is)."""
    from deepnetsbench.eval.template import write_template

    written = write_template(path, force)
    click.echo(f"wrote {written}; try it: deepnets-bench eval --mock --method {written}")


@click.command("merge")
@click.argument("shards", nargs=-1, required=True, type=click.Path(dir_okay=False))
@click.option("--out", default=None, type=click.Path(dir_okay=False),
              help="Merged results JSON (default: the shard name without -shardKofN).")
def merge_cmd(shards: tuple[str, ...], out: str | None) -> None:
    """Merge the shard results of one run into one results file.

    Checks that the shards are one run (same method and options, split and dataset
    release, protocol, software) and cover every selected architecture exactly once."""
    from deepnetsbench.eval.shards import merge_files

    merged, path = merge_files(list(shards), out)
    agg = merged.aggregates
    top1 = f"{agg.top1.mean:.2f}" if agg.top1.mean is not None else "-"
    click.echo(f"merged {len(shards)} shards: {agg.n} architectures ({agg.n_ok} ok, "
               f"{agg.n_failed} failed), top-1 {top1} % -> {path}")


COMMANDS = [eval_cmd, new_method_cmd, merge_cmd]
