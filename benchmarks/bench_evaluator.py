"""Evaluator overhead: ``deepnets-bench eval`` vs a bare torch loop doing the same work.

    .venv/bin/python benchmarks/bench_evaluator.py --archs 5 --images 10000 --threads 1

Both sides build the same N generated networks (test sampler, narrowed to width ``--width``),
give them the same Kaiming parameters (built-in ``kaiming``, same per-architecture seeds),
and score the same synthetic CIFAR-sized test set (10k images, batch 64, BatchNorm batch
statistics), with the images converted to tensors once. The evaluator adds the method
plugin, timing, checks, MAC counting, the journal (fsync per record) and the results JSON.
The bare loop feeds the same NHWC (channels-last) batches as the evaluator;
``--nchw-bare`` makes it feed plain NCHW batches instead, so that the ratio shows what the
layout buys. Target: evaluator wall time <= 1.10x the bare loop, measured in the same run; the two
sides alternate (``--repeats``) so that a noisy shared machine hits both alike, and the
process CPU time of each side is reported too (on a busy machine it is the steadier
measure of the work each side does). The top-1 of every network must agree between the
two sides (same work, same numbers).
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import torch
from torch.nn.modules.batchnorm import _NormBase

from deepnetsbench.data.synthetic import synthetic_dataset
from deepnetsbench.eval import scoring
from deepnetsbench.eval.builtin import KaimingInit
from deepnetsbench.eval.inputs import _narrow
from deepnetsbench.eval.methods import Task, load_method
from deepnetsbench.eval.runner import (
    ArchSuite,
    EvalConfig,
    arch_seed,
    run_evaluation,
)
from deepnetsbench.results import SplitInfo
from deepnetsbench.splits import DeepNets1M, generate_split

SCORING = {"bare": 0.0, "eval": 0.0}  # wall seconds spent scoring (forward passes), per side


def _timed_accuracy(*args, **kwargs):
    t0 = time.perf_counter()
    out = _evaluate_accuracy(*args, **kwargs)
    SCORING["eval"] += time.perf_counter() - t0
    return out


_evaluate_accuracy = scoring.evaluate_accuracy  # the evaluator scores in its own process
scoring.evaluate_accuracy = _timed_accuracy


def bare_loop(suite: ArchSuite, images, n_archs: int, seed: int, batch: int,
              device: torch.device, nhwc: bool = True) -> tuple[float, list[float]]:
    """Build, load, score: the least a harness must do, in the evaluator's NHWC layout
    (``nhwc=False``: plain NCHW batches, to measure what the layout buys). Returns
    (seconds, top-1 list)."""
    fmt = torch.channels_last if nhwc else torch.contiguous_format
    t0 = time.perf_counter()
    x, y = images.test_tensors(image_size=32, channels=3)
    top1 = []
    for i in range(n_archs):
        rec = suite[i]
        s = arch_seed(seed, i)
        torch.manual_seed(s)
        model = rec.build_model(num_classes=10, image_size=32).to(device)
        task = Task(arch=rec, dataset="synthetic", num_classes=10, image_size=32,
                    classes=images.classes, device=device, seed=s)
        model.load_state_dict(KaimingInit().predict(model, task), strict=False)
        model.eval()
        for m in model.modules():
            if isinstance(m, _NormBase):
                m.train()
                m.track_running_stats = False
        correct = 0
        t1 = time.perf_counter()
        with torch.no_grad():
            for j in range(0, len(x), batch):
                logits = model(x[j:j + batch].to(device).contiguous(memory_format=fmt))
                correct += int((logits.argmax(1) == y[j:j + batch].to(device)).sum())
        SCORING["bare"] += time.perf_counter() - t1
        top1.append(100.0 * correct / len(x))
    return time.perf_counter() - t0, top1


def evaluator(suite: ArchSuite, images, n_archs: int, seed: int, batch: int, device: str,
              out: Path) -> tuple[float, list[float]]:
    t0 = time.perf_counter()
    method = load_method("kaiming")
    cfg = EvalConfig(out=out, limit=n_archs, seed=seed, batch_size=batch, device=device,
                     progress=False, restart=True)
    res = run_evaluation(method, suite, images, cfg, 32)
    wall = time.perf_counter() - t0
    bad = [r.error for r in res.records if r.status != "ok"]
    assert not bad, bad
    return wall, [r.top1 for r in res.records]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--archs", type=int, default=5)
    ap.add_argument("--images", type=int, default=10_000)
    ap.add_argument("--width", type=int, default=8, help="base width C of the generated nets")
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--repeats", type=int, default=1, help="alternating rounds of both sides")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--nchw-bare", action="store_true",
                    help="bare loop on NCHW batches: the ratio then shows the NHWC speed-up")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    device = torch.device(args.device)

    with tempfile.TemporaryDirectory() as tmp:
        generate_split("test", args.archs, root=tmp, progress=False)
        ds = DeepNets1M("test", root=tmp)
        suite = ArchSuite(ds, SplitInfo(name="test", sha256=ds.sha256, generator_version="1",
                                        num_items=len(ds)), transform=_narrow(args.width))
        images = synthetic_dataset(10, 32, n_train=0, n_test=args.images, seed=0)
        params = [suite[i].num_params for i in range(args.archs)]
        print(f"{args.archs} nets (test sampler, C={args.width}; {min(params):,}-{max(params):,} "
              f"params) x {args.images} images, batch {args.batch_size}, {args.threads} "
              f"thread(s), {args.device}")
        wall: dict[str, list[float]] = {"bare": [], "eval": []}
        cpu: dict[str, list[float]] = {"bare": [], "eval": []}
        top1 = {}
        for r in range(args.repeats):
            order = ("bare", "eval") if r % 2 == 0 else ("eval", "bare")
            for side in order:
                c0 = time.process_time()
                if side == "bare":
                    t, top1[side] = bare_loop(suite, images, args.archs, 0, args.batch_size,
                                              device, nhwc=not args.nchw_bare)
                else:
                    t, top1[side] = evaluator(suite, images, args.archs, 0, args.batch_size,
                                              args.device, Path(tmp) / "res.json")
                c = time.process_time() - c0
                wall[side].append(t)
                cpu[side].append(c)
                print(f"  round {r + 1} {side:>4}: {t:.2f} s wall, {c:.2f} s cpu")
        # NCHW vs NHWC may differ in the last float bits: allow one image in 10k then
        tol = 1e-9 if not args.nchw_bare else 100.0 / args.images + 1e-9
        assert all(abs(a - b) <= tol for a, b in zip(top1["bare"], top1["eval"])), top1
        for label, d in (("wall", wall), ("cpu", cpu)):
            b, e = sum(d["bare"]), sum(d["eval"])
            print(f"{label:>4}: bare loop {b:.2f} s, evaluator {e:.2f} s, ratio {e / b:.3f}x "
                  f"(sum over rounds); best round {min(d['eval']) / min(d['bare']):.3f}x")
        outside = {k: sum(wall[k]) - SCORING[k] for k in wall}
        n = args.archs * args.repeats
        print(f"outside the forward passes: bare loop {outside['bare']:.2f} s, evaluator "
              f"{outside['eval']:.2f} s ({1000 * (outside['eval'] - outside['bare']) / n:.0f} ms "
              "more per architecture: plugin, checks, MACs, journal, results JSON)")
        print("target: wall ratio <= 1.10x; top-1 identical on both sides")

if __name__ == "__main__":
    main()
