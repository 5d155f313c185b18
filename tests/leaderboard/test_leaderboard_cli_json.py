"""``leaderboard show --json`` and ``leaderboard validate --json``: the documented shapes
(docs/cli.md), ranks in order, refusals as JSON with exit status 2."""

from __future__ import annotations

import json

from click.testing import CliRunner

from deepnetsbench.cli import main

ROW_KEYS = {"rank", "method", "version", "status", "url", "training_budget", "trained_on",
            "method_params", "top1", "top5", "predict_time_s", "speedup",
            "speedup_lower_bound", "finetune_top1", "n", "n_failed", "device", "gpu", "date",
            "entry"}
TABLE_KEYS = {"id", "title", "suite", "release", "split", "dataset", "target", "split_sha256",
              "dataset_sha256", "num_items", "rows"}
STAT_KEYS = {"mean", "se", "ci95_low", "ci95_high"}
VALIDATE_KEYS = {"kind", "version", "ok", "file", "duplicates_checked", "method", "suite",
                 "split", "release", "split_sha256", "dataset", "dataset_sha256", "n", "n_ok",
                 "n_failed", "top1", "top5", "predict_time_s"}


def test_validate_json_ok_and_refused(tmp_path, releases, make, write):
    runner = CliRunner()
    lb = str(tmp_path / "lb")
    res = make("json-method")
    src = str(write(tmp_path / "r.json", res))
    out = runner.invoke(main, ["leaderboard", "validate", src, "--dir", lb, "--json"])
    assert out.exit_code == 0, out.output
    data = json.loads(out.output)
    assert set(data) == VALIDATE_KEYS and data["ok"] is True and data["duplicates_checked"]
    assert data["method"] == {"name": "json-method", "version": res.method.version}
    assert data["n"] == 12 and set(data["top1"]) == STAT_KEYS
    assert data["top1"]["mean"] == res.aggregates.top1.mean
    assert runner.invoke(main, ["leaderboard", "submit", src, "--dir", lb]).exit_code == 0
    out = runner.invoke(main, ["leaderboard", "validate", src, "--dir", lb, "--json"])
    assert out.exit_code == 2
    data = json.loads(out.output)
    assert data["ok"] is False and "duplicate" in data["error"] and data["fix"]
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    out = runner.invoke(main, ["leaderboard", "validate", str(bad), "--dir", lb, "--json"])
    assert out.exit_code == 2 and json.loads(out.output)["ok"] is False


def test_show_json_tables_rows_and_filters(tmp_path, releases, make, write):
    runner = CliRunner()
    lb = str(tmp_path / "lb")
    for i, (name, split) in enumerate([("low", "test"), ("high", "test"), ("w", "wide")]):
        res = make(name, seed=i, split=split, base_top1=30.0 if name == "low" else 60.0)
        src = str(write(tmp_path / f"{name}.json", res))
        assert runner.invoke(main, ["leaderboard", "submit", src, "--dir", lb,
                                    "--no-render"]).exit_code == 0
    out = runner.invoke(main, ["leaderboard", "show", "--dir", lb, "--json"])
    assert out.exit_code == 0, out.output
    data = json.loads(out.output)
    assert data["kind"] == "deepnets-bench-leaderboard" and data["version"] == 1
    assert [t["split"] for t in data["tables"]] == ["test", "wide"]
    test = data["tables"][0]
    assert set(test) == TABLE_KEYS and test["num_items"] == 12
    assert [r["method"] for r in test["rows"]] == ["high", "low"]
    assert [r["rank"] for r in test["rows"]] == sorted(r["rank"] for r in test["rows"])
    for row in test["rows"]:
        assert set(row) == ROW_KEYS and set(row["top1"]) == STAT_KEYS
        assert row["status"] in ("self-reported", "reproduced", "published")
    out = runner.invoke(main, ["leaderboard", "show", "--dir", lb, "--json", "--split", "wide"])
    assert [t["split"] for t in json.loads(out.output)["tables"]] == ["wide"]
