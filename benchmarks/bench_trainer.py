"""Throughput of the reference trainer: images/s of one epoch on synthetic CIFAR-sized data.

    .venv/bin/python benchmarks/bench_trainer.py --model convnet --n 2048 --threads 1

Also reports the share of the wall clock spent outside the timed training (evaluation and
bookkeeping), which the speedup protocol excludes, and the augmentation's cost as a ratio
measured in the same run.
"""

from __future__ import annotations

import argparse
import time

import torch

from deepnetsbench.training.models import build_reference_model
from deepnetsbench.training.trainer import Budget, TrainConfig, train


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default="convnet")
    ap.add_argument("--n", type=int, default=2048, help="training images")
    ap.add_argument("--size", type=int, default=32)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--device", default="cpu")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    g = torch.Generator().manual_seed(0)
    x = torch.randn(args.n, 3, args.size, args.size, generator=g)
    y = torch.randint(0, 10, (args.n,), generator=g)
    tx, ty = x[:256], y[:256]
    results = {}
    for augment in (False, True):
        torch.manual_seed(0)
        model = build_reference_model(args.model, 10, args.size)
        cfg = TrainConfig(augment=augment)
        t0 = time.perf_counter()
        curve = train(model, x, y, tx, ty, cfg, args.device, Budget(epochs=1), eval_every=None)
        wall = time.perf_counter() - t0
        imgs = curve.points[-1].steps * curve.meta["batch_size"]
        results[augment] = imgs / curve.total_seconds
        print(f"{args.model} augment={augment}: {results[augment]:.0f} images/s "
              f"({imgs} images in {curve.total_seconds:.2f} s training; {wall:.2f} s wall, "
              f"{100 * (1 - curve.total_seconds / wall):.0f}% outside the timed training) "
              f"on {curve.hardware}")
    print(f"augmentation cost: {results[False] / results[True]:.3f}x (no-aug / aug throughput)")


if __name__ == "__main__":
    main()
