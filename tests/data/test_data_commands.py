"""`deepnets-bench download` through click's CliRunner."""

from __future__ import annotations

import sys
import types

from click.testing import CliRunner

from deepnetsbench.cli import main


def test_download_from_archive_fills_the_cache(tmp_path, archive):
    root = tmp_path / "cache"
    result = CliRunner().invoke(
        main, ["download", "--no-splits", "--from", str(archive), "--root", str(root)]
    )
    assert result.exit_code == 0, result.output
    assert (root / "images" / "toy.h5").is_file()
    assert "toy" in result.output and "12" in result.output  # summary table: name, train count
    # a second run finds it in the cache, offline
    again = CliRunner().invoke(
        main, ["download", "--no-splits", "--offline", "--dataset", "toy", "--root", str(root), "-y"]
    )
    assert again.exit_code == 0, again.output


def test_dataset_names_pair_with_archives(tmp_path, archive):
    root = tmp_path / "cache"
    result = CliRunner().invoke(main, ["download", "--no-splits", "--dataset", "pets",
                                       "--from", str(archive), "--root", str(root)])
    assert result.exit_code == 0, result.output
    assert (root / "images" / "pets.h5").is_file()
    bad = CliRunner().invoke(main, ["download", "--no-splits", "--dataset", "a", "--dataset", "b",
                                    "--from", str(archive), "--root", str(root)])
    assert bad.exit_code == 2 and "one --dataset per --from" in bad.output


def test_offline_missing_dataset_is_a_one_line_error(tmp_path):
    result = CliRunner().invoke(main, ["download", "--no-splits", "--offline", "--dataset",
                                       "cifar100", "--root", str(tmp_path)])
    assert result.exit_code == 2
    lines = [ln for ln in result.output.splitlines() if ln.startswith("error:")]
    assert len(lines) == 1 and "--from ARCHIVE" in lines[0]


def test_splits_are_fetched_with_the_options(tmp_path, archive, monkeypatch):
    calls = []
    fake = types.ModuleType("deepnetsbench.splits.fetch")
    fake.fetch_splits = lambda **kw: calls.append(kw)
    monkeypatch.setitem(sys.modules, "deepnetsbench.splits.fetch", fake)
    result = CliRunner().invoke(main, ["download", "--from", str(archive), "--root", str(tmp_path),
                                       "--build", "--offline", "--base-url", "http://m/",
                                       "--train", "--train-num", "50", "--workers", "1"])
    assert result.exit_code == 0, result.output
    assert calls == [dict(root=tmp_path, build=True, offline=True, base_url="http://m/",
                          progress=True, train=True, train_num=50, workers=1,
                          allow_mismatch=False)]


def test_missing_split_fetcher_is_reported(tmp_path, archive, monkeypatch):
    monkeypatch.setitem(sys.modules, "deepnetsbench.splits.fetch", None)  # import fails
    result = CliRunner().invoke(main, ["download", "--from", str(archive), "--root", str(tmp_path)])
    assert result.exit_code == 0, result.output
    assert "split fetcher" in result.output and "not available" in result.output
