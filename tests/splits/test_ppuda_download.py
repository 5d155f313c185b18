"""`download` of the official files against a local HTTP server on 127.0.0.1 serving files in
the official layout (written by our writer): md5 checks, resume, the tarball unpacked in
place, conversion into the ppuda release."""

import json
import re
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from ppuda_helpers import md5

from deepnetsbench import download
from deepnetsbench.errors import BenchError
from deepnetsbench.splits import DeepNets1M
from deepnetsbench.splits.fetch import EVAL_FILES, download_official, fetch_splits
from deepnetsbench.splits.format import file_sha256


class _Handler(BaseHTTPRequestHandler):
    """Files of ``server.folder`` under ``/deepnets1m/``, with HTTP Range support."""

    def log_message(self, *args):
        pass

    def do_GET(self):
        srv = self.server
        srv.log.append((self.path, self.headers.get("Range")))
        m = re.fullmatch(r"/deepnets1m/([\w.]+)", self.path)
        path = srv.folder / m.group(1) if m else None
        if path is None or not path.is_file():
            self.send_error(404)
            return
        data = path.read_bytes()
        start = 0
        r = re.fullmatch(r"bytes=(\d+)-", self.headers.get("Range") or "")
        if r and int(r.group(1)) < len(data):
            start = int(r.group(1))
            self.send_response(206)
            self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
        else:
            self.send_response(200)
        self.send_header("Content-Length", str(len(data) - start))
        self.end_headers()
        self.wfile.write(data[start:])


@pytest.fixture()
def server(official_folder, monkeypatch):
    monkeypatch.setattr(download, "BACKOFF", 0.0)
    srv = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    srv.folder, srv.log = official_folder(unpack=False), []
    thread = threading.Thread(target=srv.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    srv.url = f"http://127.0.0.1:{srv.server_address[1]}/deepnets1m/"
    yield srv
    srv.shutdown()
    srv.server_close()


def _sums(srv):
    return {name: md5(srv.folder / name) for name in EVAL_FILES}


def test_download_checks_md5_unpacks_and_converts(server, tmp_path):
    paths = download_official(tmp_path, server.url, progress=False, checksums=_sums(server),
                              allow_mismatch=True)
    assert [p.parent for p in paths] == [tmp_path / "ppuda"] * 6
    raw = tmp_path / "official"
    assert (raw / "deepnets1m_meta" / "deepnets1m_eval_meta.json").is_file()  # tar -xf in place
    assert md5(raw / "deepnets1m_eval.hdf5") == md5(server.folder / "deepnets1m_eval.hdf5")
    ds = DeepNets1M("test", path=paths[1])
    assert len(ds) == 3 and ds.attrs["release"] == "ppuda"
    # the same files converted by hand give the same bytes
    from deepnetsbench.splits.fetch import convert_official

    again = convert_official(raw, tmp_path / "again", allow_mismatch=True)
    assert [file_sha256(p) for p in again] == [file_sha256(p) for p in paths]
    # a second download touches nothing on the server
    n = len(server.log)
    download_official(tmp_path, server.url, progress=False, checksums=_sums(server),
                      allow_mismatch=True)
    assert len(server.log) == n


def test_partial_download_is_resumed(server, tmp_path):
    raw = tmp_path / "official"
    raw.mkdir()
    data = (server.folder / "deepnets1m_eval.hdf5").read_bytes()
    (raw / "deepnets1m_eval.hdf5.part").write_bytes(data[:1000])
    download_official(tmp_path, server.url, progress=False, checksums=_sums(server),
                      allow_mismatch=True)
    assert ("/deepnets1m/deepnets1m_eval.hdf5", "bytes=1000-") in server.log
    assert (raw / "deepnets1m_eval.hdf5").read_bytes() == data


def test_md5_mismatch_is_refused_and_nothing_is_converted(server, tmp_path):
    sums = {**_sums(server), "deepnets1m_eval.hdf5": "0" * 32}
    with pytest.raises(BenchError, match="md5"):
        download_official(tmp_path, server.url, progress=False, checksums=sums)
    assert not (tmp_path / "official" / "deepnets1m_eval.hdf5").exists()
    assert not (tmp_path / "ppuda").exists()


def test_registered_md5_is_the_default_and_the_url_is_configurable(server, tmp_path,
                                                                   monkeypatch):
    """Without checksums the official md5 of download.sh applies: our test files fail it."""
    monkeypatch.setenv("DEEPNETS_BENCH_URL_DEEPNETS1M", server.url)
    with pytest.raises(BenchError, match="expected 1f5641329271583ad068f43e1521517e"):
        fetch_splits(root=tmp_path, progress=False)
    assert server.log and server.log[0][0] == "/deepnets1m/deepnets1m_eval.hdf5"


def test_conversion_mismatch_after_download_keeps_the_files(server, tmp_path):
    with pytest.raises(BenchError, match="--allow-mismatch"):
        download_official(tmp_path, server.url, progress=False, checksums=_sums(server))
    assert (tmp_path / "official" / "deepnets1m_eval.hdf5").exists()
    report = json.loads((tmp_path / "ppuda" / "ppuda_report.json").read_text())
    assert report["verified"] is False
