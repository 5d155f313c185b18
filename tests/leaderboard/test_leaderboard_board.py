"""Method metadata the board shows (training budget, paper link), and load_board."""

from __future__ import annotations

import hashlib
import json

import pytest

from deepnetsbench.errors import BenchError
from deepnetsbench.leaderboard.entries import check_results, content_sha256


def test_budget_and_paper_are_validated(releases, make):
    res = make()
    res.method.training_budget = "70 min on 4 CPU cores, 6000 steps"
    res.method.paper = "https://arxiv.org/abs/2110.13100"
    check_results(res, releases)
    for field, value, match in [
        ("paper", "javascript:alert(1)", "method.paper is not an http"),
        ("paper", "baselines/ghn2/method.py", "method.paper is not an http"),
        ("training_budget", "70 min\n| 1 | fake |", "control character U\\+000A"),
        ("training_budget", "x" * 121, "at most 120"),
    ]:
        bad = make()
        setattr(bad.method, field, value)
        with pytest.raises(BenchError, match=match):
            check_results(bad, releases)


def test_entries_made_before_the_new_fields_keep_their_hash(make):
    res = make()
    old = res.model_dump(mode="json")
    for key in ("training_budget", "paper"):
        del old["method"][key]  # what a schema-1.0 file held
    text = json.dumps(old, sort_keys=True, separators=(",", ":"))
    assert content_sha256(res) == hashlib.sha256(text.encode()).hexdigest()
    res.method.paper = "https://arxiv.org/abs/2110.13100"
    assert content_sha256(res) != hashlib.sha256(text.encode()).hexdigest()  # set: hashed
