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


@pytest.fixture
def board(tmp_path, releases, make, write):
    from datetime import UTC, datetime

    from deepnetsbench.leaderboard.entries import submit

    lb = tmp_path / "lb"
    runs = [(make("GHN-2", seed=0, base_top1=60), True), (make("Random", seed=1, base_top1=10,
                                                              failed=[2]), False),
            (make("GHN-2", seed=2, base_top1=40, split="wide"), False)]
    runs[1][0].method.training_budget = "no training"
    for i, (res, rep) in enumerate(runs):
        submit(write(tmp_path / f"r{i}.json", res), lb, reproduced=rep,
               now=datetime(2025, 3, 1 + i, tzinfo=UTC))
    return lb


def test_load_board_one_row_per_entry(board):
    from deepnetsbench.leaderboard import BOARD_COLUMNS, load_board

    df = load_board(board)
    assert list(df.columns) == BOARD_COLUMNS and len(df) == 3
    assert df[["split", "method", "status", "rank"]].values.tolist() == [
        ["test", "GHN-2", "reproduced", 1], ["test", "Random", "self-reported", 2],
        ["wide", "GHN-2", "self-reported", 1]]
    assert set(df["suite"]) == {"deepnets1m"} and set(df["release"]) == {"1"}
    row = df.iloc[1]
    assert row.n == 12 and row.n_failed == 1 and row.training_budget == "no training"
    assert row.top1_ci95_low < row.top1 < row.top1_ci95_high and row.top1_se > 0
    assert str(df["date"].dtype).startswith("datetime64") and row.entry.endswith(".json")
    means = df.groupby("split")["top1"].max()
    assert means["test"] > means["wide"]


def test_load_board_revalidates(board):
    from deepnetsbench.leaderboard import load_board

    path = sorted((board / "entries").glob("*.json"))[0]
    entry = json.loads(path.read_text())
    entry["results"]["notes"] = "edited"
    path.write_text(json.dumps(entry))
    with pytest.raises(BenchError, match="was edited"):
        load_board(board)
    assert len(load_board(board, check=False)) == 3  # read as they are when asked


def test_results_to_dataframe_reads_entries(board, tmp_path):
    from deepnetsbench.leaderboard.entries import load_entries
    from deepnetsbench.results import DATAFRAME_COLUMNS, results_to_dataframe

    paths = sorted((board / "entries").glob("*.json"))
    df = results_to_dataframe(paths)
    assert list(df.columns) == DATAFRAME_COLUMNS and len(df) == 12 * 3
    assert set(df["source"]) == {str(p) for p in paths} and set(df["release"]) == {"1"}
    runs = results_to_dataframe(sorted(tmp_path.glob("r[0-9].json")))  # the results files
    key = ["split", "method", "index"]
    pd_cols = ["top1", "top5", "status"]
    a = df.sort_values(key)[key + pd_cols].reset_index(drop=True)
    b = runs.sort_values(key)[key + pd_cols].reset_index(drop=True)
    assert a.equals(b)
    entries = [e for _, e in load_entries(board)]
    assert len(results_to_dataframe(entries)) == 36 and len(results_to_dataframe(entries[0])) == 12
    assert len(results_to_dataframe(paths[0])) == 12  # one path
    bad = tmp_path / "bad.json"
    entry = json.loads(paths[0].read_text())
    entry["results"]["records"] = "nope"
    bad.write_text(json.dumps(entry))
    with pytest.raises(BenchError, match="leaderboard entry .* is invalid"):
        results_to_dataframe(bad)


def test_hostile_budget_and_paper_are_escaped(tmp_path, releases, make, write):
    import re

    from deepnetsbench.leaderboard.entries import submit
    from deepnetsbench.leaderboard.render import render

    res = make("m")
    res.method.training_budget = "</script><script>alert(1)</script> | [x](y) =cmd"
    res.method.paper = "https://example.org/a(b)<c"[:-2]  # parentheses are URL characters
    submit(write(tmp_path / "r.json", res), tmp_path / "lb")
    render(tmp_path / "lb")
    md = (tmp_path / "lb" / "README.md").read_text()
    assert "<script>" not in md and "\\| \\[x\\]\\(y\\)" in md
    assert "[paper](https://example.org/a%28b%29)" in md  # cannot end the link early
    html = (tmp_path / "lb" / "site" / "index.html").read_text()
    assert "<script>alert(1)" not in html and html.count("</script>") == 2
    blob = re.search(r'id="board-data">(.*?)</script>', html, re.S).group(1)
    assert json.loads(blob)["tables"][0]["rows"][0]["training_budget"].startswith("</script>")
