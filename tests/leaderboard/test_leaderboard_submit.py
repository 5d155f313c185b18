"""Submission: what gets in, every refusal, and racing submissions."""

from __future__ import annotations

import json
import multiprocessing as mp
from datetime import UTC, datetime

import pytest

from deepnetsbench.errors import BenchError
from deepnetsbench.leaderboard.entries import (
    Entry,
    content_sha256,
    load_entries,
    submit,
    validate,
)


def test_submit_writes_one_valid_entry(tmp_path, releases, make, write):
    res = make("GHN 2 (ours)")
    src = write(tmp_path / "r.json", res)
    when = datetime(2025, 3, 1, tzinfo=UTC)
    path = submit(src, tmp_path / "lb", reproduced=True, now=when)
    assert path.parent == tmp_path / "lb" / "entries"
    sha = content_sha256(res)
    assert path.name == f"deepnets1m__test__cifar10__ghn-2-ours__{sha[:12]}.json"
    entry = Entry.model_validate_json(path.read_text())
    assert entry.reproduced and entry.submitted_at == when
    assert entry.content_sha256 == sha and entry.results == res
    assert [e for _, e in load_entries(tmp_path / "lb")] == [entry]
    assert not list((tmp_path / "lb" / "entries").glob(".*"))  # no temp file left


def test_validate_writes_nothing(tmp_path, releases, make, write):
    src = write(tmp_path / "r.json", make())
    res = validate(src, tmp_path / "lb")
    assert res.method.name == "ghn"
    assert not (tmp_path / "lb" / "entries").exists()


def _data_refusals():
    """(id, mutation of the JSON dict, re-aggregate?, expected message part)."""
    def dup_index(d):
        d["records"][1]["index"] = 0

    def drop_last(d):
        d["records"].pop()

    def beyond(d):
        d["records"][-1]["index"] = 99

    return [
        ("split-hash", lambda d: d["split"].update(sha256="e" * 64), True, "not a released split"),
        ("split-version", lambda d: d["split"].update(generator_version="2"), True,
         "not a released split"),
        ("dataset-hash", lambda d: d["dataset"].update(content_sha256="f" * 64), True,
         "not a released dataset"),
        ("protocol-names", lambda d: d["protocol"].update(split="wide"), True,
         "protocol names split/dataset"),
        ("duplicate-index", dup_index, True, "more than once: 0"),
        ("missing", drop_last, True, "1 of 12 architectures missing (11)"),
        ("outside", beyond, True, "indices outside 0..11 (99)"),
        ("batch", lambda d: d["protocol"].update(batch_size=32), True, "batch_size is 32"),
        ("bn", lambda d: d["protocol"].update(bn_mode="running"), True, "bn_mode is 'running'"),
        ("images", lambda d: d["protocol"].update(eval_images=1000), True,
         "evaluated on 1000 images"),
        ("no-url", lambda d: d["method"].update(url=""), True, "no public code link"),
        ("bad-url", lambda d: d["method"].update(url="my laptop"), True, "no public code link"),
        ("edited-mean", lambda d: d["aggregates"]["top1"].update(
            mean=d["aggregates"]["top1"]["mean"] + 1e-3), False, "aggregates.top1.mean"),
        ("edited-record", lambda d: d["records"][0].update(top1=99.5), False,
         "do not match the records"),
        ("edited-ci", lambda d: d["aggregates"]["top5"].update(ci95_high=100.0), False,
         "aggregates.top5.ci95_high"),
        ("edited-count", lambda d: d["aggregates"].update(n_failed=1), False, "aggregates.n_failed"),
        ("n-boot", lambda d: d["aggregates"].update(n_boot=100), False, "n_boot=100"),
        ("schema", lambda d: d["records"][0].update(top1="high"), False, "records.0.top1"),
    ]


@pytest.mark.parametrize("name, mutate, reagg, message", _data_refusals(),
                         ids=[r[0] for r in _data_refusals()])
def test_refusals(tmp_path, releases, make, write, edit, name, mutate, reagg, message):
    src = write(tmp_path / "r.json", edit(make(), mutate, reaggregate=reagg))
    with pytest.raises(BenchError) as err:
        submit(src, tmp_path / "lb")
    assert message in str(err.value)
    assert err.value.fix  # every refusal says how to fix it
    assert "\n" not in str(err.value)
    assert not (tmp_path / "lb" / "entries").exists() or not list((tmp_path / "lb" / "entries").iterdir())
    with pytest.raises(BenchError):
        validate(src, tmp_path / "lb")


def test_tiny_hand_edit_within_tolerance_is_accepted(tmp_path, releases, make, write, edit):
    def nudge(d):
        d["aggregates"]["top1"]["mean"] += 1e-9

    src = write(tmp_path / "r.json", edit(make(), nudge, reaggregate=False))
    assert submit(src, tmp_path / "lb").exists()


def test_builtin_method_needs_no_url(tmp_path, releases, make, write, edit):
    def builtin(d):
        d["method"].update(url="", builtin=True)

    assert submit(write(tmp_path / "r.json", edit(make(), builtin)), tmp_path / "lb").exists()


def test_failed_records_are_accepted_and_counted(tmp_path, releases, make, write):
    res = make(failed=[2, 5])
    path = submit(write(tmp_path / "r.json", res), tmp_path / "lb")
    assert Entry.model_validate_json(path.read_text()).results.aggregates.n_failed == 2


def test_duplicate_content_refused(tmp_path, releases, make, write):
    src = write(tmp_path / "r.json", make())
    first = submit(src, tmp_path / "lb")
    with pytest.raises(BenchError, match=f"same results are already entry {first.name}"):
        submit(src, tmp_path / "lb")
    with pytest.raises(BenchError, match="duplicate"):
        validate(src, tmp_path / "lb")


def test_duplicate_method_version_refused_new_version_accepted(tmp_path, releases, make, write, edit):
    submit(write(tmp_path / "a.json", make(seed=0)), tmp_path / "lb")
    with pytest.raises(BenchError, match="version '1.0' already has an entry") as err:
        submit(write(tmp_path / "b.json", make(seed=1)), tmp_path / "lb")
    assert "method.version" in err.value.fix

    def bump(d):
        d["method"]["version"] = "1.1"

    submit(write(tmp_path / "c.json", edit(make(seed=1), bump)), tmp_path / "lb")
    # same method and version on another split is a different table: fine
    submit(write(tmp_path / "d.json", make(seed=2, split="wide")), tmp_path / "lb")
    assert len(load_entries(tmp_path / "lb")) == 3


def test_corrupt_entry_is_reported(tmp_path, releases, make, write):
    path = submit(write(tmp_path / "r.json", make()), tmp_path / "lb")
    data = json.loads(path.read_text())
    del data["results"]["suite"]
    path.write_text(json.dumps(data))
    with pytest.raises(BenchError, match="field 'results.suite'"):
        load_entries(tmp_path / "lb")


# ----------------------------------------------------------------------------- races


def _submit_worker(src, board, releases, barrier, queue, render):
    barrier.wait()
    try:
        path = submit(src, board, releases=releases, render=render)
        queue.put(("ok", str(path)))
    except BenchError as err:
        queue.put(("refused", str(err)))


def _race(sources, board, releases, render=False):
    ctx = mp.get_context("fork")
    barrier, queue = ctx.Barrier(len(sources)), ctx.Queue()
    procs = [ctx.Process(target=_submit_worker, args=(s, board, releases, barrier, queue, render))
             for s in sources]
    for p in procs:
        p.start()
    outcomes = [queue.get(timeout=120) for _ in procs]
    for p in procs:
        p.join(timeout=60)
        assert p.exitcode == 0
    return outcomes


def test_two_racing_submissions_of_the_same_run(tmp_path, releases, make, write):
    src = write(tmp_path / "r.json", make())
    outcomes = _race([src, src], tmp_path / "lb", releases)
    assert sorted(o[0] for o in outcomes) == ["ok", "refused"]
    assert "duplicate" in [o for o in outcomes if o[0] == "refused"][0][1]
    assert len(load_entries(tmp_path / "lb")) == 1


def test_racing_different_submissions_all_land(tmp_path, releases, make, write):
    n = 6
    srcs = [write(tmp_path / f"r{i}.json", make(f"method-{i}", seed=i)) for i in range(n)]
    outcomes = _race(srcs, tmp_path / "lb", releases, render=True)
    assert [o[0] for o in outcomes] == ["ok"] * n
    entries = load_entries(tmp_path / "lb")  # every file parses: none torn
    assert sorted(e.results.method.name for _, e in entries) == [f"method-{i}" for i in range(n)]
    # rendering happens under the lock, so the last README saw every entry
    readme = (tmp_path / "lb" / "README.md").read_text()
    assert all(f"method-{i}" in readme for i in range(n))
    assert not list((tmp_path / "lb" / "entries").glob(".*.tmp"))
