"""The generator must reproduce the released evaluation splits byte for byte: a change to the
space, the sampler or the format that alters a released split needs a new generator version."""

import pytest

from deepnetsbench.releases import known_split
from deepnetsbench.space.sampler import GENERATOR_VERSION
from deepnetsbench.splits import build_split
from deepnetsbench.splits.format import file_sha256


@pytest.mark.parametrize("split", ["val", "test", "wide", "deep", "dense", "bnfree"])
def test_released_split_is_reproduced(split, tmp_path):
    path = build_split(split, root=tmp_path, progress=False)
    assert known_split(split, file_sha256(path), generator_version=GENERATOR_VERSION), (
        f"{split} no longer matches its release: bump GENERATOR_VERSION and register it")
