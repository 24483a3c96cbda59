"""download against a real HTTP server on 127.0.0.1: every failure is one clear line and leaves no file."""
import http.server
import os
import socket
import subprocess
import sys
import threading
import time

import pytest

from chapter4 import fetch as fetching
from tests.conftest import ROOT

NAME = "boston_housing.npz"


@pytest.fixture(scope="module")
def good(mirror):
    return (mirror / NAME).read_bytes()


class Server:
    """A scripted server: `script` is a list of responses, one per request (the last one repeats)."""

    def __init__(self, script):
        self.script, self.hits = list(script), 0
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_GET(self):
                step = server.script[min(server.hits, len(server.script) - 1)]
                server.hits += 1
                status, body, kind = step
                if kind == "stall":
                    time.sleep(3)
                    return
                self.send_response(status)
                self.send_header("Content-Length", str(len(body) * (2 if kind == "short" else 1)))
                self.send_header("Content-Type", "text/html" if kind == "html" else "application/octet-stream")
                self.end_headers()
                self.wfile.write(body)

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/datasets"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def serve():
    servers = []

    def start(*script):
        servers.append(Server(script))
        return servers[-1]
    yield start
    for s in servers:
        s.close()


def fetch(url, dest):
    return fetching.fetch(NAME, dest, url, retries=3, backoff=0.05, progress=False, timeout=1)


def test_success(serve, good, tmp_path):
    server = serve((200, good, "ok"))
    assert fetch(server.url, tmp_path).read_bytes() == good
    assert sorted(os.listdir(tmp_path)) == [NAME]


def test_500_then_success_is_retried(serve, good, tmp_path):
    server = serve((500, b"oops", "ok"), (503, b"busy", "ok"), (200, good, "ok"))
    assert fetch(server.url, tmp_path).read_bytes() == good
    assert server.hits == 3


@pytest.mark.parametrize("script,message", [
    ([(404, b"missing", "ok")], r"HTTP 404 Not Found$"),
    ([(500, b"oops", "ok")], r"HTTP 500 Internal Server Error$"),
    ([(200, b"<html><body>Sign in</body></html>", "html")], r"sha256 mismatch: expected f5538.*, got "),
    ([(200, b"", "ok")], r"sha256 mismatch: expected f5538.*, got e3b0c442"),
    ([(200, b"PK\x03\x04truncated", "short")], r"connection closed after 13 of 26 bytes"),
    ([(200, b"", "stall")], r"timed out"),
], ids=["404", "500-every-time", "html-page", "empty", "truncated", "stalled"])
def test_failures_leave_nothing(serve, tmp_path, script, message):
    server = serve(*script)
    with pytest.raises(fetching.DownloadError, match=message):
        fetch(server.url, tmp_path)
    assert os.listdir(tmp_path) == []
    assert server.hits == (1 if "404" in message or "sha256" in message else 3)


def test_connection_refused(tmp_path):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]                          # closed again: nothing listens there
    with pytest.raises(fetching.DownloadError, match="Connection refused"):
        fetch(f"http://127.0.0.1:{port}", tmp_path)
    assert os.listdir(tmp_path) == []


def stage(task, cwd, env):
    env = {**{k: v for k, v in os.environ.items() if k != "DATASETS_MIRROR"}, **env,
           "PYTHONPATH": str(ROOT)}
    return subprocess.run([sys.executable, "-m", "stages.download", task], cwd=cwd, env=env,
                          capture_output=True, text=True)


def test_mirror_file_with_one_byte_changed(mirror, tmp_path):
    bad = tmp_path / "mirror"
    bad.mkdir()
    data = bytearray((mirror / NAME).read_bytes())
    data[1000] ^= 1
    (bad / NAME).write_bytes(data)
    proc = stage("housing", tmp_path, {"DATASETS_MIRROR": str(bad)})
    assert proc.returncode != 0
    [line] = proc.stderr.strip().splitlines()
    assert line.startswith(f"download@housing: {NAME}: sha256 mismatch: expected "
                           "f553886a1f8d56431e820c5b82552d9d95cfcb96d1e678153f8839538947dff5, got ")
    assert not any(p.is_file() for p in (tmp_path / "data").rglob("*"))


def test_no_network_no_mirror_says_how_to_work_offline(tmp_path):
    # An unresolvable host stands in for "no network" on any machine.
    proc = subprocess.run(
        [sys.executable, "-c", "import sys; from stages import download; from chapter4 import tasks; "
         "tasks.KERAS_DATASETS_URL = 'http://storage.invalid/'; download.main('housing')"],
        cwd=tmp_path, env={**os.environ, "PYTHONPATH": str(ROOT), "DATASETS_MIRROR": ""},
        capture_output=True, text=True)
    assert proc.returncode != 0
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith("download@housing: http://storage.invalid/boston_housing.npz: ")
    assert "set DATASETS_MIRROR to a folder or base URL" in last
    assert not any(p.is_file() for p in (tmp_path / "data").rglob("*"))


def test_mirror_as_base_url(serve, good, tmp_path):
    server = serve((200, good, "ok"))
    proc = stage("housing", tmp_path, {"DATASETS_MIRROR": server.url})
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "data/raw/housing" / NAME).read_bytes() == good


def test_fill_mirror_fetches_exactly_what_is_missing_or_wrong(mirror, tmp_path, monkeypatch):
    """CI's cached folder (chapter4/fetch.py fill_mirror): a file matching its pin stays, a missing one and one
    with a changed byte come from the canonical URL (here a server on 127.0.0.1), and a failure is one line."""
    from chapter4 import tasks
    asked = []

    class Files(http.server.BaseHTTPRequestHandler):
        def log_message(self, *args):
            pass

        def do_GET(self):
            name = self.path.rsplit("/", 1)[-1]
            asked.append(name)
            body = (mirror / name).read_bytes() if name != "broken" else b""
            self.send_response(200 if body else 404)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Files)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    try:
        monkeypatch.setattr(tasks, "KERAS_DATASETS_URL", f"http://127.0.0.1:{httpd.server_address[1]}/datasets/")
        folder = tmp_path / "cache"
        folder.mkdir()
        names = sorted(tasks.SHA256)
        (folder / names[0]).write_bytes((mirror / names[0]).read_bytes())            # good: kept
        changed = bytearray((mirror / names[1]).read_bytes())
        changed[-1] ^= 1
        (folder / names[1]).write_bytes(bytes(changed))                               # one byte changed
        fetching.fill_mirror(folder)
        assert sorted(asked) == names[1:]
        assert {p.name: fetching.io.sha256(p) for p in folder.iterdir()} == tasks.SHA256
        monkeypatch.setitem(tasks.SHA256, "broken", "0" * 64)                          # a file the server lacks
        with pytest.raises(SystemExit, match=r"^datasets: .*broken.*404"):
            fetching.fill_mirror(folder)
        assert not (folder / "broken").exists() and sorted(p.name for p in folder.iterdir()) == names
    finally:
        httpd.shutdown()
        httpd.server_close()
