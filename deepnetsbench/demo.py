"""``deepnets-bench demo``: the whole pipeline end to end in a couple of minutes on a CPU.

Builds the TEST split (if missing), gets CIFAR-10 (the cache, a local archive, or the
``../shared/data`` archive beside a checkout; synthetic images as the last resort), evaluates a
method on a few architectures with a subset of the test images, and shows the results table
and the DataFrame view. Everything is kept in the cache, so a second run is instant.
"""

from __future__ import annotations

from pathlib import Path

import click

from deepnetsbench.options import root_option

SHARED_CIFAR = Path(__file__).resolve().parents[2] / "shared" / "data" / "cifar10.tar.gz"


@click.command("demo")
@root_option
@click.option("--method", default="kaiming", show_default=True, help="Built-in name or a method file.")
@click.option("--archs", type=int, default=3, show_default=True, help="TEST architectures to evaluate.")
@click.option("--eval-images", type=int, default=500, show_default=True,
              help="Test images per architecture (the leaderboard protocol uses all 10,000).")
@click.option("--archive", type=click.Path(exists=True, dir_okay=False), default=None,
              help="A local CIFAR-10 archive (train/<class>/*, test/<class>/*).")
@click.option("--device", default="cpu", show_default=True, help="cpu, cuda or cuda:<i>.")
def demo(root, method, archs, eval_images, archive, device):
    """Run the pipeline end to end: split -> images -> eval -> results."""
    from rich.console import Console

    from deepnetsbench.data import load_archive, synthetic_dataset
    from deepnetsbench.errors import BenchError
    from deepnetsbench.eval.methods import load_method
    from deepnetsbench.eval.runner import (
        EvalConfig,
        open_images,
        open_split,
        run_evaluation,
        summary_table,
    )
    from deepnetsbench.paths import data_root
    from deepnetsbench.results import results_to_dataframe
    from deepnetsbench.splits.build import build_split

    console = Console()
    root = data_root(root)
    console.rule("1. DeepNets-1M TEST split")
    try:
        suite = open_split("test", root)
    except BenchError:
        build_split("test", root=root)
        suite = open_split("test", root)
    console.print(f"{len(suite)} architectures, sha256 {suite.info.sha256[:16]}")

    console.rule("2. CIFAR-10 test images")
    try:
        dataset, size = open_images("cifar10", root)
    except BenchError:
        source = archive or (SHARED_CIFAR if SHARED_CIFAR.exists() else None)
        if source is not None:
            load_archive(source, name="cifar10", root=root)
            dataset, size = open_images("cifar10", root)
        else:
            console.print("[yellow]no CIFAR-10 here (pass --archive, or run `deepnets-bench "
                          "download`): using synthetic images[/]")
            dataset, size = synthetic_dataset(10, 32, n_train=0, n_test=eval_images), 32
    eval_images = min(eval_images, len(dataset.test_y))
    console.print(f"{dataset.name}: {len(dataset.test_y)} test images, scoring the first {eval_images}")

    console.rule(f"3. Evaluate `{method}` on {archs} architectures")
    out = root / "demo" / f"results_{Path(method).stem}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    cfg = EvalConfig(split="test", dataset="cifar10", device=device, limit=archs, out=out,
                     root=root, eval_images=eval_images)
    results = run_evaluation(load_method(method), suite, dataset, cfg, size)
    console.print(summary_table(results))
    console.print(f"results: {out}")

    console.rule("4. Results as a DataFrame")
    frame = results_to_dataframe([results])
    cols = [c for c in ("name", "status", "top1", "top5", "predict_time_s", "num_params") if c in frame]
    console.print(frame[cols].to_string(index=False))
    console.print("\nNext: `deepnets-bench new-method mine.py`, then "
                  "`deepnets-bench eval --method mine.py --mock`.")


COMMANDS = [demo]
