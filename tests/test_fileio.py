"""Strict JSON and atomic writes (deepnetsbench/fileio.py): what strangers' files may not do,
and that a failed write leaves the old file whole."""

from __future__ import annotations

import pytest

from deepnetsbench.errors import BenchError
from deepnetsbench.fileio import atomic_write_text, loads_strict, one_line_text, read_bounded


@pytest.mark.parametrize("data, says", [
    (b'{"a": NaN}', "not strict JSON"),
    (b'{"a": Infinity}', "not strict JSON"),
    (b'{"a": 1, "a": 2}', "duplicate key 'a'"),
    (b'{"a": [1, 2', "not JSON (line 1"),
    (b'\xff\xfe{}', "not UTF-8"),
    (b"[" * 40 + b"]" * 40, "nests deeper than 32"),
])
def test_loads_strict_refuses_in_one_line(data, says):
    with pytest.raises(BenchError) as err:
        loads_strict(data, "x.json")
    assert says in err.value.what and "\n" not in str(err.value)


def test_loads_strict_reads_plain_json_and_a_bom():
    assert loads_strict('\ufeff{"a": [1, 2.5, null]}'.encode(), "x.json") == {"a": [1, 2.5, None]}


def test_read_bounded_refuses_big_files_and_folders(tmp_path):
    big = tmp_path / "big.json"
    big.write_bytes(b" " * 2048)
    with pytest.raises(BenchError, match="over the"):
        read_bounded(big, max_bytes=1024)
    assert read_bounded(big, max_bytes=4096) == b" " * 2048
    with pytest.raises(BenchError, match="is a folder"):
        read_bounded(tmp_path)
    with pytest.raises(BenchError, match="does not exist"):
        read_bounded(tmp_path / "missing.json")


def test_a_failed_atomic_write_keeps_the_old_file(tmp_path, monkeypatch):
    path = tmp_path / "board.json"
    atomic_write_text(path, "old")
    mode = path.stat().st_mode

    def crash(*args):
        raise OSError("disk full")

    monkeypatch.setattr("deepnetsbench.fileio.os.replace", crash)
    with pytest.raises(OSError):
        atomic_write_text(path, "new")
    assert path.read_text() == "old" and path.stat().st_mode == mode
    assert [p.name for p in tmp_path.iterdir()] == ["board.json"]  # no temp file left


def test_one_line_text_collapses_and_shortens():
    assert one_line_text("a\n\tb\x1b[31m") == "a b [31m"
    assert one_line_text("x" * 100, 10) == "xxxxxxx..."
