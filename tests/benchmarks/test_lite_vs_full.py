"""benchmarks/lite_vs_full.py: the agreement figures of paired lite and full scores."""

from __future__ import annotations

import numpy as np
import pytest

from deepnetsbench.results import example_results


def test_compare_figures(lvf):
    full = np.array([10.0, 20.0, 30.0, 40.0])
    c = lvf.compare(full, full + np.array([1.0, -1.0, 1.0, 3.0]))
    assert c["n"] == 4 and c["mean_diff"] == pytest.approx(1.0)
    assert c["mean_abs_diff"] == pytest.approx(1.5)
    assert c["sd_diff"] == pytest.approx(np.std([1, -1, 1, 3], ddof=1))
    assert c["spearman"] == pytest.approx(1.0) and 0.98 < c["pearson"] < 1.0
    assert np.isnan(lvf.compare(np.ones(4), full)["pearson"])  # a constant column


def test_pairs_only_networks_both_runs_scored(lvf):
    full = example_results("kaiming", n=6, failed=[2])
    lite = example_results("kaiming", n=6, seed=1)
    lite.records = [r for r in lite.records if r.index in (0, 2, 4)]
    idx, a, b = lvf.paired_top1(full, lite)
    assert idx == [0, 4]
    assert a.tolist() == [full.records[0].top1, full.records[4].top1]
    assert b.tolist() == [lite.records[0].top1, lite.records[2].top1]
    other = example_results("ghn", n=6)
    with pytest.raises(SystemExit, match="not the same method"):
        lvf.paired_top1(full, other)
