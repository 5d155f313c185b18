"""Attacks on the leaderboard's inputs (docs/submitting.md, "Threat model"): every one is a
one-line refusal, and nothing hostile reaches the README or the page."""

from __future__ import annotations

import json
import math

import pytest
from click.testing import CliRunner

from deepnetsbench.cli import main
from deepnetsbench.errors import BenchError
from deepnetsbench.leaderboard.entries import submit, validate
from deepnetsbench.leaderboard.render import render
from deepnetsbench.leaderboard.text import md_escape, md_url
from deepnetsbench.results import MAX_RESULTS_BYTES, Record, SpeedupRecord, load_results


def _refused(src, board, match: str) -> str:
    with pytest.raises(BenchError, match=match) as err:
        validate(src, board)
    text = str(err.value)
    assert "\n" not in text and err.value.fix
    with pytest.raises(BenchError):
        submit(src, board)
    return text


def test_relabelled_partial_run_is_refused(tmp_path, releases, make, write, edit):
    """A 3-architecture, 128-image run with split.num_items and dataset.num_test edited."""
    lb = tmp_path / "lb"

    def partial(d):
        d["records"] = d["records"][:3]
        d["split"]["num_items"] = 3
        d["dataset"]["num_test"] = 128
        d["protocol"]["eval_images"] = 128

    _refused(write(tmp_path / "a.json", edit(make(), partial)), lb,
             "split.num_items is 3, the release has 12")

    def relabel_images(d):
        d["dataset"]["num_test"] = 128
        d["protocol"]["eval_images"] = 128

    _refused(write(tmp_path / "b.json", edit(make(), relabel_images)), lb,
             "dataset.num_test is 128, the release defines 10000")

    def renamed(d):  # the right count of records, but not the release's records
        for r in d["records"]:
            r["name"] = "test/99999"

    _refused(write(tmp_path / "c.json", edit(make(), renamed)), lb, "names are not those")

    def classes(d):
        d["protocol"]["num_classes"] = 100

    _refused(write(tmp_path / "d.json", edit(make(), classes)), lb,
             "protocol.num_classes is 100, the release defines 10")


def test_non_finite_numbers_are_refused(tmp_path, releases, make, write):
    data = make(speedup=True).model_dump(mode="json")
    text = json.dumps(data).replace('"value": ' + json.dumps(data["records"][0]["speedup"]["value"]),
                                    '"value": Infinity', 1)
    src = tmp_path / "inf.json"
    src.write_text(text)
    assert "Infinity" in text
    _refused(src, tmp_path / "lb", "not strict JSON")
    with pytest.raises(ValueError):
        SpeedupRecord(trainer="sgd", target_top1=50.0, value=math.inf)
    with pytest.raises(ValueError, match="non-finite"):
        Record(index=0, name="x", status="failed", error="e", extra={"a": [math.nan]})


def test_hostile_files_are_one_line_refusals(tmp_path, releases, make, write):
    lb = tmp_path / "lb"
    latin = tmp_path / "latin1.json"
    latin.write_bytes(json.dumps(make().model_dump(mode="json")).encode("utf-8")
                      .replace(b'"ghn"', b'"gh\xe9n"'))
    _refused(latin, lb, "not UTF-8 text")
    deep = tmp_path / "deep.json"
    deep.write_text("[" * 100_000 + "]" * 100_000)
    _refused(deep, lb, "nests deeper than 32 levels")
    nested = tmp_path / "nested.json"
    data = make().model_dump(mode="json")
    data["protocol"]["extra"]["x"] = json.loads("[" * 40 + "]" * 40)
    nested.write_text(json.dumps(data))
    _refused(nested, lb, "nests deeper than 32 levels")
    big = tmp_path / "big.json"
    with open(big, "wb") as f:
        f.write(json.dumps(make().model_dump(mode="json")).encode())
        f.truncate(MAX_RESULTS_BYTES + 1)  # sparse: 16 MiB of zero bytes after the JSON
    _refused(big, lb, "over the 16 MiB limit")
    dup = tmp_path / "dup.json"
    dup.write_text(json.dumps(make().model_dump(mode="json"))[:-1] + ', "notes": "again"}')
    _refused(dup, lb, "duplicate key 'notes'")
    for bad in (latin, deep, big):  # and through the CLI: one line, exit status 2
        out = CliRunner().invoke(main, ["leaderboard", "validate", str(bad), "--dir", str(lb)])
        lines = [ln for ln in out.output.splitlines() if ln.strip()]
        assert out.exit_code == 2 and len(lines) == 1 and lines[0].startswith("error: ")
        assert "Traceback" not in out.output


@pytest.mark.parametrize("field, value, match", [
    ("url", "https://example.org/x)<script>alert(1)</script>", "no public code link"),
    ("url", "javascript:alert(1)", "no public code link"),
    ("url", "https://good.org@evil.org/", "no public code link"),
    ("url", "baselines/../../etc/passwd", "no public code link"),
    ("name", "ghn\r| 1 | fake | 99.9 |", "control character U\\+000D"),
    ("name", "ghn\u202eevil", "control character U\\+202E"),
    ("name", "x" * 81, "at most 80"),
    ("description", "line\nbreak", "control character U\\+000A"),
])
def test_hostile_text_is_refused_and_escaped(tmp_path, releases, make, write, edit, field,
                                             value, match):
    src = write(tmp_path / "r.json", edit(make(), lambda d: d["method"].update({field: value})))
    _refused(src, tmp_path / "lb", match)
    # and the renderers escape on their own, whatever reaches them
    md = md_escape("a\rb | [c](d) <script>")
    assert "\r" not in md and "<" not in md and "\\|" in md and "\\(d\\)" in md
    assert md_url("https://example.org/a(b)c") == "https://example.org/a%28b%29c"


def test_render_revalidates_entries(tmp_path, releases, make, write):
    lb = tmp_path / "lb"
    path = submit(write(tmp_path / "r.json", make()), lb)
    render(lb)
    entry = json.loads(path.read_text())
    entry["results"]["records"][0]["top1"] = 99.5  # a hand edit (aggregates left alone)
    path.write_text(json.dumps(entry))
    with pytest.raises(BenchError, match="aggregates do not match") as err:
        render(lb)
    assert path.name in str(err.value) and "restore it from git" in err.value.fix
    entry = json.loads(path.read_text())
    entry["results"]["records"][0]["top1"] = make().records[0].top1
    entry["results"]["notes"] = "edited after submission"  # still valid, but not what was sent
    path.write_text(json.dumps(entry))
    with pytest.raises(BenchError, match="was edited"):
        render(lb)


def test_render_and_show_need_a_leaderboard(tmp_path, monkeypatch, releases):
    monkeypatch.chdir(tmp_path)  # not the repository: no ./leaderboard here
    runner = CliRunner()
    for args in (["leaderboard", "render"], ["leaderboard", "show"]):
        out = runner.invoke(main, args)
        assert out.exit_code == 2 and "there is no ./leaderboard" in out.output
        assert "--dir" in out.output
    assert not (tmp_path / "leaderboard").exists()  # nothing was created
    (tmp_path / "leaderboard").mkdir()  # a folder of that name that is not a board
    out = runner.invoke(main, ["leaderboard", "show"])
    assert out.exit_code == 2 and "has no entries/ folder" in out.output
    out = runner.invoke(main, ["leaderboard", "render", "--dir", "new-board"])
    assert out.exit_code == 0 and (tmp_path / "new-board" / "README.md").exists()
    out = runner.invoke(main, ["leaderboard", "show", "--dir", str(tmp_path / "elsewhere")])
    assert out.exit_code == 0 and "no entries" in out.output


def test_mock_and_in_process_results_are_refused(tmp_path, releases, make, write, edit):
    lb = tmp_path / "lb"

    def mock(d):
        d["protocol"]["extra"]["mock"] = True

    _refused(write(tmp_path / "m.json", edit(make(), mock)), lb, "results of a --mock run")

    def in_process(d):
        d["protocol"]["extra"]["isolation"] = "in-process"

    _refused(write(tmp_path / "i.json", edit(make(), in_process)), lb, "--in-process")

    def unmarked(d):
        del d["protocol"]["extra"]["isolation"]

    _refused(write(tmp_path / "u.json", edit(make(), unmarked)), lb,
             "must say protocol.extra.isolation")


def test_a_real_mock_run_is_refused_as_mock(tmp_path, releases):
    """Through the evaluator: a --mock results file names itself as such."""
    from deepnetsbench.eval.runner import EvalConfig, evaluate

    res = evaluate("kaiming", EvalConfig(mock=True, root=tmp_path / "root", archs=[1],
                                         out=tmp_path / "mock.json", progress=False))
    assert res.protocol.extra["mock"] is True
    with pytest.raises(BenchError, match="results of a --mock run"):
        validate(tmp_path / "mock.json", None)
    assert load_results(tmp_path / "mock.json").protocol.extra["isolation"] == "process"


def test_show_prints_names_as_text(tmp_path, releases, make, write, monkeypatch):
    monkeypatch.setenv("COLUMNS", "250")
    submit(write(tmp_path / "r.json", make("[bold]x[/] [/]")), tmp_path / "lb")
    out = CliRunner().invoke(main, ["leaderboard", "show", "--dir", str(tmp_path / "lb")])
    assert out.exit_code == 0, out.output  # console markup in a name neither crashes ...
    assert "[bold]x[/] [/]" in out.output  # ... nor styles: it is printed as it is
