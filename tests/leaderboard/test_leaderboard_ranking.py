"""Significance-group ranks: paired bootstrap against the leader of the current group."""

from __future__ import annotations

import numpy as np

from deepnetsbench.leaderboard.ranking import (
    order_and_rank,
    paired_diff_ci,
    per_arch_top1,
    significance_ranks,
    significantly_worse,
)
from deepnetsbench.results import Record, aggregate


def _scores(values) -> dict[int, float]:
    return {i: float(v) for i, v in enumerate(values)}


N = 60
BASE = np.random.default_rng(0).uniform(20, 80, N)  # architectures differ a lot
ALT = np.where(np.arange(N) % 2 == 0, 1.0, -1.0)


def test_identical_methods_share_a_rank():
    a = _scores(BASE)
    assert significance_ranks([a, dict(a), dict(a)], n_boot=2000) == [1, 1, 1]


def test_pairing_detects_a_small_consistent_gap():
    a, b = _scores(BASE), _scores(BASE - 0.5)
    mean, lo, hi = paired_diff_ci(a, b, n_boot=2000)
    assert abs(mean - 0.5) < 1e-9 and lo > 0 and hi < 0.5 + 1e-9
    assert significantly_worse(a, b, n_boot=2000)
    # unpaired, the 0.5 gap would vanish in the spread of architectures (se ~ 2)
    assert BASE.std(ddof=1) / np.sqrt(N) > 1.5


def test_noisy_gap_is_not_significant():
    a, b = _scores(BASE), _scores(BASE - 0.5 - 6 * ALT)
    assert not significantly_worse(a, b, n_boot=2000)


def test_new_rank_only_against_the_group_leader():
    # B: not significantly below A. C: significantly below A but not below B.
    a = _scores(BASE)
    b = _scores(BASE - (0.5 + 6 * ALT))
    c = _scores(BASE - (1.5 + 0.5 * ALT))
    assert not significantly_worse(a, b, n_boot=2000)
    assert significantly_worse(a, c, n_boot=2000)
    assert not significantly_worse(b, c, n_boot=2000)
    assert significance_ranks([a, b, c], n_boot=2000) == [1, 1, 2]
    # and a fourth method far below C starts group 3 (led by C, not A)
    d = _scores(BASE - 30)
    assert significance_ranks([a, b, c, d], n_boot=2000) == [1, 1, 2, 3]


def test_failures_count_as_zero_in_pairs():
    recs = [Record(index=0, name="a", status="ok", top1=50, top5=60),
            Record(index=1, name="b", status="failed", error="oom")]

    class R:  # minimal stand-in with the attribute per_arch_top1 reads
        records = recs

    assert per_arch_top1(R) == {0: 50.0, 1: 0.0}


def test_order_and_rank_sorts_by_mean_then_tiebreak(make):
    r1, r2, r3 = make("a", seed=1, base_top1=40), make("b", seed=2, base_top1=70), make("c", seed=1, base_top1=40)
    out = order_and_rank([r1, r2, r3], tiebreak=["2025-02", "2025-01", "2025-01"], n_boot=500)
    assert [pos for pos, _ in out] == [1, 2, 0]  # b best; a and c equal -> earlier date first
    assert [rank for _, rank in out] == [1, 2, 2]


def test_ranking_is_deterministic(make):
    rs = [make(f"m{i}", seed=i, n=30, base_top1=50 + i * 0.3) for i in range(4)]
    assert order_and_rank(rs) == order_and_rank(rs)
    assert aggregate(rs[0].records) == aggregate(rs[0].records)
