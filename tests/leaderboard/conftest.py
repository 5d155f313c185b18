"""Fixtures for the leaderboard tests: a temporary releases file and results-file makers."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from example_releases import (  # the helper module beside this file
    DATA_PINS,
    DATA_SHA,
    SPLIT_SHA,
    WIDE_SHA,
    N,
    episode_pins,
    register_examples,
    split_pins,
)

from deepnetsbench.releases import ENV_RELEASES
from deepnetsbench.results import Results, aggregate, example_results, save_results

__all__ = ["DATA_PINS", "DATA_SHA", "N", "SPLIT_SHA", "WIDE_SHA", "episode_pins",
           "register_examples", "split_pins"]


@pytest.fixture
def releases(tmp_path, monkeypatch) -> Path:
    """A releases file knowing test/wide (v1, 12 architectures) and cifar10; also set as the
    default."""
    path = register_examples(tmp_path / "releases.json")
    monkeypatch.setenv(ENV_RELEASES, str(path))
    return path


def make_results(method: str = "ghn", n: int = 12, seed: int = 0, split: str = "test",
                 **kw) -> Results:
    sha = {"test": SPLIT_SHA, "wide": WIDE_SHA}.get(split, "d" * 64)
    return example_results(method, n=n, seed=seed, split=split, split_sha256=sha,
                           dataset_sha256=DATA_SHA, **kw)


def write_results(path: Path, res: Results | dict) -> Path:
    """Write a Results, or a raw dict (for files the schema may refuse)."""
    if isinstance(res, Results):
        return save_results(res, path)
    path.write_text(json.dumps(res))
    return path


def edited(res: Results, mutate, reaggregate: bool = True) -> dict:
    """The JSON dict of ``res`` after ``mutate(dict)``; aggregates recomputed unless told not."""
    data = res.model_dump(mode="json")
    mutate(data)
    if reaggregate:
        fresh = Results.model_validate(data)
        data["aggregates"] = aggregate(fresh.records).model_dump(mode="json")
    return data


@pytest.fixture
def make():
    return make_results


@pytest.fixture
def write():
    return write_results


@pytest.fixture
def edit():
    return edited
