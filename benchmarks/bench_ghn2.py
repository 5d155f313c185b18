"""Speed of the GHN-2 baseline: graph tracing, prediction, a meta-batch, a training step.

    .venv/bin/python benchmarks/bench_ghn2.py --threads 2
    .venv/bin/python benchmarks/bench_ghn2.py --threads 1 --device cuda

Reported (best of ``--repeats``; medians are printed beside them because a shared machine
is noisy):

* ``trace``: ``graph_from_module(resnet50, 32)`` -- the graph tracer on a real model (an
  empty batch: autograd records the graph, the kernels compute nothing), beside it the
  same trace on one real image and on one image on the meta device;
* ``resnet50``: ``ghn.predict(model)`` for the PREDEFINED ResNet-50 (CIFAR-adjusted as
  published: 3x3 stride-1 stem, no max-pool; 10 classes), graph construction included (and
  without it, with the graph given); the same for the unadjusted torchvision model;
* ``metabatch``: ``predict_params`` for 8 DeepNets-1M train architectures at C=32
  (graph packing and virtual edges included), no gradient;
* ``train step``: one step of :class:`baselines.ghn2.train.Trainer` (meta-batch 8, image
  batch 64, widths sampled as in training) and its share spent in the GHN (prediction
  and the backward pass into the GHN) -- the rest is the eight networks themselves --
  and the training throughput in architecture-images per second (meta-batch x image
  batch / median step), the number to compare across devices.

The side-by-side comparisons with the official code (same machine, same nets, same GHN
weights) are in docs/benchmarks.md; this script times our side only.
"""

from __future__ import annotations

import argparse
import copy
import os
import statistics
import time

import torch
import torchvision


def timed(fn, repeats: int, device: torch.device) -> tuple[float, float]:
    """(best, median) wall seconds of ``fn()``, synchronised on CUDA."""
    out = []
    fn()  # warm-up
    for _ in range(repeats):
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        t0 = time.perf_counter()
        fn()
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        out.append(time.perf_counter() - t0)
    return min(out), statistics.median(out)


def fresh(graph):
    """The graph without its cached virtual edges (so that they are timed too)."""
    g = copy.copy(graph)
    g._virtual = {}
    return g


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--repeats", type=int, default=7)
    ap.add_argument("--train-steps", type=int, default=3)
    ap.add_argument("--width-range", default="32,128", help="training widths C (lo,hi), step 16")
    ap.add_argument("--skip-train", action="store_true")
    ap.add_argument("--amp-cpu", action="store_true", help="bf16 autocast for the nets on CPU")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    device = torch.device(args.device)

    from baselines.ghn2.model import GHN2, GHN2Config, model_shapes
    from deepnetsbench.graph import graph_from_module, graph_from_spec
    from deepnetsbench.space import SPLIT_CONFIGS, build_model, sample_arch

    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"torch {torch.__version__}, threads {args.threads}, device {device}, "
          f"load average {load:.1f} on {os.cpu_count()} cores")
    torch.manual_seed(0)
    ghn = GHN2(GHN2Config.preset("ghn2")).to(device).eval()
    print(f"GHN-2: {ghn.num_params / 1e6:.2f} M parameters")

    from deepnetsbench.splits.predefined import build_predefined

    r50 = build_predefined("resnet50", 10, 32).to(device)
    best, med = timed(lambda: graph_from_module(r50, 32), args.repeats, device)
    print(f"trace     graph_from_module(resnet50, 32)        {best * 1e3:7.1f} ms "
          f"(median {med * 1e3:.1f})")
    one = torch.randn(1, 3, 32, 32, device=device)
    best, med = timed(lambda: graph_from_module(r50, 32, example=one), args.repeats, device)
    print(f"trace     same model on one image                 {best * 1e3:7.1f} ms "
          f"(median {med * 1e3:.1f})")
    r50_meta = build_predefined("resnet50", 10, 32, device="meta")
    ex = torch.randn(1, 3, 32, 32, device="meta")
    best, med = timed(lambda: graph_from_module(r50_meta, 32, example=ex), args.repeats, device)
    print(f"trace     one image on the meta device            {best * 1e3:7.1f} ms "
          f"(median {med * 1e3:.1f})")
    graph = graph_from_module(r50, 32)
    best, med = timed(lambda: ghn.predict(r50), args.repeats, device)
    print(f"resnet50  predict, graph construction included   {best * 1e3:7.1f} ms "
          f"(median {med * 1e3:.1f})  [target <= 75 ms]")
    best, med = timed(lambda: ghn.predict(r50, fresh(graph)), args.repeats, device)
    print(f"resnet50  predict, graph given                   {best * 1e3:7.1f} ms "
          f"(median {med * 1e3:.1f})")
    tv = torchvision.models.resnet50(num_classes=10).to(device)
    best, med = timed(lambda: ghn.predict(tv), args.repeats, device)
    print(f"resnet50  torchvision (unadjusted), graph incl.  {best * 1e3:7.1f} ms "
          f"(median {med * 1e3:.1f})")

    specs = [sample_arch(SPLIT_CONFIGS["train"], i) for i in range(8)]
    graphs = [graph_from_spec(s) for s in specs]
    shapes = [model_shapes(build_model(s)) for s in specs]
    nodes = sum(g.num_nodes for g in graphs)

    def metabatch():
        with torch.no_grad():
            ghn.predict_params([fresh(g) for g in graphs], shapes)

    best, med = timed(metabatch, args.repeats, device)
    print(f"metabatch predict_params, 8 nets ({nodes} nodes)    {best * 1e3:7.1f} ms "
          f"(median {med * 1e3:.1f})")

    if args.skip_train:
        return
    from baselines.ghn2.train import TrainConfig, Trainer, net_losses
    from deepnetsbench.data import synthetic_dataset

    lo, hi = (int(v) for v in args.width_range.split(","))
    images = synthetic_dataset(n_train=1000, n_test=10)
    cfg = TrainConfig(data="synthetic", archs="sampler", exclude_eval=False, num_archs=10_000,
                      out="/tmp/bench_ghn2", device=args.device, progress=False,
                      width_range=(lo, hi), val_images=100, amp_cpu=args.amp_cpu)
    tr = Trainer(cfg, images=images)
    steps, ghn_share = [], []
    while len(steps) < args.train_steps:
        nets = tr.sample_nets()
        if nets is None:
            continue
        x, y = tr.stream.next()
        t0 = time.perf_counter()
        tr.opt.zero_grad(set_to_none=True)
        net_losses(tr.ghn, nets, x, y, amp=tr.amp, channels_last=cfg.channels_last,
                   seeds=list(range(len(nets))))
        torch.nn.utils.clip_grad_norm_(tr.ghn.parameters(), cfg.grad_clip)
        tr.opt.step()
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        total = time.perf_counter() - t0
        # the GHN's part alone: prediction + backward with the same shapes (unit gradients)
        t1 = time.perf_counter()
        preds = tr.ghn.predict_params([n.graph for n in nets], [n.shapes for n in nets])
        torch.autograd.backward([v for p in preds for v in p.values()],
                                [torch.ones_like(v) for p in preds for v in p.values()])
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        part = time.perf_counter() - t1
        steps.append(total)
        ghn_share.append(part)
        widths = [n.spec.args.C for n in nets]
        params = sum(sum(torch.Size(s).numel() for s in n.shapes.values()) for n in nets)
        print(f"train     step {len(steps)}: {total:6.2f} s, of which GHN ~{part:5.2f} s "
              f"(nodes {sum(n.graph.num_nodes for n in nets)}, C {widths}, "
              f"{params / 1e6:.1f} M params)")
    through = cfg.meta_batch * cfg.batch_size / statistics.median(steps)
    print(f"train     throughput {through:.0f} architecture-images/s (meta-batch "
          f"{cfg.meta_batch} x {cfg.batch_size} images per median step)")
    print(f"train     median step {statistics.median(steps):.2f} s, GHN part "
          f"{statistics.median(ghn_share):.2f} s")


if __name__ == "__main__":
    main()
