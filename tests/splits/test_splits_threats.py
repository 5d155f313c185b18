"""Split files are verified by their content (docs/submitting.md, "Threat model"): a modified
file is caught even with its mtime restored, a manifest's claim is never taken for the hash,
and a read error inside HDF5 is a one-line error, also in the middle of a run."""

from __future__ import annotations

import json
import os
import shutil

import pytest

from deepnetsbench.errors import BenchError
from deepnetsbench.splits import DeepNets1M, build_split
from deepnetsbench.splits.format import HASH_ALWAYS_BYTES, file_sha256, verify_split


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    root = tmp_path_factory.mktemp("threat-splits")
    build_split("test", 12, root=root / "a", progress=False)
    build_split("test", 12, root=root / "b", seed=7, progress=False)  # another split, same size
    return root


def _copy(built, tmp_path, which: str = "a"):
    shutil.copytree(built / which / "splits", tmp_path / "splits")
    return tmp_path / "splits" / "deepnets1m_test.h5"


def test_flipped_byte_with_restored_mtime_is_detected(built, tmp_path):
    path = _copy(built, tmp_path)
    DeepNets1M("test", root=tmp_path)  # verified once: the manifest records its stat key
    st = path.stat()
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x01
    path.write_bytes(bytes(data))
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))  # same size, same mtime
    assert path.stat().st_size == st.st_size and path.stat().st_mtime_ns == st.st_mtime_ns
    with pytest.raises(BenchError, match="corrupt or was modified"):
        DeepNets1M("test", root=tmp_path)


def test_manifest_claim_is_not_trusted(built, tmp_path):
    """Another split's file under the official name, with the official hash in its
    manifest: the file is hashed, so the claim is caught; a manifest that tells the truth
    about the other file gives the other file's hash, which no release knows."""
    official = DeepNets1M("test", root=built / "a")
    path = _copy(built, tmp_path, "b")
    manifest = tmp_path / "splits" / "manifest.json"
    entries = json.loads(manifest.read_text())
    entries[path.name]["sha256"] = official.sha256  # the lie
    entries[path.name]["size"] = path.stat().st_size
    manifest.write_text(json.dumps(entries))
    with pytest.raises(BenchError, match="does not match the manifest"):
        DeepNets1M("test", root=tmp_path)
    entries[path.name]["sha256"] = file_sha256(path)  # the truth
    manifest.write_text(json.dumps(entries))
    ds = DeepNets1M("test", root=tmp_path)
    assert ds.sha256 == file_sha256(path) != official.sha256
    from deepnetsbench.eval.runner import open_split

    assert open_split("test", tmp_path).info.sha256 == file_sha256(path)


def test_large_files_use_a_full_stat_key(built, tmp_path, monkeypatch):
    """Above HASH_ALWAYS_BYTES (the TRAIN file) the hash is cached under size, mtime, inode
    and ctime: restoring the mtime after an edit changes the ctime, so it hashes again."""
    import deepnetsbench.splits.format as fmt

    path = _copy(built, tmp_path)
    monkeypatch.setattr(fmt, "HASH_ALWAYS_BYTES", 1)
    assert HASH_ALWAYS_BYTES > 1
    calls = []
    real = fmt.file_sha256
    monkeypatch.setattr(fmt, "file_sha256", lambda p, *a: calls.append(p) or real(p, *a))
    verify_split(path, "test")
    verify_split(path, "test")
    assert len(calls) == 1  # unchanged: trusted by its stat key
    verify_split(path, "test", full=True)
    assert len(calls) == 2  # --verify hashes anyway
    st = path.stat()
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x01
    with open(path, "r+b") as f:  # in place: same inode
        f.write(bytes(data))
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))
    with pytest.raises(BenchError, match="corrupt or was modified"):
        verify_split(path, "test")


def test_read_error_mid_run_is_one_line(built, tmp_path):
    path = _copy(built, tmp_path)
    data = bytearray(path.read_bytes())
    for i in range(len(data) // 3, len(data) - 4096, 97):  # damage the chunked data
        data[i] ^= 0xFF
    path.write_bytes(bytes(data))
    errors = []
    try:
        ds = DeepNets1M("test", root=tmp_path, verify=False)  # as if opened before the damage
        for i in range(len(ds)):
            try:
                _ = ds[i].spec  # decoding reads the chunked arrays
            except BenchError as err:
                errors.append(str(err))
    except BenchError as err:
        errors.append(str(err))
    assert errors, "the damage went unnoticed"
    assert all("corrupt or unreadable" in e and "\n" not in e for e in errors), errors[:2]
    with pytest.raises(BenchError, match="corrupt or was modified"):
        DeepNets1M("test", root=tmp_path)  # and with verification, before anything runs


def test_episode_suites_are_verified_by_content(tmp_path):
    """Episode-suite files get the same check (they are small: hashed every time)."""
    from deepnetsbench.data import synthetic_dataset
    from deepnetsbench.episodes import EpisodeConfig, build_suite
    from deepnetsbench.episodes.suite import EpisodeSuite

    src = synthetic_dataset(20, 12, n_train=600, n_test=200, seed=3)
    src.name = "synsrc"
    cfg = EpisodeConfig(kind="episodes-intra", ways=4, shots=3, queries=3, train_episodes=4,
                        val_episodes=2, test_episodes=3, pools=(12, 4, 4), image_size=16,
                        targets=("convnet4",))
    path = build_suite(cfg, src, out=tmp_path / "suites" / "intra.h5")
    suite = EpisodeSuite(path, datasets=[src])
    assert suite.sha256 == file_sha256(path)
    st = path.stat()
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x01
    path.write_bytes(bytes(data))
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))
    with pytest.raises(BenchError, match="corrupt or was modified"):
        EpisodeSuite(path, datasets=[src])
