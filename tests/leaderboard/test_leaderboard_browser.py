"""The static site in a real headless Chromium: what its JS builds, at a 1366 px screen and a
400 px phone, driven over the DevTools protocol (tests/leaderboard/chromium_cdp.py).

Chromium is installed from Debian (``chromium``) when missing and we are root; otherwise the
tests are skipped with the reason. Screenshots go to ``tests/_artifacts/`` (git-ignored).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import unquote, urlparse

import pytest
from chromium_cdp import Browser  # the helper module beside this file

from deepnetsbench.leaderboard.entries import submit
from deepnetsbench.leaderboard.render import render

pytestmark = pytest.mark.browser

REPO = Path(__file__).resolve().parents[2]
ARTIFACTS = REPO / "tests" / "_artifacts"
WIDTHS = (1366, 400)


@pytest.fixture(scope="module")
def chromium() -> str:
    exe = shutil.which("chromium") or (os.path.exists("/usr/bin/chromium") and "/usr/bin/chromium")
    if exe:
        return exe
    if os.geteuid() != 0:
        pytest.skip("chromium is not installed and we are not root to apt-get install it")
    try:
        subprocess.run(["apt-get", "update"], check=True, capture_output=True, timeout=600)
        subprocess.run(["apt-get", "install", "-y", "chromium"], check=True,
                       capture_output=True, timeout=1200,
                       env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"})
    except (subprocess.SubprocessError, OSError) as err:
        pytest.skip(f"could not install chromium with apt-get: {err}")
    exe = shutil.which("chromium")
    if not exe:
        pytest.skip("apt-get install chromium succeeded but no chromium binary was found")
    return exe


@pytest.fixture(scope="module")
def browser(chromium, tmp_path_factory):
    b = Browser(chromium, tmp_path_factory.mktemp("profile"))
    yield b
    b.close()


SPLITS = {"test": 16, "wide": 10, "deep": 6, "dense": 6, "bnfree": 6, "predefined": 3}


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> Path:
    """A board laid out like the repository's (``<root>/leaderboard``, ``<root>/baselines``
    linked to ours, so repository-path code links resolve from the page)."""
    from example_releases import DATA_PINS, episode_pins, split_pins

    from deepnetsbench.releases import register_dataset, register_split
    from deepnetsbench.results import example_results, save_results

    root = tmp_path_factory.mktemp("site")
    (root / "baselines").symlink_to(REPO / "baselines")
    rel = root / "releases.json"
    for i, (split, n) in enumerate(SPLITS.items()):
        register_split(split, "1", split_pins(f"{i + 1:x}" * 64, n, split), rel)
    register_dataset("cifar10", "c" * 64, DATA_PINS, rel)
    register_split("episodes-intra/test", "1", episode_pins("e" * 64, "tinyimagenet", 5), rel)
    register_dataset("tinyimagenet", "f" * 64, DATA_PINS, rel)

    runs = []  # (method, top1, splits, options)
    runs.append(("GHN-2", 60, list(SPLITS), dict(paper="https://arxiv.org/abs/2110.13100")))
    runs.append(("GHN-2 cpu", 30, ["test", "wide"], dict(
        url="baselines/ghn2/method.py", training_budget="70 min on cpu, 6000 steps")))
    runs.append(("kaiming", 10, ["test", "predefined"], dict(url="", builtin=True,
                                                            trained_on=None)))
    k = 0
    for name, top1, splits, opts in runs:
        for split in splits:
            i = list(SPLITS).index(split)
            res = example_results(name, n=SPLITS[split], seed=k, base_top1=top1, split=split,
                                  split_sha256=f"{i + 1:x}" * 64, dataset_sha256="c" * 64,
                                  speedup=(name == "GHN-2" and split == "test"),
                                  failed=[1] if name == "kaiming" else [])
            for key, value in opts.items():
                setattr(res.method, key, value)
            submit(save_results(res, root / f"r{k}.json"), root / "leaderboard", releases=rel,
                   reproduced=(name == "GHN-2"), now=datetime(2025, 1, 1 + k, tzinfo=UTC))
            k += 1
    for name, top1 in (("pudnet", 23), ("kaiming", 10)):
        res = example_results(name, n=5, seed=k, suite="episodes-intra", split="test",
                              dataset="tinyimagenet", split_sha256="e" * 64,
                              dataset_sha256="f" * 64, base_top1=top1)
        res.protocol.extra["target"] = "convnet4"
        res.method.url, res.method.builtin = (("baselines/pudnet/method.py", False)
                                              if name == "pudnet" else ("", True))
        submit(save_results(res, root / f"r{k}.json"), root / "leaderboard", releases=rel,
               now=datetime(2025, 2, 1 + k, tzinfo=UTC))
        k += 1
    render(root / "leaderboard", rel)
    return root / "leaderboard" / "site" / "index.html"


def _load(browser: Browser, page: Path, width: int, fragment: str = "") -> None:
    browser.open(page.as_uri() + fragment, width)
    assert browser.js("document.body.getAttribute('data-rendered')") == "1"
    assert browser.errors() == []


def _rows(browser: Browser, selector: str) -> list[str]:
    return browser.js(f"Array.from(document.querySelectorAll({json.dumps(selector)}))"
                      ".map(function (tr) { return tr.getAttribute('data-method'); })")


def _overflow(browser: Browser) -> list[int]:
    return browser.js("[document.documentElement.scrollWidth, window.innerWidth]")


TEST_ID = "deepnets1m@1/test/cifar10"


def test_overview_first_with_cells_linking_to_split_tables(browser, site):
    _load(browser, site, 1366)
    assert _rows(browser, ".overview-table tbody tr") == ["GHN-2", "GHN-2 cpu", "kaiming"]
    heads = browser.js("Array.from(document.querySelectorAll('.overview-table th'))"
                       ".map(function (th) { return th.textContent; })")
    assert heads == ["Method", "ID-test", "WIDE", "DEEP", "DENSE", "BN-FREE", "ResNet-50",
                     "ViT", "OOD mean"]
    cells = browser.js("Array.from(document.querySelectorAll('.overview-table tbody tr'))"
                       ".map(function (tr) { return Array.from(tr.cells).slice(1).map("
                       "function (td) { var a = td.querySelector('a');"
                       " return a ? a.getAttribute('href') : td.textContent; }); })")
    ghn, cpu, kaiming = cells
    assert ghn[0] == "#table=" + TEST_ID.replace("/", "%2F").replace("@", "%40")
    assert all(c.startswith("#table=") for c in ghn[:7]) and ghn[7][0].isdigit()  # OOD mean
    assert cpu[2:] == ["–"] * 6  # only test and wide: no DEEP ... and no OOD mean
    assert kaiming[1:5] == ["–"] * 4 and kaiming[5].startswith("#table=")  # ResNet-50 pick
    texts = browser.js("Array.from(document.querySelectorAll('.overview-table td.key'))"
                       ".map(function (td) { return td.textContent; })")
    assert "training: 70 min on cpu, 6000 steps" in texts[1] and "self-reported" in texts[1]
    assert "reproduced" in texts[0] and "training: no training" in texts[2]
    # a cell link selects its split table
    browser.js("document.querySelector('.overview-table tbody tr a.cell-link[href*=\"wide\"]')"
               ".click()")
    browser.settle()
    assert browser.js("document.getElementById('table-select').value") == "deepnets1m@1/wide/cifar10"
    assert _rows(browser, "#leaderboard tbody tr") == ["GHN-2", "GHN-2 cpu"]


def test_split_table_rows_status_and_plots(browser, site):
    _load(browser, site, 1366, "#table=" + TEST_ID)
    assert _rows(browser, "#leaderboard tbody tr") == ["GHN-2", "GHN-2 cpu", "kaiming"]
    keys = browser.js("Array.from(document.querySelectorAll('#leaderboard th'))"
                      ".map(function (th) { return th.getAttribute('data-key'); })")
    assert keys[:4] == ["rank", "method", "top1", "ci"] and "speedup" in keys
    assert browser.js("document.querySelectorAll('#leaderboard th button').length") == len(keys)
    badges = browser.js("Array.from(document.querySelectorAll('#leaderboard .badge'))"
                        ".map(function (b) { return b.textContent; })")
    assert badges == ["reproduced", "self-reported", "self-reported"]
    drawn = browser.js("['plot-time', 'plot-splits', 'plot-size'].map(function (id) {"
                       " var s = document.getElementById(id); return [s.getAttribute('data-drawn'),"
                       " s.querySelectorAll('line.chance').length]; })")
    # 3 methods; bars: GHN-2 on 6 splits, the others on 2 each (one chance line per split);
    # points: 16 + 16 + 15 ok architectures
    assert drawn == [["3", 1], ["10", 6], ["47", 1]]
    assert browser.js("document.getElementById('fig-size').hidden") is False


def test_keyboard_sorting(browser, site):
    _load(browser, site, 1366, "#table=" + TEST_ID)
    browser.js("document.querySelector('#leaderboard th[data-key=\"top1\"] button').focus()")
    browser.press_enter()
    assert browser.js("document.querySelector('#leaderboard th[data-key=\"top1\"]')"
                      ".getAttribute('aria-sort')") == "descending"
    assert _rows(browser, "#leaderboard tbody tr") == ["GHN-2", "GHN-2 cpu", "kaiming"]
    browser.press_enter()  # the focus stayed on the button
    assert _rows(browser, "#leaderboard tbody tr") == ["kaiming", "GHN-2 cpu", "GHN-2"]
    assert "sort=top1&dir=asc" in browser.js("location.hash")
    # the overview sorts the same way
    browser.js("document.querySelector('.overview-table th[data-key=\"method\"] button').focus()")
    browser.press_enter()
    assert _rows(browser, ".overview-table tbody tr") == ["GHN-2", "GHN-2 cpu", "kaiming"]
    browser.press_enter()
    assert _rows(browser, ".overview-table tbody tr") == ["kaiming", "GHN-2 cpu", "GHN-2"]


def test_downloads(browser, site):
    _load(browser, site, 1366, "#table=" + TEST_ID)
    hrefs = browser.js("Array.from(document.querySelectorAll('a.dl-csv, a.dl-json'))"
                       ".map(function (a) { return [a.className, a.getAttribute('download'),"
                       " a.getAttribute('href')]; })")
    assert len(hrefs) == 4  # the overview and the split table, CSV and JSON each
    csv = [unquote(h.split(",", 1)[1]) for c, _, h in hrefs if c == "dl-csv"]
    overview_csv, table_csv = (c.strip().split("\r\n") for c in csv)
    assert overview_csv[0].startswith("method,version,status,training,ID-test,ID-test se")
    assert len(overview_csv) == 4 and len(table_csv) == 4
    assert table_csv[1].split(",")[:4] == ["1", "GHN-2", "1.0", "reproduced"]
    data = json.loads(unquote(hrefs[-1][2].split(",", 1)[1]))
    assert data["id"] == TEST_ID and len(data["rows"]) == 3
    assert all(d.endswith((".csv", ".json")) for _, d, _ in hrefs)


def _check_links(browser: Browser, page: Path) -> dict[str, int]:
    """Every link on the page resolves: in-page anchors and table links to something on the
    page, file links to an existing file, web links are http(s)."""
    links = browser.js("Array.from(document.querySelectorAll('a[href]')).map(function (a) {"
                       " return [a.className, a.getAttribute('href'), a.href]; })")
    ids = set(browser.js("Array.from(document.querySelectorAll('[id]'))"
                         ".map(function (e) { return e.id; })"))
    tables = set(browser.js("JSON.parse(document.getElementById('board-data').textContent)"
                            ".tables.map(function (t) { return t.id; })"))
    kinds = {"anchor": 0, "table": 0, "file": 0, "web": 0, "download": 0}
    for cls, href, absolute in links:
        if href.startswith("#table="):
            assert unquote(href[len("#table="):]) in tables, href
            kinds["table"] += 1
        elif href.startswith("#"):
            assert href[1:] in ids, href
            kinds["anchor"] += 1
        elif href.startswith("data:"):
            kinds["download"] += 1
        elif href.startswith(("https://", "http://")):
            kinds["web"] += 1
        else:
            url = urlparse(absolute)
            assert url.scheme == "file" and Path(unquote(url.path)).is_file(), (href, absolute)
            assert cls == "code", href
            kinds["file"] += 1
    return kinds


def test_links_resolve(browser, site):
    for fragment in ("", "#table=" + TEST_ID, "#table=episodes-intra%401%2Ftest%2Ftinyimagenet"
                     "%2Fconvnet4"):
        _load(browser, site, 1366, fragment)
        kinds = _check_links(browser, site)
        assert kinds["table"] >= 12 and kinds["anchor"] == 4 and kinds["download"] == 4
        assert kinds["file"] >= 1  # the GHN-2 cpu / PudNet code links (repository paths)
    papers = browser.js("Array.from(document.querySelectorAll('a.paper'))"
                        ".map(function (a) { return a.getAttribute('href'); })")
    assert set(papers) == {"https://arxiv.org/abs/2110.13100"}


def test_episode_table_labelled_episodes(browser, site):
    _load(browser, site, 1366, "#table=episodes-intra%401%2Ftest%2Ftinyimagenet%2Fconvnet4")
    assert _rows(browser, "#leaderboard tbody tr") == ["pudnet", "kaiming"]
    assert browser.js("document.getElementById('table-info').textContent").startswith("5 episodes")
    assert browser.js("document.getElementById('fig-size').hidden") is True  # one target
    assert browser.js("document.getElementById('plot-splits').getAttribute('data-drawn')") == "2"
    items = browser.js("Array.from(document.querySelectorAll('#episode-suites li'))"
                       ".map(function (li) { return li.textContent; })")
    assert len(items) == 1 and "5 episodes, 2 entries" in items[0]
    groups = browser.js("Array.from(document.querySelectorAll('#table-select optgroup'))"
                        ".map(function (g) { return g.label; })")
    assert groups == ["deepnets1m 1 (architectures)", "episodes-intra (episodes)"]


@pytest.mark.parametrize("width", WIDTHS)
def test_no_horizontal_page_scrolling(browser, site, width):
    for fragment in ("", "#table=" + TEST_ID, "#table=episodes-intra%401%2Ftest%2Ftinyimagenet"
                     "%2Fconvnet4"):
        _load(browser, site, width, fragment)
        scroll, inner = _overflow(browser)
        assert inner == width and scroll <= inner, (fragment, scroll, inner)
    # the wide tables scroll inside their own box instead
    boxes = browser.js("Array.from(document.querySelectorAll('.scroll')).map(function (b) {"
                       " return [b.scrollWidth > b.clientWidth, getComputedStyle(b).overflowX]; })")
    assert all(o == "auto" for _, o in boxes)
    if width == 400:
        assert any(wide for wide, _ in boxes)
    ARTIFACTS.mkdir(exist_ok=True)
    browser.screenshot(ARTIFACTS / f"leaderboard_site_{width}.png")
    assert (ARTIFACTS / f"leaderboard_site_{width}.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_the_repository_board(browser):
    """The committed page: renders without errors, fits both widths, every link resolves
    (repository paths from leaderboard/site/ to the files)."""
    page = REPO / "leaderboard" / "site" / "index.html"
    for width in WIDTHS:
        _load(browser, page, width)
        scroll, inner = _overflow(browser)
        assert scroll <= inner == width
        kinds = _check_links(browser, page)
        assert kinds["anchor"] == 4
    n = browser.js("JSON.parse(document.getElementById('board-data').textContent).tables.length")
    options = browser.js("document.querySelectorAll('#table-select option').length")
    entries = list((REPO / "leaderboard" / "entries").glob("*.json"))
    assert n == options and 0 < n <= len(entries)
