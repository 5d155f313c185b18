"""Results schema: round trip, validation messages, aggregates, CI determinism, DataFrame."""

from __future__ import annotations

import json
import math
import os
from pathlib import Path

import numpy as np
import pytest

from deepnetsbench.errors import BenchError
from deepnetsbench.results import (
    DATAFRAME_COLUMNS,
    SCHEMA_VERSION,
    Record,
    SpeedupRecord,
    aggregate,
    aggregate_mismatch,
    environment_info,
    example_results,
    json_schema,
    load_results,
    results_to_dataframe,
    save_results,
)

DOCS = Path(__file__).resolve().parents[1] / "docs"


def _ok(i: int, top1: float, top5: float | None = None, t: float | None = 0.01, **kw) -> Record:
    return Record(index=i, name=f"a{i}", status="ok", top1=top1,
                  top5=top1 if top5 is None else top5, predict_time_s=t, **kw)


def _failed(i: int) -> Record:
    return Record(index=i, name=f"a{i}", status="failed", error="boom")


def test_round_trip(tmp_path):
    res = example_results(failed=[1], speedup=True, finetune=True)
    path = save_results(res, tmp_path / "r.json")
    back = load_results(path)
    assert back == res
    assert back.schema_version == SCHEMA_VERSION
    text = path.read_text()
    assert '"started_at": "2025-01-01T00:00:00Z"' in text  # ISO, UTC
    assert not list(tmp_path.glob(".*.tmp"))  # atomic write leaves no temp file
    umask = os.umask(0)
    os.umask(umask)
    assert path.stat().st_mode & 0o777 == 0o666 & ~umask  # not mkstemp's 0600


def test_naive_and_offset_times_become_utc():
    data = example_results().model_dump(mode="json")
    data["started_at"] = "2025-01-01T02:00:00+02:00"
    data["finished_at"] = "2025-01-01T03:00:00"
    from deepnetsbench.results import parse_results

    res = parse_results(data)
    assert res.started_at.isoformat() == "2025-01-01T00:00:00+00:00"
    assert res.finished_at.utcoffset().total_seconds() == 0


def test_validation_error_is_one_line_naming_file_and_field(tmp_path):
    data = example_results().model_dump(mode="json")
    data["records"][3]["top1"] = 140.0
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(data))
    with pytest.raises(BenchError) as err:
        load_results(path)
    msg = str(err.value)
    assert "\n" not in msg
    assert str(path) in msg and "records.3.top1" in msg


@pytest.mark.parametrize("mutate, field", [
    (lambda d: d.pop("suite"), "suite"),
    (lambda d: d.update(suite="imagenet-1m"), "suite"),
    (lambda d: d.update(schema_version="2.0"), "schema_version"),
    (lambda d: d["method"].update(hostname="me"), "method.hostname"),
    (lambda d: d["records"][0].update(status="ok", top1=None), "records.0"),
    (lambda d: d["records"][0].update(status="failed", error=None), "records.0"),
])
def test_validation_names_the_bad_field(tmp_path, mutate, field):
    data = example_results().model_dump(mode="json")
    mutate(data)
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(data))
    with pytest.raises(BenchError, match=f"field '{field}"):
        load_results(path)


def test_missing_and_non_json_files(tmp_path):
    with pytest.raises(BenchError, match="does not exist"):
        load_results(tmp_path / "nope.json")
    (tmp_path / "x.json").write_text("{not json")
    with pytest.raises(BenchError, match="is not JSON"):
        load_results(tmp_path / "x.json")


def test_aggregate_known_example():
    recs = [_ok(0, 80.0, 90.0, 0.1), _ok(1, 60.0, 70.0, 0.3), _failed(2), _ok(3, 40.0, 50.0, None)]
    agg = aggregate(recs, n_boot=2000, seed=0)
    assert (agg.n, agg.n_ok, agg.n_failed) == (4, 3, 1)
    # the failure counts as 0: mean(80, 60, 0, 40) = 45
    assert agg.top1.mean == pytest.approx(45.0)
    assert agg.top1.se == pytest.approx(np.std([80, 60, 0, 40], ddof=1) / 2)
    assert agg.top5.mean == pytest.approx((90 + 70 + 0 + 50) / 4)
    # time: ok records with a time only
    assert agg.predict_time_s.mean == pytest.approx(0.2)
    assert agg.top1.ci95_low <= agg.top1.mean <= agg.top1.ci95_high
    assert 0.0 <= agg.top1.ci95_low and agg.top1.ci95_high <= 80.0
    assert agg.speedup_gmean is None and agg.speedup_gmean_lower_bound is None
    assert agg.finetune_top1 is None


def test_bootstrap_matches_reference_computation():
    x = np.array([10.0, 20.0, 35.0, 50.0, 90.0])
    agg = aggregate([_ok(i, v) for i, v in enumerate(x)], n_boot=500, seed=7)
    rng = np.random.default_rng(7)
    means = x[rng.integers(0, len(x), size=(500, len(x)))].mean(axis=1)
    lo, hi = np.percentile(means, [2.5, 97.5])
    assert agg.top1.ci95_low == pytest.approx(lo) and agg.top1.ci95_high == pytest.approx(hi)


def test_ci_is_deterministic_and_seed_dependent():
    recs = example_results(n=30, seed=3).records
    a, b = aggregate(recs, n_boot=3000, seed=0), aggregate(recs, n_boot=3000, seed=0)
    assert a == b
    c = aggregate(recs, n_boot=3000, seed=1)
    assert c.top1.ci95_low != a.top1.ci95_low
    assert c.top1.mean == a.top1.mean


def test_speedup_gmean_and_lower_bound_flag():
    def sp(v, lb):
        return SpeedupRecord(trainer="sgd", target_top1=50, value=v, lower_bound=lb, budget="1e")

    recs = [_ok(0, 50, speedup=sp(2.0, False)), _ok(1, 50, speedup=sp(8.0, False)),
            _ok(2, 50, speedup=None), _failed(3)]
    agg = aggregate(recs, n_boot=10)
    assert agg.speedup_gmean == pytest.approx(4.0)
    assert agg.speedup_gmean_lower_bound is False
    recs[2] = _ok(2, 50, speedup=sp(1.0, True))
    agg = aggregate(recs, n_boot=10)
    assert agg.speedup_gmean == pytest.approx(math.exp((math.log(2) + math.log(8)) / 3))
    assert agg.speedup_gmean_lower_bound is True
    recs[0] = _ok(0, 50, speedup=sp(0.0, False))  # target met before any training
    assert aggregate(recs, n_boot=10).speedup_gmean == 0.0


def test_finetune_counts_failures_as_zero():
    recs = [_ok(0, 50, finetune={"top1": 70.0}), _ok(1, 50, finetune={"top1": 90.0}),
            _ok(2, 50), _failed(3)]
    agg = aggregate(recs, n_boot=10)
    assert agg.finetune_top1.mean == pytest.approx((70 + 90 + 0) / 3)


def test_single_and_empty_records():
    agg = aggregate([_ok(0, 42.0)], n_boot=10)
    assert agg.top1.mean == agg.top1.ci95_low == agg.top1.ci95_high == 42.0
    assert agg.top1.se is None
    empty = aggregate([], n_boot=10)
    assert empty.n == 0 and empty.top1.mean is None


def test_aggregate_mismatch_detects_edits():
    res = example_results(n=10)
    assert aggregate_mismatch(res) is None
    res.aggregates.top1.mean += 1e-3
    assert "aggregates.top1.mean" in aggregate_mismatch(res)
    res = example_results(n=10)
    res.records[0].top1 = 99.0
    assert aggregate_mismatch(res) is not None


def test_dataframe_is_one_call(tmp_path):
    a = save_results(example_results("m1", n=5), tmp_path / "a.json")
    b = example_results("m2", n=3, split="wide", failed=[0])
    df = results_to_dataframe([a, b])
    assert list(df.columns) == DATAFRAME_COLUMNS
    assert len(df) == 8
    assert set(df["method"]) == {"m1", "m2"}
    assert df.loc[df.method == "m2", "split"].unique().tolist() == ["wide"]
    assert df.loc[df.method == "m1", "source"].iloc[0] == str(a)
    assert results_to_dataframe(a).shape[0] == 5  # a single path works too
    assert df.groupby("method")["top1"].mean().notna().all()


def test_environment_info_has_no_host_name():
    env = environment_info("cpu")
    assert env.device == "cpu" and env.cpu and env.torch
    assert set(env.model_dump()) == {"deepnets_bench", "python", "torch", "torchvision", "cuda",
                                     "device", "gpu", "cpu", "platform"}


def test_docs_schema_is_current():
    path = DOCS / "results.schema.json"
    assert json.loads(path.read_text()) == json_schema(), (
        "regenerate: python -c 'from deepnetsbench.results import write_json_schema; "
        "write_json_schema(\"docs/results.schema.json\")'")
