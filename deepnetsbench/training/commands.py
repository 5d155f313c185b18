"""``deepnets-bench train-ref``: record a reference training curve (SGD or SGD+GC)."""

from __future__ import annotations

from pathlib import Path

import click

from deepnetsbench.options import root_option

__all__ = ["COMMANDS", "train_ref"]


def _load_tensors(dataset: str, root: str | None, image_size: int | None,
                  train_limit: int | None, test_limit: int | None):
    """(train_x, train_y, test_x, test_y, num_classes, content_sha256) of a named dataset."""
    from deepnetsbench.errors import BenchError

    try:
        from deepnetsbench.data import load_dataset
    except ImportError as err:
        raise BenchError("image data sets are not available in this install",
                         "update deepnets-bench (deepnetsbench.data.load_dataset)") from err
    ds = load_dataset(dataset, root=root)
    train_x, train_y = ds.train_tensors(image_size=image_size, limit=train_limit)
    test_x, test_y = ds.test_tensors(image_size=image_size, limit=test_limit)
    return train_x, train_y, test_x, test_y, ds.num_classes, ds.content_sha256


@click.command("train-ref")
@click.option("--model", "model_name", default="resnet18", show_default=True,
              help="convnet, resnet18 or a torchvision classification model name.")
@click.option("--dataset", default="cifar10", show_default=True, help="Image data set name.")
@root_option
@click.option("--trainer", type=click.Choice(["sgd", "gc"]), default="gc", show_default=True,
              help="Plain SGD or SGD with gradient centralization.")
@click.option("--budget", default="5ep", show_default=True,
              help="Training budget: 5ep, 0.5ep, 300s, 10min or 5ep,300s (first one wins).")
@click.option("--eval-every", type=float, default=1.0, show_default=True,
              help="Evaluate every this many epochs (fractions allowed, e.g. 0.25).")
@click.option("--device", default="cpu", show_default=True, help="cpu, cuda or cuda:<i>.")
@click.option("--batch-size", type=int, default=128, show_default=True,
              help="Training batch size.")
@click.option("--lr", type=float, default=0.1, show_default=True,
              help="Learning rate for batch 128 (scaled linearly with --batch-size).")
@click.option("--epochs-schedule", type=float, default=None,
              help="Cosine schedule length in epochs (default: the budget).")
@click.option("--no-flip", is_flag=True, help="No horizontal flips (e.g. digits).")
@click.option("--image-size", type=int, default=None, help="Resize images (default native).")
@click.option("--train-limit", type=int, default=None, help="Use the first N training images.")
@click.option("--test-limit", type=int, default=None, help="Use the first N test images.")
@click.option("--seed", type=int, default=0, show_default=True,
              help="Seed of the initialisation and the data order.")
@click.option("--out", type=click.Path(dir_okay=False), default="curve.json", show_default=True,
              help="Where to write the curve JSON (atomically).")
def train_ref(model_name: str, dataset: str, root: str | None, trainer: str, budget: str,
              eval_every: float, device: str, batch_size: int, lr: float,
              epochs_schedule: float | None, no_flip: bool, image_size: int | None,
              train_limit: int | None, test_limit: int | None, seed: int, out: str) -> None:
    """Train a reference model and record accuracy against training seconds."""
    import torch

    from deepnetsbench.training.curve import atomic_write_text
    from deepnetsbench.training.models import build_reference_model
    from deepnetsbench.training.trainer import Budget, TrainConfig, train

    bud = Budget.parse(budget)
    config = TrainConfig(optimizer=trainer, lr=lr, batch_size=batch_size,
                         schedule_epochs=epochs_schedule, hflip=not no_flip, seed=seed)
    config.validate()
    train_x, train_y, test_x, test_y, num_classes, sha = _load_tensors(
        dataset, root, image_size, train_limit, test_limit)
    torch.manual_seed(seed)
    model = build_reference_model(model_name, num_classes=num_classes,
                                  image_size=int(train_x.shape[-1]),
                                  in_channels=int(train_x.shape[1]))
    out_path = Path(out)

    def journal(curve) -> None:  # keep every point, even if the run is interrupted
        curve.meta.update(model=model_name, dataset=dataset, dataset_sha256=sha)
        atomic_write_text(out_path, curve.to_json())

    curve = train(model, train_x, train_y, test_x, test_y, config, device, bud,
                  eval_every=eval_every, progress=True, callback=journal)
    journal(curve)
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"{model_name} on {dataset}, {trainer}, {bud} ({curve.hardware})")
    for col in ("seconds", "epochs", "top-1 %", "top-5 %", "train loss"):
        table.add_column(col, justify="right")
    for p in curve.points:
        loss = "" if p.train_loss is None else f"{p.train_loss:.3f}"
        table.add_row(f"{p.seconds:.1f}", f"{p.epochs:.2f}", f"{p.top1:.2f}", f"{p.top5:.2f}",
                      loss)
    Console().print(table)
    click.echo(f"curve ({curve.status}) written to {out_path}")


COMMANDS = [train_ref]
