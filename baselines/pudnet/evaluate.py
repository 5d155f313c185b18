"""Score PudNet and the floors on an episode suite; one results JSON per method x dataset.

    python -m baselines.pudnet.evaluate --suite-file runs/root/episodes/episodes_intra.h5 \\
        --ckpt runs/pudnet/convnet4-intra.pt --out-dir runs/pudnet/results --speedup 5

Runs :func:`deepnetsbench.episodes.evaluate_episodes` (the evaluator's journal: re-running
resumes) for PudNet (``baselines/pudnet/method.py``) and the built-in floors (``kaiming``
by default), on every test dataset of the split, and prints one summary table with the
chance level. ``--speedup K`` adds, for PudNet's first K episodes, the time SGD with
gradient centralization needs on the episode's support set to reach PudNet's accuracy.
"""

from __future__ import annotations

import sys
from pathlib import Path

import click
import torch

from deepnetsbench.errors import BenchError

METHOD_FILE = str(Path(__file__).with_name("method.py"))


@click.command()
@click.option("--suite-file", required=True)
@click.option("--ckpt", default=None, help="PudNet checkpoint (omit to score only the floors).")
@click.option("--split", default="test", show_default=True)
@click.option("--dataset", "datasets", multiple=True, help="Test dataset(s) (default: all).")
@click.option("--target", default=None, help="Target network (default: the checkpoint's).")
@click.option("--floors", default="kaiming", show_default=True,
              help="Built-in methods to score too (comma list; '' for none).")
@click.option("--device", default="cpu", show_default=True)
@click.option("--root", default=None)
@click.option("--limit", type=int, default=None, help="First N episodes per dataset.")
@click.option("--eval-images", type=int, default=None, help="First N query images per episode.")
@click.option("--speedup", type=int, default=0, show_default=True,
              help="Measure the GC-training speed-up on PudNet's first K episodes.")
@click.option("--speedup-budget", default="40ep,120s", show_default=True)
@click.option("--out-dir", default="runs/pudnet/results", show_default=True)
@click.option("--threads", type=int, default=None)
def main(suite_file: str, ckpt: str | None, split: str, datasets: tuple[str, ...],
         target: str | None, floors: str, device: str, root: str | None, limit: int | None,
         eval_images: int | None, speedup: int, speedup_budget: str, out_dir: str,
         threads: int | None) -> None:
    """Evaluate PudNet and floors on the episodes of a suite."""
    from rich.console import Console
    from rich.table import Table

    from deepnetsbench.episodes import EpisodeSuite, SupportTrainingSpeedup, evaluate_episodes

    if threads:
        torch.set_num_threads(threads)
    console = Console(width=max(Console().width, 110))
    try:
        suite = EpisodeSuite(suite_file, root=root)
        if ckpt and target is None:
            from baselines.pudnet.train import load_checkpoint

            target = load_checkpoint(ckpt)[0].config.target
        target = target or suite.targets[0]
        runs: list[tuple[str, str, dict, list]] = []
        if ckpt:
            hooks = [SupportTrainingSpeedup("gc", speedup_budget, episodes=speedup)] \
                if speedup else []
            runs.append(("pudnet", METHOD_FILE, {"ckpt": ckpt}, hooks))
        runs += [(f, f, {}, []) for f in floors.split(",") if f.strip()]
        names = list(datasets) or suite.test_datasets(split)
        table = Table(title=f"{suite.kind} {split} ({target}, {device})")
        for col in ("method", "dataset", "episodes", "top-1 %", "chance %", "predict s",
                    "speed-up vs GC"):
            table.add_column(col, justify="left" if col in ("method", "dataset") else "right")
        for label, spec, options, hooks in runs:
            for name in names:
                out = Path(out_dir) / f"{label}-{suite.kind}-{split}-{name}-{target}.json"
                res = evaluate_episodes(spec, suite, split=split, dataset=name, target=target,
                                        device=device, out=out, root=root, limit=limit,
                                        eval_images=eval_images, options=options, hooks=hooks)
                a = res.aggregates
                sp = "-" if a.speedup_gmean is None else (
                    f"{'>=' if a.speedup_gmean_lower_bound else ''}{a.speedup_gmean:.3g}x "
                    f"(n={sum(r.speedup is not None for r in res.records)})")
                table.add_row(label, name, str(a.n), f"{a.top1.mean:.2f} ± {a.top1.se or 0:.2f}",
                              f"{100 / res.protocol.num_classes:.1f}",
                              f"{a.predict_time_s.mean:.4f}", sp)
                console.print(f"wrote {out}")
        console.print(table)
    except BenchError as err:
        click.secho(f"error: {err.one_line()}", fg="red", err=True)
        sys.exit(2)


if __name__ == "__main__":
    main()
