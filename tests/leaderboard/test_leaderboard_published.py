"""Published entries (the paper's per-architecture figures) and runs on the ppuda release:
import from a small file in the official layout, validation, ranking on one board."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest
from click.testing import CliRunner
from example_releases import DATA_SHA, register_examples

from deepnetsbench.cli import main
from deepnetsbench.errors import BenchError
from deepnetsbench.leaderboard.board import build_tables
from deepnetsbench.leaderboard.entries import Entry, load_entries, submit, validate
from deepnetsbench.leaderboard.published import SPLITS, import_published
from deepnetsbench.leaderboard.render import checked_entries
from deepnetsbench.releases import ENV_RELEASES, names_sha256, register_split
from deepnetsbench.results import Results, aggregate, example_results, save_results

EVAL_MD5 = "1" * 32
SIZES = {"val": 3, "test": 6, "wide": 2, "deep": 2, "dense": 2, "bnfree": 2, "predefined": 2}
KEYS = ("ghn2_test_acc", "ghn1_test_acc", "mlp_test_acc", "test_acc")


def _official_rows(split: str, n: int) -> dict:
    """Records shaped like data/results_cifar10.json (extra keys on val/test as there)."""
    rows = {}
    for i in range(n):
        row = {"test_acc": 80.0 + i, "params": 1_000_000 + 1000 * i + len(split), "time": 5.0,
               "ghn1_test_acc": 40.0 + i, "ghn2_test_acc": 60.0 + 2 * i + 0.25,
               "mlp_test_acc": 30.0 + i}
        if split in ("val", "test"):
            row.update(val_acc=81.0, val_acc_noise=50.0, test_acc_noise=49.0, converge_time=0.5)
        rows[str(i)] = row
    return rows


@pytest.fixture
def official(tmp_path, monkeypatch):
    """(results file in the official layout, releases file registering it and its counts)."""
    content = {s: _official_rows(s, n) for s, n in SIZES.items()}
    results = tmp_path / "results_cifar10.json"
    results.write_text(json.dumps(content))
    counts = {s: [r["params"] for r in rows.values()] for s, rows in content.items()}
    params = tmp_path / "params.json"
    params.write_text(json.dumps({"params": counts}))
    releases = register_examples(tmp_path / "releases.json")
    data = json.loads(releases.read_text())
    data["ppuda"] = {
        "url": "https://example.org/", "files": {"deepnets1m_eval.hdf5": EVAL_MD5},
        "published_params": {"file": str(params), "sha256": _sha(params), "source": "test"},
        "published_results": {"file": "data/results_cifar10.json", "sha256": _sha(results),
                              "source": "test official file", "date": "2021-10-21"}}
    releases.write_text(json.dumps(data))
    monkeypatch.setenv(ENV_RELEASES, str(releases))
    return results, releases, content


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _user_run(content: dict, split: str = "test", method: str = "mine", top1: float = 50.0,
              **extra) -> Results:
    """A user's run on the ppuda release, as the evaluator records it."""
    n = len(content[split])
    res = example_results(method, n=n, split=split, split_sha256="e" * 64,
                          dataset_sha256=DATA_SHA, base_top1=top1)
    data = res.model_dump(mode="json")
    data["split"]["generator_version"] = "ppuda"
    data["protocol"]["extra"].update({"release": "ppuda",
                                      "source_md5": {"deepnets1m_eval.hdf5": EVAL_MD5}}, **extra)
    for i, rec in enumerate(data["records"]):
        rec["num_params"] = content[split][str(i)]["params"]
        if split == "predefined":
            rec["name"] = ["resnet50", "deepnets_vit"][i]
    fresh = Results.model_validate(data)
    data["aggregates"] = aggregate(fresh.records).model_dump(mode="json")
    return Results.model_validate(data)


def test_import_writes_one_published_entry_per_method_and_split(official, tmp_path):
    path, releases, content = official
    board = tmp_path / "board"
    written, removed = import_published(path, board, releases)
    assert len(written) == len(SPLITS) * 4 and not removed
    entries = load_entries(board)
    assert {e.results.split.name for _, e in entries} == set(SPLITS)  # no val
    for _, e in entries:
        assert e.status == "published" and not e.reproduced
        r = e.results
        assert r.split.generator_version == "ppuda" and r.method.url.startswith("https://arxiv")
        key = r.protocol.extra["published"]["field"]
        rows = content[r.split.name]
        assert [x.top1 for x in r.records] == [rows[str(i)][key] for i in range(len(rows))]
        assert all(x.top5 is None and x.predict_time_s is None for x in r.records)
        assert [x.num_params for x in r.records] == [rows[str(i)]["params"]
                                                     for i in range(len(rows))]
        assert r.aggregates.top5.mean is None and r.aggregates.predict_time_s.mean is None
        assert r.aggregates.top1.mean == pytest.approx(
            sum(rows[str(i)][key] for i in range(len(rows))) / len(rows))
    names = {e.results.records[0].name for _, e in entries if e.results.split.name == "predefined"}
    assert names == {"resnet50"}
    assert len(checked_entries(board, releases)) == len(written)  # render re-validates them
    before = {p.name: p.read_bytes() for p in written}
    again, removed = import_published(path, board, releases)  # regeneration: byte-identical
    assert {p.name: p.read_bytes() for p in again} == before and not removed


def test_import_refuses_another_file_and_foreign_counts(official, tmp_path):
    path, releases, content = official
    changed = tmp_path / "changed.json"
    content["test"]["0"]["ghn2_test_acc"] = 99.0
    changed.write_text(json.dumps(content))
    with pytest.raises(BenchError, match="not the registered official results file"):
        import_published(changed, tmp_path / "board", releases)
    # registered, but the figures belong to other architectures than the published counts
    content["test"]["0"]["params"] += 1
    changed.write_text(json.dumps(content))
    data = json.loads(releases.read_text())
    data["ppuda"]["published_results"]["sha256"] = _sha(changed)
    releases.write_text(json.dumps(data))
    with pytest.raises(BenchError, match=r"test\[0\] has .* parameters, the published counts"):
        import_published(changed, tmp_path / "board", releases)
    assert not (tmp_path / "board" / "entries").exists() or not list(
        (tmp_path / "board" / "entries").glob("*.json"))


def test_a_ppuda_run_is_ranked_against_the_published_figures(official, tmp_path):
    path, releases, content = official
    board = tmp_path / "board"
    import_published(path, board, releases)
    mine = save_results(_user_run(content, top1=70.0), tmp_path / "mine.json")
    validate(mine, board, releases)
    submit(mine, board, releases=releases)
    tables = [t for t in build_tables(checked_entries(board, releases)) if t.split == "test"]
    assert len(tables) == 1  # the published entries and the run share one board
    rows = {r.method: r for r in tables[0].rows}
    assert set(rows) == {"GHN-2", "GHN-1", "MLP hypernetwork", "SGD 50 epochs", "mine"}
    assert rows["SGD 50 epochs"].rank == 1 and rows["mine"].top5.mean is not None
    entries = {e.results.method.name: e for _, e in load_entries(board)
               if e.results.split.name == "test"}
    assert entries["mine"].status == "submitted" and entries["GHN-2"].status == "published"


def test_ppuda_runs_must_be_the_published_architectures(official, tmp_path):
    path, releases, content = official
    good = _user_run(content)
    cases = {
        "parameters, the published one": lambda d: d["records"][1].update(num_params=5),
        "must record the md5": lambda d: d["protocol"]["extra"].pop("source_md5"),
        "converted from a deepnets1m_eval.hdf5 with md5": lambda d: d["protocol"]["extra"][
            "source_md5"].update({"deepnets1m_eval.hdf5": "2" * 32}),
        "published figures": lambda d: d["protocol"]["extra"].update(published={"x": 1}),
    }
    for message, mutate in cases.items():
        data = good.model_dump(mode="json")
        mutate(data)
        bad = tmp_path / "bad.json"
        bad.write_text(json.dumps(data))
        with pytest.raises(BenchError, match=message):
            validate(bad, None, releases)
    val = save_results(_user_run(content, split="val"), tmp_path / "val.json")
    with pytest.raises(BenchError, match="publishes no 'val' figures"):
        validate(val, None, releases)
    predefined = save_results(_user_run(content, split="predefined"), tmp_path / "pre.json")
    validate(predefined, None, releases)  # built from code: no source file to check
    # once maintainers register the converted file, its sha256 must match
    n = SIZES["test"]
    register_split("test", "ppuda", {"sha256": "f" * 64, "num_items": n,
                                     "names_sha256": names_sha256(f"test/{i:05d}" for i in range(n))},
                   releases)
    with pytest.raises(BenchError, match="is not the registered ppuda file"):
        validate(save_results(good, tmp_path / "good.json"), None, releases)


def test_published_entries_are_never_reproduced_and_stay_published(official, tmp_path):
    path, releases, _ = official
    board = tmp_path / "board"
    written, _ = import_published(path, board, releases)
    data = json.loads(written[0].read_text())
    data["reproduced"] = True
    with pytest.raises(ValueError, match="not reproduced until someone re-runs it"):
        Entry.model_validate(data)
    data.update(reproduced=False, status="submitted")  # relabelled as a run: refused
    written[0].write_text(json.dumps(data))
    with pytest.raises(BenchError, match="published figures"):
        checked_entries(board, releases)


def test_cli_import_published(official, tmp_path):
    path, releases, _ = official
    board = tmp_path / "board"
    res = CliRunner().invoke(main, ["leaderboard", "import-published", str(path), "--dir",
                                    str(board), "--releases", str(releases), "--no-render"])
    assert res.exit_code == 0, res.output
    assert f"wrote {len(SPLITS) * 4} published entries" in res.output
    res = CliRunner().invoke(main, ["leaderboard", "import-published", str(tmp_path / "no.json"),
                                    "--dir", str(board), "--releases", str(releases)])
    assert res.exit_code == 2 and "does not exist" in res.output and "Traceback" not in res.output


# ----------------------------------------------------------------------------- the board's


BOARD = Path(__file__).resolve().parents[2] / "leaderboard"
OFFICIAL_GIT = Path("/work/.mirror/facebookresearch+ppuda/repo")
#: Mean top-1 over architectures from the official results file (spec §9).
PAPER_MEANS = {("test", "GHN-2"): 66.88, ("wide", "GHN-2"): 63.97, ("deep", "GHN-2"): 60.54,
               ("dense", "GHN-2"): 65.84, ("bnfree", "GHN-2"): 36.80, ("test", "GHN-1"): 51.35,
               ("test", "MLP hypernetwork"): 42.23, ("test", "SGD 50 epochs"): 88.53}


def _board_published():
    from deepnetsbench.leaderboard.entries import check_entry

    out = {}
    for path, e in load_entries(BOARD):
        if e.status == "published":
            check_entry(path, e)  # against the packaged releases
            out[(e.results.split.name, e.results.method.name)] = (path, e)
    return out


def test_the_boards_published_entries_hold_the_papers_figures(monkeypatch):
    monkeypatch.delenv(ENV_RELEASES, raising=False)
    entries = _board_published()
    assert len(entries) == len(SPLITS) * 4
    for key, mean in PAPER_MEANS.items():
        assert round(entries[key][1].results.aggregates.top1.mean, 2) == mean, key
    resnet, vit = entries[("predefined", "GHN-2")][1].results.records
    assert (resnet.name, resnet.top1, vit.name, vit.top1) == ("resnet50", 58.62,
                                                             "deepnets_vit", 11.41)
    # the Training column says what the paper spent, not "budget not stated"
    budgets = {m: e.results.method.training_budget for (s, m), (_, e) in entries.items()
               if s == "test"}
    assert budgets["GHN-2"].startswith("300 epochs, ~4.9 days")
    assert budgets["SGD 50 epochs"].startswith("50 epochs") and all(budgets.values())


@pytest.mark.skipif(not OFFICIAL_GIT.exists(), reason="needs the official repository's mirror")
def test_the_boards_published_entries_regenerate_from_the_official_file(monkeypatch, tmp_path):
    import subprocess

    from deepnetsbench.leaderboard.published import published_entries

    monkeypatch.delenv(ENV_RELEASES, raising=False)
    official = tmp_path / "results_cifar10.json"
    official.write_bytes(subprocess.run(["git", "-C", str(OFFICIAL_GIT), "show",
                                         "HEAD:data/results_cifar10.json"],
                                        capture_output=True, check=True).stdout)
    fresh = {name: json.dumps(e.model_dump(mode="json"), indent=2) + "\n"
             for name, e in published_entries(official)}
    have = {p.name: p.read_text() for p, _ in _board_published().values()}
    assert fresh == have
