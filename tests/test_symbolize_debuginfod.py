"""The debuginfod client against a tiny local HTTP server: an answer larger than DEBUGINFOD_MAXSIZE is
refused while it streams (or from its Content-Length), nothing of it reaches the cache, and memory
stays small whatever the server sends."""

from __future__ import annotations

import http.server
import threading
import tracemalloc
from collections.abc import Iterator
from pathlib import Path

import pytest

from splitdebug.symbolize.debuginfod import fetch_debuginfo

BUILD_ID = "ab" * 20
BIG = 64 << 20  # what the hostile server sends
LIMIT = 1 << 20


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.0"  # the body ends when the connection closes: no length needed

    def do_GET(self) -> None:  # noqa: N802 (http.server's name)
        kind = self.path.split("/")[1]
        self.send_response(200)
        if kind == "declared":
            self.send_header("Content-Length", str(BIG))
        self.end_headers()
        size = 4096 if kind == "small" else BIG
        chunk = b"\0" * (1 << 16)
        try:
            for _ in range(0, size, len(chunk)):
                self.wfile.write(chunk[:size])
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client gave up, as it should

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture()
def server() -> Iterator[str]:
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}"
    finally:
        httpd.shutdown()
        httpd.server_close()


@pytest.mark.parametrize("kind", ["streamed", "declared"])
def test_an_oversized_answer_is_refused_and_not_cached(server: str, kind: str, tmp_path: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DEBUGINFOD_MAXSIZE", str(LIMIT))
    tracemalloc.start()
    try:
        found, reason = fetch_debuginfo(BUILD_ID, (f"{server}/{kind}",), tmp_path / "cache")
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert found is None
    assert f"DEBUGINFOD_MAXSIZE={LIMIT}" in reason and "\n" not in reason, reason
    assert [p for p in (tmp_path / "cache").rglob("*") if p.is_file()] == []  # no entry, no temporary left
    assert peak < 8 * LIMIT, peak  # streamed, never held whole


def test_an_answer_within_the_limit_is_cached(server: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DEBUGINFOD_MAXSIZE", str(LIMIT))
    found, reason = fetch_debuginfo(BUILD_ID, (f"{server}/small",), tmp_path / "cache")
    assert reason == "" and found == tmp_path / "cache" / BUILD_ID / "debuginfo"
    assert found.read_bytes() == b"\0" * 4096
