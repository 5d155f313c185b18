"""How the deepnets1m-lite score of a network tracks its full-protocol score.

Takes a full-protocol results file (``eval --split test --arch ...``, 10,000 images) and a
lite results file of the same method (``eval --suite deepnets1m-lite --split test``) and
compares the networks both scored: per-network top-1 correlation (Pearson and Spearman),
the mean difference lite - full with its standard deviation, the mean absolute
difference, and the two means over those networks.

    python benchmarks/lite_vs_full.py runs/kaiming-full.json runs/kaiming-lite-test.json
"""

from __future__ import annotations

import argparse
import json
import math
from typing import Any

import numpy as np


def paired_top1(full: Any, lite: Any, metric: str = "top1") -> tuple[list[int], np.ndarray,
                                                                      np.ndarray]:
    """(indices, full values, lite values) of the networks both runs scored successfully."""
    if full.split.sha256 != lite.split.sha256 or full.method.name != lite.method.name:
        raise SystemExit("the two files are not the same method on the same split file")
    a = {r.index: getattr(r, metric) for r in full.records if r.status == "ok"}
    b = {r.index: getattr(r, metric) for r in lite.records if r.status == "ok"}
    common = sorted(set(a) & set(b))
    return common, np.array([a[i] for i in common], float), np.array([b[i] for i in common], float)


def _ranks(x: np.ndarray) -> np.ndarray:
    order = np.argsort(x, kind="stable")
    ranks = np.empty(len(x))
    ranks[order] = np.arange(len(x))
    for v in np.unique(x):  # ties share their mean rank
        ranks[x == v] = ranks[x == v].mean()
    return ranks


def _pearson(x: np.ndarray, y: np.ndarray) -> float:
    if len(x) < 3 or x.std() == 0 or y.std() == 0:
        return math.nan
    return float(np.corrcoef(x, y)[0, 1])


def compare(full_values: np.ndarray, lite_values: np.ndarray) -> dict[str, float]:
    """The agreement figures of paired per-network scores."""
    d = lite_values - full_values
    return {"n": int(len(d)), "pearson": _pearson(full_values, lite_values),
            "spearman": _pearson(_ranks(full_values), _ranks(lite_values)),
            "mean_diff": float(d.mean()), "sd_diff": float(d.std(ddof=1)) if len(d) > 1 else 0.0,
            "mean_abs_diff": float(np.abs(d).mean()), "full_mean": float(full_values.mean()),
            "lite_mean": float(lite_values.mean())}


def main() -> None:
    from deepnetsbench.results import load_results

    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("full", help="full-protocol results file")
    ap.add_argument("lite", help="deepnets1m-lite results file of the same method and split")
    ap.add_argument("--json", action="store_true", help="print one JSON object")
    args = ap.parse_args()
    full, lite = load_results(args.full), load_results(args.lite)
    out: dict[str, Any] = {"method": full.method.name, "split": full.split.name}
    for metric in ("top1", "top5"):
        idx, a, b = paired_top1(full, lite, metric)
        out[metric] = compare(a, b)
    out["indices"] = idx
    if args.json:
        print(json.dumps(out, indent=2))
        return
    print(f"{out['method']} on {out['split']}: {len(idx)} networks scored by both runs")
    for metric in ("top1", "top5"):
        c = out[metric]
        print(f"  {metric}: full {c['full_mean']:.2f} %, lite {c['lite_mean']:.2f} %; per net "
              f"Pearson {c['pearson']:.3f}, Spearman {c['spearman']:.3f}; lite - full "
              f"{c['mean_diff']:+.2f} +- {c['sd_diff']:.2f} (s.d.), |diff| {c['mean_abs_diff']:.2f}")


if __name__ == "__main__":
    main()
