"""Train a GHN (GHN-2 by default; GHN-1 or the MLP hypernetwork with ``--ghn``) on
DeepNets-1M architectures and an image dataset (CIFAR-10 by default), by the released
recipe (:mod:`baselines.ghn2.trainer`; docs/baselines.md).

    python -m baselines.ghn2.train --data ../shared/data/cifar10.tar.gz --out runs/ghn2 \\
        --device cuda --time-budget 3600
    python -m baselines.ghn2.train --ghn ghn1 --out runs/ghn1      # meta-batch 1, as released
    python -m baselines.ghn2.train --out runs/ghn2 --resume          # continue a run
    torchrun --nproc-per-node 4 -m baselines.ghn2.train ...          # several GPUs

The pieces: :mod:`~baselines.ghn2.data` (images, split, augmentation),
:mod:`~baselines.ghn2.archs` (architectures, widths), :mod:`~baselines.ghn2.step` (one
step's forward/backward), :mod:`~baselines.ghn2.trainer` (the loop, checkpoints).
"""

from __future__ import annotations

import json
import os
import sys
from dataclasses import fields, replace
from typing import Any

import torch

from baselines.ghn2.archs import ArchSource, build_net, sample_width
from baselines.ghn2.data import load_images, random_crop_flip, split_train_val
from baselines.ghn2.model import GHN2, PRESETS, GHN2Config
from baselines.ghn2.step import net_losses
from baselines.ghn2.trainer import TrainConfig, Trainer
from deepnetsbench.errors import BenchError

__all__ = ["TrainConfig", "Trainer", "train", "main", "load_images", "ArchSource",
           "sample_width", "random_crop_flip", "split_train_val", "build_net", "net_losses"]


def train(cfg: TrainConfig, ghn_cfg: GHN2Config | dict | None = None, resume: bool = False,
          **kwargs: Any) -> tuple[GHN2, dict]:
    """Train (or resume) and return ``(ghn, summary)``; ``ghn_cfg``: a config, or changes
    to the ``cfg.ghn`` preset."""
    trainer = Trainer(cfg, ghn_cfg, resume=resume, **kwargs)
    summary = trainer.run()
    return trainer.ghn, summary


# ----------------------------------------------------------------------------- CLI


def _parse_opts(items: tuple[str, ...]) -> dict:
    from deepnetsbench.eval.methods import parse_method_options

    return parse_method_options(list(items))


def _cli():
    import click

    from deepnetsbench.options import root_option

    @click.command(context_settings={"help_option_names": ["-h", "--help"]})
    @click.option("--data", default="cifar10", show_default=True,
                  help="image archive path, cached dataset name, or 'synthetic'")
    @root_option
    @click.option("--archs", default="auto", show_default=True,
                  help="'auto' (built train split, else the sampler), 'sampler', or a split file")
    @click.option("--out", default="runs/ghn2", show_default=True, help="run folder")
    @click.option("--device", default="cpu", show_default=True, help="cpu, cuda or cuda:<i>")
    @click.option("--max-steps", type=int, default=None, help="stop after N steps")
    @click.option("--epochs", type=int, default=300, show_default=True,
                  help="training epochs over the images (the released recipe: 300)")
    @click.option("--time-budget", type=float, default=None, help="seconds of training")
    @click.option("--ghn", "kind", type=click.Choice(sorted(PRESETS)), default="ghn2",
                  show_default=True, help="the released model to train")
    @click.option("--meta-batch", type=int, default=None,
                  help="architectures per step [default: 8; 1 for ghn1, as released]")
    @click.option("--batch-size", type=int, default=64, show_default=True,
                  help="images per step (each net of the meta-batch sees them)")
    @click.option("--lr", type=float, default=1e-3, show_default=True, help="Adam learning rate")
    @click.option("--seed", type=int, default=0, show_default=True,
                  help="seed of the initialisation, data order and architecture draws")
    @click.option("--resume", is_flag=True, help="continue from OUT/last.pt")
    @click.option("--synthetic", is_flag=True,
                  help="synthetic images and sampled architectures (smoke tests)")
    @click.option("--threads", type=int, default=None, help="torch CPU threads")
    @click.option("--opt", "train_opts", multiple=True, metavar="KEY=VALUE",
                  help="any other TrainConfig field, e.g. --opt val_every=200")
    @click.option("--ghn-opt", "ghn_opts", multiple=True, metavar="KEY=VALUE",
                  help="GHN2Config field over the --ghn preset, e.g. --ghn-opt hid=64")
    def cli(data, root, archs, out, device, max_steps, epochs, time_budget, kind, meta_batch,
            batch_size, lr, seed, resume, synthetic, threads, train_opts, ghn_opts):
        """Train a GHN baseline (see baselines/ghn2/train.py and docs/baselines.md)."""
        if threads:
            torch.set_num_threads(threads)
        distributed = int(os.environ.get("WORLD_SIZE", "1")) > 1
        if distributed:
            backend = "nccl" if device.startswith("cuda") else "gloo"
            torch.distributed.init_process_group(backend)
        cfg = TrainConfig(data=data, root=root, archs=archs, out=out, device=device,
                          max_steps=max_steps, epochs=epochs, time_budget=time_budget,
                          ghn=kind, batch_size=batch_size, lr=lr, seed=seed,
                          meta_batch=meta_batch or (1 if kind == "ghn1" else 8))
        if synthetic:
            cfg = replace(cfg, data="synthetic", archs="sampler", exclude_eval=False,
                          num_archs=1000, width_range=(8, 16), width_step=8,
                          fc_dim_range=(32, 64), fc_dim_step=32,
                          val_archs=1, val_every=0, val_images=200)
        extra = _parse_opts(train_opts)
        known = {f.name for f in fields(TrainConfig)}
        bad = sorted(set(extra) - known)
        if bad:
            raise BenchError(f"unknown training options {bad}",
                             f"use TrainConfig fields: {', '.join(sorted(known))}")
        cfg = TrainConfig.from_dict({**cfg.to_dict(), **extra})
        ghn_cfg = _parse_opts(ghn_opts) if ghn_opts else None
        known = {f.name for f in fields(GHN2Config)}
        bad = sorted(set(ghn_cfg or {}) - known)
        if bad:
            raise BenchError(f"unknown GHN options {bad}",
                             f"use GHN2Config fields: {', '.join(sorted(known))}")
        try:
            _, summary = train(cfg, ghn_cfg, resume=resume)
        except KeyboardInterrupt:
            sys.exit(130)
        finally:
            if distributed:
                torch.distributed.destroy_process_group()
        click.echo(json.dumps(summary))

    return cli


def main(argv: list[str] | None = None) -> None:
    """Entry point of ``python -m baselines.ghn2.train``; BenchErrors print one line."""
    try:
        _cli().main(args=argv, standalone_mode=False)
    except BenchError as err:
        print(f"error: {err.what}" + (f"; fix: {err.fix}" if err.fix else ""), file=sys.stderr)
        sys.exit(2)
    except Exception as err:
        import click

        if isinstance(err, click.ClickException):
            err.show()
            sys.exit(err.exit_code)
        raise


if __name__ == "__main__":
    main()
