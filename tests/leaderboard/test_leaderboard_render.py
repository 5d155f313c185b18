"""README and static site rebuilt from entries; the CLI; the releases file."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime

import pytest
from click.testing import CliRunner

from deepnetsbench.cli import main
from deepnetsbench.errors import BenchError
from deepnetsbench.leaderboard.board import build_tables
from deepnetsbench.leaderboard.entries import load_entries, submit
from deepnetsbench.leaderboard.render import render
from deepnetsbench.releases import (
    known_dataset,
    known_split,
    load_releases,
    register_dataset,
    register_split,
    releases_path,
)


@pytest.fixture
def board(tmp_path, releases, make, write):
    """Three methods on test (one with speed-ups and fine-tuning), two on wide."""
    lb = tmp_path / "lb"
    runs = [
        (make("GHN-2", seed=0, base_top1=60, speedup=True, finetune=True), True),
        (make("PudNet", seed=1, base_top1=58, failed=[3]), False),
        (make("Random", seed=2, base_top1=10), False),
        (make("GHN-2", seed=3, base_top1=40, split="wide"), False),
        (make("Random", seed=4, base_top1=5, split="wide"), False),
    ]
    for i, (res, rep) in enumerate(runs):
        src = write(tmp_path / f"r{i}.json", res)
        submit(src, lb, reproduced=rep, now=datetime(2025, 1, 1 + i, tzinfo=UTC))
    return lb


def test_tables_group_and_rank(board):
    tables = build_tables(load_entries(board))
    assert [(t.suite, t.split, t.dataset) for t in tables] == [
        ("deepnets1m", "test", "cifar10"), ("deepnets1m", "wide", "cifar10")]
    test = tables[0]
    assert [r.method for r in test.rows] == ["GHN-2", "PudNet", "Random"]
    assert test.rows[0].rank == 1 and test.rows[-1].rank > test.rows[0].rank
    assert test.rows[0].reproduced and not test.rows[1].reproduced


def _section(md: str, heading: str) -> str:
    """The Markdown from ``heading`` to the next heading of the same or a higher level."""
    level = heading.split(" ")[0]
    start = md.index(heading + "\n")
    rest = md[start + len(heading) + 1:]
    ends = [m.start() for m in re.finditer(f"^#{{1,{len(level)}}} ", rest, re.M)]
    return heading + "\n" + (rest[:ends[0]] if ends else rest)


def _table_rows(section: str) -> list[list[str]]:
    lines = [ln for ln in section.splitlines() if ln.startswith("| ")][1:]  # no header
    return [[c.strip() for c in re.split(r"(?<!\\)\|", ln)[1:-1]] for ln in lines]


def test_readme(board):
    render(board)
    md = (board / "README.md").read_text()
    assert md.index("## DeepNets-1M") < md.index("### deepnets1m 1 · cifar10") \
        < md.index("#### deepnets1m 1 · test · cifar10") < md.index("## Episode suites")
    test_section = _section(md, "#### deepnets1m 1 · test · cifar10")
    rows = _table_rows(test_section)
    assert len(rows) == 3
    assert rows[0][:2] == ["1", "[GHN-2 1.0](https://example.org/code)"]
    assert re.fullmatch(r"\d+\.\d\d ± \d+\.\d\d", rows[0][2])
    assert re.fullmatch(r"\[\d+\.\d\d, \d+\.\d\d\]", rows[0][3])
    assert rows[0][4] == "budget not stated; data: DeepNets-1M train, CIFAR-10 train"
    assert "≥" in "".join(rows[0])  # speed-up lower bound marked
    assert rows[0][-1] == "reproduced" and rows[1][-1] == "self-reported"
    assert "Fine-tuned top-1" in test_section and "Speed-up" in test_section
    assert "1/12" in rows[1]  # one failed architecture shown
    assert "Speed-up" not in _section(md, "#### deepnets1m 1 · wide · cifar10")
    assert "12 architectures" in test_section and "Chance: 10.00%." in test_section


def test_readme_overview(board):
    render(board)
    md = (board / "README.md").read_text()
    overview = _section(md, "### deepnets1m 1 · cifar10")
    header = [ln for ln in overview.splitlines() if ln.startswith("| Method")][0]
    assert [re.sub(r"\]\(.*?\)|\[", "", c).strip() for c in header.split("|")[1:-1]] == [
        "Method", "Status", "Training", "ID-test", "WIDE", "DEEP", "DENSE", "BN-FREE",
        "ResNet-50", "ViT", "OOD mean"]
    rows = {r[0].split("]")[0].lstrip("["): r for r in _table_rows(overview)}
    assert list(rows) == ["GHN-2 1.0", "PudNet 1.0", "Random 1.0"]  # by ID-test
    ghn = rows["GHN-2 1.0"]
    assert ghn[1] == "partly reproduced \\(test\\)"  # its wide entry is self-reported
    assert re.fullmatch(r"\[\d+\.\d\d ± \d+\.\d\d\]\(#deepnets1m-1-test-cifar10\)", ghn[3])
    assert ghn[4].endswith("(#deepnets1m-1-wide-cifar10)")
    assert ghn[5:] == ["–"] * 6  # no deep/dense/bnfree/predefined entries, so no OOD mean
    assert rows["PudNet 1.0"][4] == "–"  # PudNet has no wide entry
    anchors = set(re.findall(r'<a id="([^"]+)"></a>', md))
    assert set(re.findall(r"\]\(#([^)]+)\)", md)) <= anchors  # every cell link resolves


def test_overview_with_every_column(tmp_path):
    """Entries on every split (PREDEFINED too) fill every column, the OOD mean included;
    published entries carry their own label and the training budget shows."""
    from pathlib import Path

    from deepnetsbench.leaderboard.entries import Entry, content_sha256
    from deepnetsbench.leaderboard.markdown import readme_markdown
    from deepnetsbench.leaderboard.overview import build_overviews
    from deepnetsbench.results import aggregate, example_results

    entries, means = [], {}
    for i, split in enumerate(["test", "wide", "deep", "dense", "bnfree", "predefined"]):
        for method, status in (("GHN-2", "published"), ("mine", "submitted")):
            res = example_results(method, n=4, seed=i, split=split,
                                  base_top1=60 if method == "GHN-2" else 20,
                                  failed=[1] if split == "predefined" and method == "mine" else [])
            res.split.generator_version = "ppuda"
            if method == "mine":
                res.method.training_budget = "20 min on cpu, 500 steps"
            res.aggregates = aggregate(res.records)
            means[method, split] = res.aggregates.top1.mean
            if split == "predefined":
                means[method, "resnet50"] = res.records[0].top1
                means[method, "vit"] = res.records[1].top1
            entries.append((Path(f"{i}{method}.json"), Entry(
                results=res, content_sha256=content_sha256(res), status=status,
                submitted_at=res.finished_at)))
    tables = build_tables(entries)
    (o,) = build_overviews(tables)
    assert o.title == "deepnets1m ppuda · cifar10" and o.chance == 10.0
    ghn, mine = o.rows
    assert (ghn.status, mine.status) == ("published", "self-reported")
    for key in ("test", "wide", "deep", "dense", "bnfree", "resnet50"):
        assert ghn.cells[key].mean == pytest.approx(means["GHN-2", key])
    assert mine.cells["vit"].mean == 0.0 and "failed" in mine.cells["vit"].note
    ood = sum(means["GHN-2", s] for s in ("wide", "deep", "dense", "bnfree")) / 4
    assert ghn.cells["ood"].mean == pytest.approx(ood)
    md = readme_markdown(tables, [o])
    rows = _table_rows(_section(md, "### deepnets1m ppuda · cifar10"))
    assert [r[1] for r in rows] == ["published", "self-reported"]
    assert rows[1][2] == "20 min on cpu, 500 steps"  # the budget next to the scores
    assert rows[1][9].startswith("[0.00 (failed)](#deepnets1m-ppuda-predefined-cifar10)")
    assert rows[0][10] == f"{ood:.2f}"
    split_rows = _table_rows(_section(md, "#### deepnets1m ppuda · test · cifar10"))
    assert split_rows[1][4] == "20 min on cpu, 500 steps" and split_rows[0][-1] == "published"


def test_render_is_deterministic_and_from_entries_alone(board):
    render(board)
    first = {p: p.read_bytes() for p in [board / "README.md", board / "site" / "index.html"]}
    for p in first:
        p.unlink()
    render(board)
    assert {p: p.read_bytes() for p in first} == first


def test_site_is_self_contained(board):
    render(board)
    html = (board / "site" / "index.html").read_text()
    assert "<script src" not in html and "<link" not in html and "@import" not in html
    assert not re.search(r"(src|href)=\"https?://", html)
    blob = re.search(r'<script type="application/json" id="board-data">(.*?)</script>', html, re.S)
    data = json.loads(blob.group(1))
    assert [t["id"] for t in data["tables"]] == ["deepnets1m@1/test/cifar10", "deepnets1m@1/wide/cifar10"]
    assert [o["id"] for o in data["overviews"]] == ["deepnets1m@1/cifar10"]
    assert len(data["tables"][0]["rows"][0]["points"]) == 12


def test_hostile_method_name_is_escaped(tmp_path, releases, make, write):
    bad = "</script><script>alert(1)</script> | [x](y)"
    submit(write(tmp_path / "r.json", make(bad)), tmp_path / "lb")
    render(tmp_path / "lb")
    html = (tmp_path / "lb" / "site" / "index.html").read_text()
    assert "<script>alert(1)" not in html and html.count("</script>") == 2
    md = (tmp_path / "lb" / "README.md").read_text()
    assert "<script>" not in md and "\\| \\[x\\]\\(y\\)" in md


def test_empty_board_renders(tmp_path):
    render(tmp_path / "lb")
    assert "No entries yet" in (tmp_path / "lb" / "README.md").read_text()
    assert (tmp_path / "lb" / "site" / "index.html").exists()


def test_two_releases_of_a_split_get_separate_tables(tmp_path, releases, make, write, edit):
    from example_releases import split_pins

    register_split("test", "2", split_pins("9" * 64), releases)

    def v2(d):
        d["split"].update(generator_version="2", sha256="9" * 64)

    submit(write(tmp_path / "a.json", make("m")), tmp_path / "lb")
    submit(write(tmp_path / "b.json", edit(make("m"), v2)), tmp_path / "lb")
    titles = [t.title for t in build_tables(load_entries(tmp_path / "lb"))]
    assert titles == ["deepnets1m 1 · test · cifar10", "deepnets1m 2 · test · cifar10"]


# ----------------------------------------------------------------------------- CLI


def test_cli_submit_render_show_validate(tmp_path, releases, make, write):
    runner = CliRunner()
    lb = str(tmp_path / "lb")
    src = str(write(tmp_path / "r.json", make("CLI-method")))
    out = runner.invoke(main, ["leaderboard", "validate", src, "--dir", lb])
    assert out.exit_code == 0 and "ready to submit" in out.output
    out = runner.invoke(main, ["leaderboard", "submit", src, "--dir", lb])
    assert out.exit_code == 0, out.output
    assert "added" in out.output and (tmp_path / "lb" / "README.md").exists()
    out = runner.invoke(main, ["leaderboard", "show", "--dir", lb, "--split", "test"])
    assert out.exit_code == 0 and "CLI-method" in out.output
    out = runner.invoke(main, ["leaderboard", "show", "--dir", lb, "--split", "deep"])
    assert "no entries" in out.output
    out = runner.invoke(main, ["leaderboard", "render", "--dir", lb])
    assert out.exit_code == 0 and "index.html" in out.output


def test_cli_refusal_is_one_line_exit_2(tmp_path, releases, make, write):
    src = str(write(tmp_path / "r.json", make()))
    runner = CliRunner()
    assert runner.invoke(main, ["leaderboard", "submit", src, "--dir", str(tmp_path / "lb")]).exit_code == 0
    out = runner.invoke(main, ["leaderboard", "submit", src, "--dir", str(tmp_path / "lb")])
    assert out.exit_code == 2
    lines = [ln for ln in out.output.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: ") and "; fix: " in lines[0]


def test_cli_register_computes_the_pins(tmp_path):
    from deepnetsbench.data.cache import write_cache
    from deepnetsbench.data.synthetic import synthetic_dataset
    from deepnetsbench.splits import generate_split

    rel = str(tmp_path / "rel.json")
    split = generate_split("test", 3, root=tmp_path)
    runner = CliRunner()
    out = runner.invoke(main, ["leaderboard", "register-split", "test", "1.0", "--file",
                               str(split), "--releases", rel])
    assert out.exit_code == 0 and "(3 items)" in out.output, out.output
    pins = load_releases(rel)["splits"]["test"]["1.0"]
    assert pins["num_items"] == 3 and len(pins["names_sha256"]) == 64
    cache = write_cache(synthetic_dataset(7, 12, n_train=20, n_test=14), tmp_path / "s.h5")
    out = runner.invoke(main, ["leaderboard", "register-dataset", "synthetic", "--file",
                               str(cache), "--releases", rel])
    assert out.exit_code == 0 and "7 classes, 14 test images, 12 px" in out.output, out.output
    out = runner.invoke(main, ["leaderboard", "register-split", "test", "1", "--releases", rel])
    assert out.exit_code == 2 and "--file" in out.output


# ----------------------------------------------------------------------------- releases


def test_releases_file_and_override(tmp_path, monkeypatch):
    from example_releases import DATA_PINS, split_pins

    monkeypatch.delenv("DEEPNETS_BENCH_RELEASES", raising=False)
    assert releases_path().name == "releases.json" and releases_path().exists()
    packaged = load_releases()
    assert set(packaged) >= {"splits", "datasets"}
    path = tmp_path / "rel.json"
    monkeypatch.setenv("DEEPNETS_BENCH_RELEASES", str(path))
    assert releases_path() == path
    assert not known_split("test", "a" * 64)  # missing file: nothing known
    register_split("test", "1", split_pins("A" * 64))
    assert known_split("test", "a" * 64) and known_split("test", "a" * 64, generator_version="1")
    assert not known_split("test", "a" * 64, generator_version="2")
    assert not known_split("wide", "a" * 64)
    register_split("test", "1", split_pins("a" * 64))  # same again: no-op
    with pytest.raises(BenchError, match="already released"):
        register_split("test", "1", split_pins("b" * 64))
    with pytest.raises(BenchError, match="already released"):  # same hash, other counts
        register_split("test", "1", split_pins("a" * 64, n=3))
    register_split("test", "1", split_pins("b" * 64), replace=True)
    assert known_split("test", "b" * 64) and not known_split("test", "a" * 64)
    with pytest.raises(BenchError, match="lack num_items"):
        register_split("wide", "1", {"sha256": "c" * 64})
    register_dataset("cifar10", "c" * 64, DATA_PINS)
    register_dataset("cifar10", "c" * 64, DATA_PINS)
    assert json.loads(path.read_text())["datasets"] == {"cifar10": {"c" * 64: DATA_PINS}}
    with pytest.raises(BenchError, match="not a sha256"):
        register_dataset("cifar10", "xyz", DATA_PINS)
    with pytest.raises(BenchError, match="lack"):
        register_dataset("cifar10", "d" * 64, {"num_classes": 10})
    path.write_text("{oops")
    with pytest.raises(BenchError, match="cannot read releases file"):
        known_dataset("cifar10", "c" * 64)


def test_registered_release_without_entries_is_named(tmp_path, releases, make, write):
    from example_releases import split_pins

    register_split("test", "2", split_pins("9" * 64), releases)
    submit(write(tmp_path / "a.json", make("m")), tmp_path / "lb")
    render(tmp_path / "lb")
    md = (tmp_path / "lb" / "README.md").read_text()
    assert "Release 2: no entries yet" in md and "### deepnets1m 1 · cifar10" in md
    html = (tmp_path / "lb" / "site" / "index.html").read_text()
    data = json.loads(re.search(r'id="board-data">(.*?)</script>', html, re.S).group(1))
    assert data["registered"] == {"deepnets1m": ["1", "2"]}


def test_committed_board_is_rendered_from_its_entries(tmp_path, monkeypatch):
    """leaderboard/README.md and site/index.html are what render makes of the committed
    entries (links are relative, so a copy of the board renders the same bytes)."""
    import shutil
    from pathlib import Path

    monkeypatch.delenv("DEEPNETS_BENCH_RELEASES", raising=False)
    repo_board = Path(__file__).resolve().parents[2] / "leaderboard"
    shutil.copytree(repo_board / "entries", tmp_path / "lb" / "entries")
    render(tmp_path / "lb")
    for name in ("README.md", "site/index.html"):
        assert (tmp_path / "lb" / name).read_bytes() == (repo_board / name).read_bytes(), (
            f"leaderboard/{name} is stale: run `deepnets-bench leaderboard render`")
