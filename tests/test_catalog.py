"""``deepnets-bench list`` and ``info --json``: what is known and what the cache holds, as
tables and as the documented JSON shapes (docs/cli.md)."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from deepnetsbench.catalog import LIST_KIND, SUITE_DESCRIPTIONS, catalog
from deepnetsbench.cli import main
from deepnetsbench.data.registry import DATASETS
from deepnetsbench.eval.builtin import BUILTIN_METHODS
from deepnetsbench.releases import names_sha256
from deepnetsbench.results import SUITES
from deepnetsbench.splits import generate_split

SPLIT_KEYS = {"split", "releases", "lite_releases", "cached"}
CACHED_KEYS = {"release", "path", "sha256", "generator_version", "num_items", "registered_as"}


@pytest.fixture
def small_root(tmp_path):
    """A cache with a 3-architecture TEST split and a releases file registering it."""
    root = tmp_path / "root"
    path = generate_split("test", 3, root=root)
    manifest = json.loads((path.parent / "manifest.json").read_text())
    sha = manifest[path.name]["sha256"]
    rel = tmp_path / "releases.json"
    names = [f"test/{i:05d}" for i in range(3)]
    rel.write_text(json.dumps({"format": 2, "datasets": {}, "splits": {"test": {
        "9.9": {"sha256": sha, "num_items": 3, "names_sha256": names_sha256(names)}}}}))
    return root, rel, sha


def test_list_an_empty_cache(tmp_path):
    data = catalog(tmp_path, tmp_path / "no-releases.json")
    assert data["kind"] == LIST_KIND and data["version"] == 1
    assert [s["name"] for s in data["suites"]] == list(SUITES)
    assert all(s["description"] for s in data["suites"] if s["name"] in SUITE_DESCRIPTIONS)
    assert {s["split"] for s in data["splits"]} >= {"train", "test", "wide", "predefined"}
    assert all(set(s) == SPLIT_KEYS and s["cached"] == [] for s in data["splits"])
    assert [d["name"] for d in data["datasets"]] == list(DATASETS)
    assert all(d["cached"] is None for d in data["datasets"])
    names = [m["name"] for m in data["methods"]]
    assert names[:len(BUILTIN_METHODS)] == list(BUILTIN_METHODS)
    assert any(n.endswith("baselines/ghn2/method.py") for n in names)
    assert [e["kind"] for e in data["episode_suites"]] == ["episodes-intra", "episodes-inter"]


def test_list_sees_a_cached_split_and_its_release(small_root):
    root, rel, sha = small_root
    data = catalog(root, rel)
    test = next(s for s in data["splits"] if s["split"] == "test")
    assert test["releases"] == [{"version": "9.9", "sha256": sha, "num_items": 3}]
    (cached,) = test["cached"]
    assert set(cached) == CACHED_KEYS
    assert cached["release"] == "default" and cached["sha256"] == sha
    assert cached["registered_as"] == "9.9" and cached["num_items"] == 3
    other = catalog(root, rel.parent / "none.json")  # the same file, no release knows it
    assert next(s for s in other["splits"] if s["split"] == "test")["cached"][0][
        "registered_as"] is None


def test_list_command_tables_and_json(small_root):
    root, rel, _ = small_root
    runner = CliRunner()
    res = runner.invoke(main, ["list", "--root", str(root), "--releases", str(rel)])
    assert res.exit_code == 0, res.output
    for word in ("suites", "deepnets1m-lite", "= 9.9", "cifar10", "kaiming", "episodes-intra"):
        assert word in res.output, word
    res = runner.invoke(main, ["list", "--root", str(root), "--releases", str(rel), "--json"])
    assert res.exit_code == 0
    data = json.loads(res.output)
    assert data == json.loads(json.dumps(catalog(root, rel)))


def test_info_json(small_root):
    root, _, sha = small_root
    runner = CliRunner()
    res = runner.invoke(main, ["info", "--root", str(root), "--json", "--split", "test",
                               "--split", "deep"])
    assert res.exit_code == 0, res.output
    data = json.loads(res.output)
    assert data["kind"] == "deepnets-bench-info" and data["version"] == 1
    test, deep = data["splits"]
    assert set(test) == {"split", "path", "present", "archs", "params_median_m",
                         "params_min_m", "params_max_m", "nodes_mean", "nodes_max",
                         "generator_version", "format_version", "sha256"}
    assert test["archs"] == 3 and test["sha256"] == sha and test["present"]
    assert test["params_min_m"] <= test["params_median_m"] <= test["params_max_m"]
    assert deep == {"split": "deep", "path": deep["path"], "present": False}
    assert data["datasets"] is None and data["episode_suites"] is None  # filtered by --split
    res = runner.invoke(main, ["info", "--root", str(root), "--json"])
    data = json.loads(res.output)
    assert [s["split"] for s in data["splits"]] == ["test"]
    assert data["datasets"] == [] and data["episode_suites"] == []
