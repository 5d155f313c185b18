"""CLI start-up benchmark: ``deepnets-bench --help`` / ``--version`` against ``import torch``.

Target: ``--help`` and ``--version`` under 0.5 s, i.e. they must not import torch (which
alone takes longer). Each command is a fresh process, timed wall-clock from spawn to exit,
rounds alternating between the commands so that load on a shared machine hits all alike;
the report gives medians, best times and each command's ratio to ``import torch``, measured
in this one run, plus the load average.

Usage: python benchmarks/bench_cli.py [--repeats 7] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time

CLI = [sys.executable, "-m", "deepnetsbench"]
CASES = {
    "--help": CLI + ["--help"],
    "--version": CLI + ["--version"],
    "eval --help": CLI + ["eval", "--help"],
    "python (empty)": [sys.executable, "-c", "pass"],
    "import torch": [sys.executable, "-c", "import torch"],
}
TARGET_S = 0.5
SCRIPT = os.path.join(os.path.dirname(sys.executable), "deepnets-bench")
if os.path.exists(SCRIPT):  # the installed console script, as users call it
    CASES["script --help"] = [SCRIPT, "--help"]


def time_once(cmd: list[str]) -> float:
    t0 = time.perf_counter()
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=7)
    ap.add_argument("--json", default=None, help="also write the figures here")
    args = ap.parse_args()

    for cmd in CASES.values():  # warm the file cache once; not timed
        time_once(cmd)
    times: dict[str, list[float]] = {name: [] for name in CASES}
    load_before = os.getloadavg()[0]
    for _ in range(args.repeats):
        for name, cmd in CASES.items():
            times[name].append(time_once(cmd))
    load_after = os.getloadavg()[0]

    torch_s = statistics.median(times["import torch"])
    report = {"repeats": args.repeats, "load_average_1min": [load_before, load_after],
              "target_s": TARGET_S, "cases": {}}
    print(f"{'command':<16} {'median s':>9} {'best s':>8} {'/ import torch':>15}")
    for name, ts in times.items():
        med = statistics.median(ts)
        report["cases"][name] = {"median_s": med, "best_s": min(ts), "ratio_to_torch": med / torch_s}
        print(f"{name:<16} {med:9.3f} {min(ts):8.3f} {med / torch_s:15.3f}")
    verdict = all(report["cases"][n]["median_s"] < TARGET_S for n in ("--help", "--version"))
    report["met"] = verdict
    print(f"load average {load_before:.2f} -> {load_after:.2f}; target --help/--version < "
          f"{TARGET_S} s: {'met' if verdict else 'NOT met'}")
    if args.json:
        with open(args.json, "w", encoding="utf-8") as f:
            json.dump(report, f, indent=2)
    sys.exit(0 if verdict else 1)


if __name__ == "__main__":
    main()
