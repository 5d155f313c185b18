"""Ranks as significance groups (the exact rule is in docs/submitting.md).

A small accuracy gap measured on a few hundred architectures is often noise, so the
leaderboard does not give every method its own rank. Methods are sorted by mean top-1;
the first method leads group 1; each following method joins the current group unless it is
significantly worse than that group's leader, in which case it starts (and leads) the next
group. "Significantly worse" = the 95% paired-bootstrap interval of the mean top-1
difference (leader - method, over the same architectures, matched by index, failures as
0%) lies entirely above 0.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from deepnetsbench.results import DEFAULT_BOOT_SEED, DEFAULT_N_BOOT, Results


def per_arch_top1(res: Results) -> dict[int, float]:
    """Top-1 per architecture index, failed architectures as 0 (as in the aggregates)."""
    return {r.index: (r.top1 if r.status == "ok" else 0.0) for r in res.records}


def paired_diff_ci(a: dict[int, float], b: dict[int, float], n_boot: int = DEFAULT_N_BOOT,
                   seed: int = DEFAULT_BOOT_SEED) -> tuple[float, float, float]:
    """(mean, 2.5th, 97.5th percentile) of the bootstrap mean of ``a - b`` over shared indices."""
    common = sorted(set(a) & set(b))
    if not common:
        return (float("nan"),) * 3
    d = np.array([a[i] - b[i] for i in common], dtype=np.float64)
    rng = np.random.default_rng(seed)
    n = len(d)
    means = np.empty(n_boot)
    chunk = max(1, 2_000_000 // n)
    for start in range(0, n_boot, chunk):
        stop = min(n_boot, start + chunk)
        means[start:stop] = d[rng.integers(0, n, size=(stop - start, n))].mean(axis=1)
    lo, hi = np.percentile(means, [2.5, 97.5])
    return float(d.mean()), float(lo), float(hi)


def significantly_worse(leader: dict[int, float], other: dict[int, float],
                        n_boot: int = DEFAULT_N_BOOT, seed: int = DEFAULT_BOOT_SEED) -> bool:
    """Whether ``other`` is significantly below ``leader`` (paired 95% interval above 0)."""
    _, lo, _ = paired_diff_ci(leader, other, n_boot, seed)
    return bool(lo > 0)


def significance_ranks(scores: Sequence[dict[int, float]], n_boot: int = DEFAULT_N_BOOT,
                       seed: int = DEFAULT_BOOT_SEED) -> list[int]:
    """Group ranks (1, 1, 2, ...) for methods given **in order of decreasing mean top-1**."""
    ranks: list[int] = []
    leader: dict[int, float] | None = None
    rank = 0
    for s in scores:
        if leader is None or significantly_worse(leader, s, n_boot, seed):
            rank += 1
            leader = s
        ranks.append(rank)
    return ranks


def order_and_rank(results: Sequence[Results], tiebreak: Sequence[str] | None = None,
                   n_boot: int = DEFAULT_N_BOOT,
                   seed: int = DEFAULT_BOOT_SEED) -> list[tuple[int, int]]:
    """``[(position in results, rank)]`` best first: mean top-1 descending, then ``tiebreak``
    ascending (e.g. submission dates, so the earlier of two equal entries comes first)."""
    keys = tiebreak or [""] * len(results)
    order = sorted(range(len(results)),
                   key=lambda i: (-(results[i].aggregates.top1.mean or 0.0), keys[i]))
    ranks = significance_ranks([per_arch_top1(results[i]) for i in order], n_boot, seed)
    return list(zip(order, ranks))
