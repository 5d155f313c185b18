"""One run that exercises every GPU path of the suite and writes its figures (< 8 min, 1 GPU).

    python benchmarks/gpu_check.py --data .data/cifar10.tar.gz --out gpu_check.json
    python benchmarks/gpu_check.py --device cpu --quick --out /tmp/g.json   # the tests' run

Checks, in order (each timed; a failure is printed loudly with its traceback, recorded in
the JSON, and makes the exit status 1; a device that is not there stops the run at once):

1. ``environment``: the device exists (name, capability, memory, bf16, cuDNN, NCCL) and a
   matmul on it agrees with the CPU;
2. ``evaluator``: ``run_evaluation`` with the built-in ``kaiming`` and with GHN-2 (the
   method file ``baselines/ghn2/method.py``, committed checkpoint) on the first 10 TEST
   nets with the full 10,000 CIFAR-10 test images; then the same nets as 2 shards merged,
   which must reproduce the unsharded records;
3. ``ghn2_train``: 50 GHN-2 training steps (meta-batch 8, bf16 autocast on CUDA);
4. ``resnet50_latency``: GHN-2 predicting all of ResNet-50's parameters through the method
   plugin, with the graph given and with the graph traced inside the call;
5. ``ddp``: one DistributedDataParallel training step over NCCL (gloo on CPU) in one process,
   plus an all-reduce and a broadcast;
6. ``torchrun_eval``: ``torchrun -m deepnetsbench eval --distributed`` with one rank on the
   device (2 mock nets): the rank's device and rank 0's merged results file.

``--quick`` shrinks every check (2 nets, 128 images, 2 small training steps, 1 repeat) so
that the CPU run takes seconds. Images: ``--data`` (a CIFAR-10 archive, e.g. carried into
the git-ignored ``.data/``), else ``.data/cifar10.tar.gz`` or ``../shared/data/cifar10.tar.gz``
when present, else synthetic images -- announced loudly, and accuracies are then meaningless.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import sys
import tempfile
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:  # a clean checkout runs without installing the package
    sys.path.insert(0, str(REPO))

import torch  # noqa: E402

CHECKS = ("environment", "evaluator", "ghn2_train", "resnet50_latency", "ddp", "torchrun_eval")
DATA_CANDIDATES = (REPO / ".data" / "cifar10.tar.gz", REPO.parent / "shared" / "data" / "cifar10.tar.gz")


class CheckFailed(AssertionError):
    """A figure that shows a broken path (e.g. a tensor that stayed on the CPU)."""


def _require(cond: bool, what: str) -> None:
    if not cond:
        raise CheckFailed(what)


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _timed(fn: Callable[[], Any], device: torch.device, repeats: int, warmup: int = 1) -> list[float]:
    for _ in range(warmup):
        fn()
    out = []
    for _ in range(repeats):
        _sync(device)
        t0 = time.perf_counter()
        fn()
        _sync(device)
        out.append(time.perf_counter() - t0)
    return out


# ----------------------------------------------------------------------------- checks


def check_environment(ctx: dict) -> dict:
    dev = ctx["device"]
    figures: dict[str, Any] = {"torch": torch.__version__, "device": str(dev),
                               "cuda_runtime": torch.version.cuda}
    if dev.type == "cuda":
        _require(torch.cuda.is_available(), "torch.cuda.is_available() is False")
        props = torch.cuda.get_device_properties(dev)
        figures.update(name=props.name, capability=f"{props.major}.{props.minor}",
                       memory_gib=round(props.total_memory / 2**30, 1),
                       bf16=torch.cuda.is_bf16_supported(),
                       cudnn=torch.backends.cudnn.version(),
                       nccl=".".join(map(str, torch.cuda.nccl.version())))
    a = torch.randn(512, 512, generator=torch.Generator().manual_seed(0))
    err = (a.to(dev) @ a.to(dev)).cpu().sub(a @ a).abs().max().item()
    figures["matmul_max_abs_err"] = err
    _require(err < 1e-2, f"matmul on {dev} differs from the CPU by {err}")
    return figures


def _images(ctx: dict):
    """(ImageDataset, label): the CIFAR-10 archive, or synthetic images with a loud note."""
    if ctx.get("images") is not None:
        return ctx["images"], ctx["images_label"]
    from deepnetsbench.data import load_archive, synthetic_dataset

    path = ctx["data"]
    if path is not None:
        ds = load_archive(path, root=ctx["root"], progress=False,
                          workers=min(8, os.cpu_count() or 1))
        label = f"{ds.name} from {Path(path).name} ({len(ds.test_y)} test images)"
    else:
        _loud("NO IMAGE ARCHIVE: using SYNTHETIC images (pass --data cifar10.tar.gz); "
              "accuracy figures are meaningless, timings are not")
        ds = synthetic_dataset(10, 32, n_train=2000 if ctx["quick"] else 10000,
                               n_test=256 if ctx["quick"] else 10000, seed=0)
        label = "synthetic (no archive given)"
    ctx["images"], ctx["images_label"] = ds, label
    return ds, label


def _test_suite(ctx: dict, n: int):
    """The first ``n`` TEST nets: the split in --root if there is one, else generated
    (``--quick``: the mock split's nets, narrowed to C=8)."""
    from deepnetsbench.errors import BenchError
    from deepnetsbench.eval.runner import open_mock, open_split
    from deepnetsbench.splits.dataset import generate_split

    if ctx["quick"]:
        return open_mock("test", root=ctx["root"])[0], "mock TEST nets at C=8 (--quick)"
    try:
        suite, source = open_split("test", ctx["root"]), "TEST split in --root"
    except BenchError:
        gen_root = Path(ctx["root"]) / "gpu_check_split"
        generate_split("test", n, root=gen_root)
        suite, source = open_split("test", gen_root), f"first {n} TEST nets, generated"
    return suite, source


def check_evaluator(ctx: dict) -> dict:
    from dataclasses import replace

    from deepnetsbench.eval.methods import load_method
    from deepnetsbench.eval.runner import EvalConfig, run_evaluation
    from deepnetsbench.eval.shards import Shard, arch_costs, merge_results, partition, shard_tag

    dev, quick = ctx["device"], ctx["quick"]
    n = 2 if quick else 10
    images, label = _images(ctx)
    suite, source = _test_suite(ctx, n)
    archs = list(range(n))
    runs = Path(ctx["root"]) / "gpu_check_runs"
    cfg = EvalConfig(split="test", dataset=images.name, device=str(dev), archs=archs,
                     out=runs / "kaiming.json", root=ctx["root"], restart=True, progress=False,
                     eval_images=128 if quick else None)
    figures: dict[str, Any] = {"nets": n, "nets_source": source, "images": label}
    for name, spec in (("kaiming", "kaiming"), ("ghn2", str(REPO / "baselines/ghn2/method.py"))):
        method = load_method(spec)
        t0 = time.perf_counter()
        res = run_evaluation(method, suite, images, replace(cfg, out=runs / f"{name}.json"),
                             image_size=32)
        wall = time.perf_counter() - t0
        _require(res.protocol.device.startswith(dev.type), f"{name} ran on {res.protocol.device}")
        _require(dev.type != "cuda" or bool(res.environment.gpu), f"{name}: no GPU recorded")
        agg = res.aggregates
        _require(agg.n_ok == n, f"{name}: {agg.n_failed} of {n} nets failed: "
                 + "; ".join(r.error or "" for r in res.records if r.status != "ok")[:300])
        figures[name] = {"wall_s": round(wall, 2), "s_per_net": round(wall / n, 3),
                         "images_per_s": round(n * res.protocol.eval_images / wall),
                         "top1_mean": round(agg.top1.mean, 2),
                         "predict_s_mean": round(agg.predict_time_s.mean, 4)}
        ctx.setdefault("eval_results", {})[name] = res
    # The same nets as 2 shards (the partition rule of eval --shard), merged: same records.
    groups = partition(arch_costs(suite, archs, images.name), 2)
    parts = []
    for k, group in enumerate(groups, start=1):
        res = run_evaluation(load_method("kaiming"), suite, images,
                             replace(cfg, archs=[archs[p] for p in group],
                                     out=runs / f"shard{k}.json"), image_size=32)
        res.protocol.extra = {**res.protocol.extra,
                              "shard": shard_tag(Shard(k, 2), archs, len(suite))}
        parts.append((f"shard{k}", res))
    merged = merge_results(parts)
    full = ctx["eval_results"]["kaiming"]
    diff = max(abs(a.top1 - b.top1) for a, b in zip(merged.records, full.records))
    figures["shards_merged_max_top1_diff"] = diff
    _require([r.index for r in merged.records] == archs, "merged shards lost records")
    _require(diff <= 0.05, f"2 merged shards differ from the unsharded run by {diff} top-1")
    return figures


def ghn2_train_steps(images: Any, device: torch.device, steps: int, out: Path,
                     quick: bool) -> dict:
    """The only use of ``baselines.ghn2``'s training code (its internals may change): train
    ``steps`` steps with AMP and return the summary figures."""
    from baselines.ghn2.train import TrainConfig, train

    small = {"meta_batch": 2, "batch_size": 16, "width_range": (16, 32)} if quick else {}
    cfg = TrainConfig(data="given", device=str(device), max_steps=steps, amp=True,
                      val_images=min(5000, len(images.train_y) // 10),
                      archs="sampler", exclude_eval=False, out=str(out), val_archs=0,
                      val_every=0, ckpt_every=0, log_every=1, progress=False, **small)
    ghn, summary = train(cfg, images=images)
    log = [json.loads(line) for line in (out / "log.jsonl").read_text().splitlines()]
    losses = [rec["loss"] for rec in log if "loss" in rec]
    return {"steps": int(summary["step"]), "elapsed_s": float(summary["elapsed_s"]),
            "skipped": int(summary["skipped"]), "loss_first": losses[0], "loss_last": losses[-1],
            "params_device": str(next(ghn.parameters()).device), "meta_batch": cfg.meta_batch}


def check_ghn2_train(ctx: dict) -> dict:
    dev, quick = ctx["device"], ctx["quick"]
    images, label = _images(ctx)
    steps = 2 if quick else 50
    with tempfile.TemporaryDirectory() as out:
        fig = ghn2_train_steps(images, dev, steps, Path(out), quick)
    _require(fig["steps"] == steps, f"trained {fig['steps']} of {steps} steps")
    _require(fig["params_device"].startswith(dev.type), f"GHN on {fig['params_device']}")
    for key in ("loss_first", "loss_last"):
        _require(fig[key] == fig[key] and abs(fig[key]) < 1e4, f"{key} is {fig[key]}")
    fig.update(amp=dev.type == "cuda", images=label,
               s_per_step=round(fig["elapsed_s"] / steps, 3),
               arch_images_per_s=round(steps * fig["meta_batch"] * (16 if quick else 64)
                                       / fig["elapsed_s"]))
    return fig


def check_resnet50_latency(ctx: dict) -> dict:
    import torchvision

    from deepnetsbench.eval.methods import Task, load_method
    from deepnetsbench.splits.dataset import ArchRecord

    dev, quick = ctx["device"], ctx["quick"]
    method = load_method(str(REPO / "baselines/ghn2/method.py"))
    method.setup(dev)
    model = torchvision.models.resnet50(num_classes=10).to(dev)
    rec = ArchRecord("predefined", 0, "resnet50", None,
                     sum(p.numel() for p in model.parameters()), 32)

    def task() -> Task:
        return Task(arch=rec, dataset="cifar10", num_classes=10, image_size=32,
                    classes=[str(i) for i in range(10)], device=dev, seed=0)

    given = task()
    _ = given.graph  # built once: the "graph given" timing excludes it
    repeats = 1 if quick else 20
    with_graph = _timed(lambda: method.method.predict(model, given), dev, repeats)
    traced = _timed(lambda: (setattr(rec, "_graph", None), method.method.predict(model, task())),
                    dev, max(1, repeats // 4))
    p = next(model.parameters())
    _require(p.device.type == dev.type, f"ResNet-50 parameters on {p.device}")
    _require(bool(torch.isfinite(p).all()), "predicted ResNet-50 parameters are not finite")
    return {"params": rec.num_params, "repeats": repeats,
            "predict_ms_median": round(1000 * statistics.median(with_graph), 2),
            "predict_ms_best": round(1000 * min(with_graph), 2),
            "predict_with_graph_ms_median": round(1000 * statistics.median(traced), 2)}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def check_ddp(ctx: dict) -> dict:
    import torch.distributed as dist
    from torch.nn.parallel import DistributedDataParallel

    dev = ctx["device"]
    backend = "nccl" if dev.type == "cuda" else "gloo"
    dist.init_process_group(backend, init_method=f"tcp://127.0.0.1:{_free_port()}", rank=0,
                            world_size=1)
    try:
        torch.manual_seed(0)
        net = torch.nn.Sequential(torch.nn.Conv2d(3, 16, 3, padding=1), torch.nn.ReLU(),
                                  torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten(),
                                  torch.nn.Linear(16, 10)).to(dev)
        ddp = DistributedDataParallel(net, device_ids=[dev.index or 0] if dev.type == "cuda"
                                      else None)
        opt = torch.optim.SGD(ddp.parameters(), lr=0.1)
        x, y = torch.randn(32, 3, 32, 32, device=dev), torch.randint(0, 10, (32,), device=dev)
        before = [p.detach().clone() for p in net.parameters()]
        t0 = time.perf_counter()
        with torch.autocast(dev.type, dtype=torch.bfloat16, enabled=dev.type == "cuda"):
            loss = torch.nn.functional.cross_entropy(ddp(x), y)
        loss.backward()
        opt.step()
        _sync(dev)
        step_s = time.perf_counter() - t0
        moved = sum(not torch.equal(a, b) for a, b in zip(before, net.parameters()))
        t = torch.arange(4.0, device=dev)
        dist.all_reduce(t)
        dist.broadcast(t, 0)
        _require(torch.equal(t.cpu(), torch.arange(4.0)), f"all_reduce/broadcast gave {t}")
        _require(moved == len(before), f"{len(before) - moved} parameters did not update")
        _require(bool(torch.isfinite(loss)), f"DDP loss is {loss.item()}")
        return {"backend": backend, "world_size": dist.get_world_size(),
                "loss": round(loss.item(), 4), "step_s": round(step_s, 4)}
    finally:
        dist.destroy_process_group()


def check_torchrun_eval(ctx: dict) -> dict:
    """``torchrun -m deepnetsbench eval --distributed`` with one rank on the device (mock
    nets): the rank's device, its shard and rank 0's merged file."""
    import subprocess

    from deepnetsbench.results import load_results

    dev = ctx["device"]
    out = Path(ctx["root"]) / "gpu_check_runs" / "torchrun.json"
    path = os.pathsep.join(p for p in (str(REPO), os.environ.get("PYTHONPATH")) if p)
    env = {**os.environ, "PYTHONPATH": path}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", "1",
           "--master-addr", "127.0.0.1", "--master-port", str(_free_port()), "-m",
           "deepnetsbench", "eval", "--distributed", "--mock", "--method", "kaiming", "--quiet",
           "--device", dev.type, "--root", ctx["root"], "--arch", "1,3", "--restart",
           "--out", str(out)]
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    wall = time.perf_counter() - t0
    _require(proc.returncode == 0, f"torchrun exited {proc.returncode}: "
             + (proc.stderr or proc.stdout)[-600:])
    res = load_results(out)
    _require(res.protocol.device.startswith(dev.type), f"the rank ran on {res.protocol.device}")
    _require(res.protocol.extra.get("merged", {}).get("shards") == 1, "rank 0 wrote no merge")
    return {"wall_s": round(wall, 2), "rank_device": res.protocol.device,
            "gpu": res.environment.gpu, "records": len(res.records)}


RUNNERS = {"environment": check_environment, "evaluator": check_evaluator,
           "ghn2_train": check_ghn2_train, "resnet50_latency": check_resnet50_latency,
           "ddp": check_ddp, "torchrun_eval": check_torchrun_eval}


# ----------------------------------------------------------------------------- driver


def _loud(text: str) -> None:
    bar = "!" * min(100, len(text) + 8)
    print(f"\n{bar}\n!!! {text}\n{bar}\n", file=sys.stderr, flush=True)


def _find_data(data: str | None) -> str | None:
    if data:
        if not Path(data).exists():
            raise SystemExit(f"error: --data {data} does not exist")
        return data
    return next((str(p) for p in DATA_CANDIDATES if p.exists()), None)


def run_checks(device: str, quick: bool, data: str | None, root: str | None,
               only: list[str] | None = None) -> dict:
    """Run the checks; returns the report (``report["ok"]`` is False when any failed)."""
    dev = torch.device(device)
    if dev.type == "cuda" and dev.index is None:
        dev = torch.device("cuda", 0)
    root = root or str(REPO / ".data" / "gpu_check")
    Path(root).mkdir(parents=True, exist_ok=True)
    ctx = {"device": dev, "quick": quick, "data": _find_data(data), "root": root}
    report: dict[str, Any] = {"device": str(dev), "quick": quick, "data": ctx["data"],
                              "load_average": os.getloadavg()[0], "checks": {}}
    t_start = time.perf_counter()
    for name in only or CHECKS:
        print(f"[gpu_check] {name} ...", file=sys.stderr, flush=True)
        t0 = time.perf_counter()
        try:
            figures = RUNNERS[name](ctx)
            entry = {"ok": True, "seconds": round(time.perf_counter() - t0, 2), **figures}
        except Exception as err:  # noqa: BLE001 - every failure is reported, loudly
            entry = {"ok": False, "seconds": round(time.perf_counter() - t0, 2),
                     "error": f"{type(err).__name__}: {err}"}
            _loud(f"FAILED {name}: {type(err).__name__}: {err}")
            traceback.print_exc()
        report["checks"][name] = entry
        print(f"[gpu_check] {name}: {json.dumps(entry)}", file=sys.stderr, flush=True)
        if name == "environment" and not entry["ok"]:
            break  # no device: nothing else can run
    report["total_s"] = round(time.perf_counter() - t_start, 1)
    report["ok"] = all(c["ok"] for c in report["checks"].values()) and \
        set(report["checks"]) == set(only or CHECKS)
    return report


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", default="cuda", help="cuda (default), cuda:<i> or cpu")
    ap.add_argument("--quick", action="store_true", help="tiny sizes: seconds on a CPU")
    ap.add_argument("--data", default=None, help="CIFAR-10 archive (.tar.gz)")
    ap.add_argument("--root", default=None, help="cache folder (default .data/gpu_check)")
    ap.add_argument("--only", default=None, help="comma list of checks: " + ", ".join(CHECKS))
    ap.add_argument("--out", default="gpu_check.json", help="JSON report")
    args = ap.parse_args(argv)
    only = [c.strip() for c in args.only.split(",")] if args.only else None
    unknown = sorted(set(only or ()) - set(CHECKS))
    if unknown:
        ap.error(f"unknown checks {unknown}; choose from {', '.join(CHECKS)}")
    report = run_checks(args.device, args.quick, args.data, args.root, only)
    Path(args.out).write_text(json.dumps(report, indent=2) + "\n")
    failed = [n for n, c in report["checks"].items() if not c["ok"]]
    if failed or not report["ok"]:
        _loud(f"GPU CHECK FAILED: {', '.join(failed) or 'not every check ran'} "
              f"(report: {args.out})")
        return 1
    print(f"gpu_check: all {len(report['checks'])} checks ok in {report['total_s']} s "
          f"-> {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
