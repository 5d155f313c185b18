"""download_file against a local HTTP server: Range resume, cut connections, checksums."""

from __future__ import annotations

import hashlib
import re
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from deepnetsbench import download
from deepnetsbench.download import base_url, download_file, file_hash, url_join
from deepnetsbench.errors import BenchError

PAYLOAD = bytes(range(256)) * 4096 + b"tail"  # ~1 MiB, not a multiple of the chunk size


class _Handler(BaseHTTPRequestHandler):
    """Serves ``server.files``; honours Range unless ``server.ignore_range``; the first
    ``server.cuts`` responses stop after ``server.cut_at`` bytes of the body."""

    def log_message(self, *args) -> None:  # keep test output quiet
        pass

    def do_GET(self) -> None:
        srv = self.server
        srv.log.append((self.path, self.headers.get("Range")))
        data = srv.files.get(self.path)
        if data is None:
            self.send_error(404)
            return
        start = 0
        m = re.match(r"bytes=(\d+)-$", self.headers.get("Range") or "")
        if m and not srv.ignore_range:
            start = int(m.group(1))
            if start >= len(data):
                self.send_response(416)
                self.send_header("Content-Range", f"bytes */{len(data)}")
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            self.send_response(206)
            self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
        else:
            self.send_response(200)
        body = data[start:]
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if srv.cuts > 0:
            srv.cuts -= 1
            self.wfile.write(body[: srv.cut_at])
            self.wfile.flush()
            self.close_connection = True
            return
        self.wfile.write(body)


@pytest.fixture
def server(monkeypatch):
    monkeypatch.setattr(download, "BACKOFF", 0.0)
    srv = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    srv.files, srv.log, srv.cuts, srv.cut_at, srv.ignore_range = {}, [], 0, 0, False
    thread = threading.Thread(target=srv.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    srv.url = f"http://127.0.0.1:{srv.server_address[1]}"
    yield srv
    srv.shutdown()
    srv.server_close()


def _sha(b: bytes) -> str:
    return hashlib.sha256(b).hexdigest()


def test_plain_download_verifies_and_renames(server, tmp_path: Path):
    server.files["/a.bin"] = PAYLOAD
    dest = download_file(f"{server.url}/a.bin", tmp_path / "a.bin", sha256=_sha(PAYLOAD),
                         md5=hashlib.md5(PAYLOAD).hexdigest(), progress=True)
    assert dest.read_bytes() == PAYLOAD
    assert not (tmp_path / "a.bin.part").exists()


def test_resumes_after_cut_connection(server, tmp_path: Path):
    server.files["/a.bin"] = PAYLOAD
    server.cuts, server.cut_at = 2, 300_000
    dest = download_file(f"{server.url}/a.bin", tmp_path / "a.bin", sha256=_sha(PAYLOAD),
                         progress=False, retries=3)
    assert dest.read_bytes() == PAYLOAD
    ranges = [r for _, r in server.log]
    assert ranges == [None, "bytes=300000-", "bytes=600000-"]


def test_resumes_existing_part_file(server, tmp_path: Path):
    server.files["/a.bin"] = PAYLOAD
    (tmp_path / "a.bin.part").write_bytes(PAYLOAD[:1000])
    download_file(f"{server.url}/a.bin", tmp_path / "a.bin", sha256=_sha(PAYLOAD), progress=False)
    assert (tmp_path / "a.bin").read_bytes() == PAYLOAD
    assert server.log == [("/a.bin", "bytes=1000-")]


def test_server_ignoring_range_restarts_from_zero(server, tmp_path: Path):
    server.files["/a.bin"] = PAYLOAD
    server.ignore_range = True
    (tmp_path / "a.bin.part").write_bytes(b"garbage that must not stay in front")
    download_file(f"{server.url}/a.bin", tmp_path / "a.bin", sha256=_sha(PAYLOAD), progress=False)
    assert (tmp_path / "a.bin").read_bytes() == PAYLOAD


def test_complete_part_gets_416_and_is_accepted(server, tmp_path: Path):
    server.files["/a.bin"] = PAYLOAD
    (tmp_path / "a.bin.part").write_bytes(PAYLOAD)
    download_file(f"{server.url}/a.bin", tmp_path / "a.bin", sha256=_sha(PAYLOAD), progress=False)
    assert (tmp_path / "a.bin").read_bytes() == PAYLOAD


def test_stale_part_with_wrong_bytes_is_redownloaded_once(server, tmp_path: Path):
    server.files["/a.bin"] = PAYLOAD
    (tmp_path / "a.bin.part").write_bytes(b"x" * 5000)  # right length prefix, wrong content
    download_file(f"{server.url}/a.bin", tmp_path / "a.bin", sha256=_sha(PAYLOAD), progress=False)
    assert (tmp_path / "a.bin").read_bytes() == PAYLOAD
    assert [r for _, r in server.log] == ["bytes=5000-", None]


def test_md5_mismatch_deletes_part_and_names_the_file(server, tmp_path: Path):
    server.files["/a.bin"] = PAYLOAD
    with pytest.raises(BenchError) as info:
        download_file(f"{server.url}/a.bin", tmp_path / "a.bin", md5="0" * 32, progress=False)
    msg = str(info.value)
    assert "a.bin" in msg and "0" * 32 in msg and hashlib.md5(PAYLOAD).hexdigest() in msg
    assert info.value.fix
    assert not (tmp_path / "a.bin").exists() and not (tmp_path / "a.bin.part").exists()


def test_failed_download_never_leaves_dest(server, tmp_path: Path):
    server.files["/a.bin"] = PAYLOAD
    server.cuts, server.cut_at = 10, 1000
    with pytest.raises(BenchError, match="failed after 3 attempt"):
        download_file(f"{server.url}/a.bin", tmp_path / "a.bin", progress=False, retries=2)
    assert not (tmp_path / "a.bin").exists()
    assert (tmp_path / "a.bin.part").stat().st_size == 3000  # kept for the next run
    server.cuts = 0
    download_file(f"{server.url}/a.bin", tmp_path / "a.bin", sha256=_sha(PAYLOAD), progress=False)
    assert (tmp_path / "a.bin").read_bytes() == PAYLOAD


def test_present_file_with_right_hash_is_not_downloaded(server, tmp_path: Path):
    (tmp_path / "a.bin").write_bytes(PAYLOAD)
    download_file(f"{server.url}/a.bin", tmp_path / "a.bin", sha256=_sha(PAYLOAD), progress=False)
    assert server.log == []


def test_present_file_with_wrong_hash_is_replaced(server, tmp_path: Path):
    server.files["/a.bin"] = PAYLOAD
    (tmp_path / "a.bin").write_bytes(b"old")
    download_file(f"{server.url}/a.bin", tmp_path / "a.bin", sha256=_sha(PAYLOAD), progress=False)
    assert (tmp_path / "a.bin").read_bytes() == PAYLOAD


def test_http_404_is_a_bench_error(server, tmp_path: Path):
    with pytest.raises(BenchError, match="HTTP 404"):
        download_file(f"{server.url}/missing.bin", tmp_path / "m.bin", progress=False)
    assert server.log == [("/missing.bin", None)]  # client errors are not retried


def test_bad_url_and_file_url(tmp_path: Path):
    with pytest.raises(BenchError, match="not an http"):
        download_file("ftp.example.org/x", tmp_path / "x", progress=False)
    src = tmp_path / "src.bin"
    src.write_bytes(PAYLOAD)
    dest = download_file(src.as_uri(), tmp_path / "out" / "x.bin", sha256=_sha(PAYLOAD), progress=False)
    assert dest.read_bytes() == PAYLOAD


def test_file_hash_and_base_url(tmp_path: Path, monkeypatch):
    p = tmp_path / "f"
    p.write_bytes(PAYLOAD)
    assert file_hash(p) == _sha(PAYLOAD)
    assert file_hash(p, "md5", chunk=1000) == hashlib.md5(PAYLOAD).hexdigest()
    monkeypatch.delenv("DEEPNETS_BENCH_URL_DEEPNETS1M", raising=False)
    assert base_url("deepnets1m", "https://a/b/") == "https://a/b"
    monkeypatch.setenv("DEEPNETS_BENCH_URL_DEEPNETS1M", "http://mirror/x")
    assert base_url("deepnets1m", "https://a/b") == "http://mirror/x"
    monkeypatch.setenv("DEEPNETS_BENCH_URL_FASHION_MNIST", "http://m2")
    assert base_url("fashion-mnist", "") == "http://m2"
    assert url_join("http://m/", "/a/", "b.h5") == "http://m/a/b.h5"


def test_wrong_range_from_server_restarts_cleanly(server, tmp_path: Path, monkeypatch):
    server.files["/a.bin"] = PAYLOAD
    original = _Handler.do_GET

    def shifted(self):  # first ranged request gets a different range than asked
        if self.headers.get("Range") and not getattr(self.server, "shifted", False):
            self.server.shifted = True
            self.server.log.append((self.path, self.headers.get("Range")))
            self.send_response(206)
            self.send_header("Content-Range", f"bytes 10-{len(PAYLOAD) - 1}/{len(PAYLOAD)}")
            self.send_header("Content-Length", str(len(PAYLOAD) - 10))
            self.end_headers()
            self.wfile.write(PAYLOAD[10:])
            return
        original(self)

    monkeypatch.setattr(_Handler, "do_GET", shifted)
    (tmp_path / "a.bin.part").write_bytes(PAYLOAD[:500])
    download_file(f"{server.url}/a.bin", tmp_path / "a.bin", sha256=_sha(PAYLOAD), progress=False)
    assert (tmp_path / "a.bin").read_bytes() == PAYLOAD
    assert [r for _, r in server.log] == ["bytes=500-", None]
