"""What the isolated method worker costs per architecture, against ``--in-process``.

Real TEST architectures at evaluation width (``--root`` must hold the split: ``deepnets-bench
download`` or ``build --split test``), the ``kaiming`` method, one scored image and no MAC
count, so that what is left per architecture is the machinery: building, predicting,
handing the tensors over, loading and checking. Also times worker starts (the first one
starts the forkserver, which imports torch).

    python benchmarks/bench_isolation.py --root ~/.cache/deepnets-bench --archs 20
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import torch

from deepnetsbench.data.synthetic import synthetic_dataset
from deepnetsbench.eval.isolation import WorkerPredictor, method_ref
from deepnetsbench.eval.runner import EvalConfig, open_split, run_evaluation


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--root", default=None, help="data root holding the TEST split")
    ap.add_argument("--archs", type=int, default=20)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)

    starts = WorkerPredictor(method_ref("kaiming"), torch.device("cpu"))
    for _ in range(4):
        starts.start()
    starts.close()
    print("worker starts (s):", ", ".join(f"{s:.3f}" for s in starts.start_seconds))

    suite = open_split("test", args.root)
    images = synthetic_dataset(10, 32, n_train=0, n_test=8)
    best: dict[str, float] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for rnd in range(args.rounds):
            for mode in ("process", "in-process"):
                cfg = EvalConfig(out=Path(tmp) / f"{mode}.json", limit=args.archs, eval_images=1,
                                 flops=False, progress=False, restart=True, isolation=mode)
                t0 = time.perf_counter()
                res = run_evaluation("kaiming", suite, images, cfg, 32)
                wall = (time.perf_counter() - t0) / args.archs
                best[mode] = min(best.get(mode, wall), wall)
                predict = sum(r.predict_time_s for r in res.records) / args.archs
                params = sum(r.num_params for r in res.records) / args.archs
                handed = [r.extra.get("predict_wall_s") for r in res.records]
                clock = (f", go-to-done {sum(handed) / len(handed) * 1e3:.0f} ms"
                         if all(handed) else "")
                print(f"round {rnd + 1} {mode:10s}: {wall * 1e3:.0f} ms/arch (predict "
                      f"{predict * 1e3:.0f} ms{clock}), {params / 1e6:.2f} M params")
    print(f"best: worker {best['process'] * 1e3:.0f} ms/arch, in-process "
          f"{best['in-process'] * 1e3:.0f} ms/arch, overhead "
          f"{(best['process'] - best['in-process']) * 1e3:.0f} ms/arch")


if __name__ == "__main__":
    main()
