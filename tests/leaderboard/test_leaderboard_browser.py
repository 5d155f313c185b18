"""The static site in a real headless Chromium: the DOM its JS builds, and a screenshot.

Chromium is installed from Debian (``chromium``, ``chromium-driver``) when missing and we are
root; otherwise the test is skipped with the reason. The screenshot is saved to
``tests/_artifacts/leaderboard_site.png`` (git-ignored) for a human to look at.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from datetime import UTC, datetime
from pathlib import Path

import pytest

from deepnetsbench.leaderboard.entries import submit
from deepnetsbench.leaderboard.render import render

pytestmark = pytest.mark.browser

ARTIFACTS = Path(__file__).resolve().parents[1] / "_artifacts"
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--disable-dev-shm-usage", "--hide-scrollbars"]


@pytest.fixture(scope="module")
def chromium() -> str:
    exe = shutil.which("chromium") or (os.path.exists("/usr/bin/chromium") and "/usr/bin/chromium")
    if exe:
        return exe
    if os.geteuid() != 0:
        pytest.skip("chromium is not installed and we are not root to apt-get install it")
    try:
        subprocess.run(["apt-get", "update"], check=True, capture_output=True, timeout=600)
        subprocess.run(["apt-get", "install", "-y", "chromium", "chromium-driver"], check=True,
                       capture_output=True, timeout=1200,
                       env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"})
    except (subprocess.SubprocessError, OSError) as err:
        pytest.skip(f"could not install chromium with apt-get: {err}")
    exe = shutil.which("chromium")
    if not exe:
        pytest.skip("apt-get install chromium succeeded but no chromium binary was found")
    return exe


def _run(chromium: str, profile: Path, *args: str) -> str:
    out = subprocess.run([chromium, *FLAGS, f"--user-data-dir={profile}", *args],
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    return out.stdout


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> Path:
    from example_releases import register_examples

    from deepnetsbench.results import example_results, save_results

    tmp = tmp_path_factory.mktemp("site")
    rel = register_examples(tmp / "releases.json", n_test=16, n_wide=10)
    specs = [("GHN-2", 60, "test", dict(speedup=True, finetune=True)), ("PudNet", 57, "test", {}),
             ("Random init", 10, "test", dict(failed=[1])), ("GHN-2", 42, "wide", {}),
             ("Random init", 6, "wide", {})]
    for i, (name, top1, split, kw) in enumerate(specs):
        res = example_results(name, n=16 if split == "test" else 10, seed=i, base_top1=top1,
                              split=split, split_sha256=("a" if split == "test" else "b") * 64,
                              dataset_sha256="c" * 64, **kw)
        src = save_results(res, tmp / f"r{i}.json")
        submit(src, tmp / "lb", releases=rel, reproduced=(i == 0),
               now=datetime(2025, 1, 1 + i, tzinfo=UTC))
    render(tmp / "lb", rel)
    return tmp / "lb" / "site" / "index.html"


def _svg(dom: str, svg_id: str) -> str:
    m = re.search(rf'<svg id="{svg_id}".*?</svg>', dom, re.S)
    assert m, f"no svg #{svg_id}"
    return m.group(0)


def _row_methods(dom: str) -> list[str]:
    tbody = re.search(r'<table id="leaderboard">.*?<tbody>(.*?)</tbody>', dom, re.S).group(1)
    return re.findall(r'<tr[^>]*data-method="([^"]+)"', tbody)


def test_dom_built_by_the_page(chromium, site, tmp_path):
    dom = _run(chromium, tmp_path / "profile", "--dump-dom", site.as_uri())
    assert 'data-rendered="1"' in dom  # the script ran to the end
    assert _row_methods(dom) == ["GHN-2", "PudNet", "Random init"]
    assert "≥" in dom and "reproduced" in dom and "self-reported" in dom
    headers = re.findall(r'<th data-key="([a-z_0-9]+)"', dom)
    assert headers[:3] == ["rank", "method", "top1"] and "speedup" in headers and "finetune" in headers
    options = re.findall(r'<option value="([^"]+)"', dom)
    assert options == ["deepnets1m/test/cifar10", "deepnets1m/wide/cifar10"]
    assert len(re.findall(r'class="pt"', _svg(dom, "plot-time"))) == 3
    assert len(re.findall(r'class="bar"', _svg(dom, "plot-splits"))) == 5
    # one point per ok architecture with a size: 16 + 16 + 15
    assert len(re.findall(r'class="arch-pt"', _svg(dom, "plot-size"))) == 47


def test_hash_selects_table_and_sort(chromium, site, tmp_path):
    url = site.as_uri() + "#table=deepnets1m%2Fwide%2Fcifar10&sort=top1&dir=asc"
    dom = _run(chromium, tmp_path / "profile", "--dump-dom", url)
    assert _row_methods(dom) == ["Random init", "GHN-2"]
    assert re.search(r'<th data-key="top1"[^>]*aria-sort="ascending"', dom)
    assert "speedup" not in re.findall(r'<th data-key="([a-z_0-9]+)"', dom)  # no column without data
    assert len(re.findall(r'class="pt"', _svg(dom, "plot-time"))) == 2
    assert 'class="current"' in _svg(dom, "plot-splits")


def test_screenshot(chromium, site, tmp_path):
    ARTIFACTS.mkdir(exist_ok=True)
    shot = ARTIFACTS / "leaderboard_site.png"
    if shot.exists():
        shot.unlink()
    _run(chromium, tmp_path / "profile", f"--screenshot={shot}", "--window-size=1280,1800",
         site.as_uri())
    assert shot.exists() and shot.stat().st_size > 20_000
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
