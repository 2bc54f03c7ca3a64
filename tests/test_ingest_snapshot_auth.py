"""The snapshot source's Basic-auth header stays with the camera: a redirect to another host gets
no credentials (issue 16 #7), a redirect on the same origin keeps them."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import cv2
import numpy as np

from xueliang.ingest.sources import SnapshotSource

JPEG = cv2.imencode(".jpg", np.zeros((24, 32, 3), np.uint8))[1].tobytes()


@contextmanager
def server(redirect_to: str | None = None) -> Iterator[tuple[str, list[str | None]]]:
    seen: list[str | None] = []

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            seen.append(self.headers.get("Authorization"))
            if redirect_to and self.path == "/snap.jpg":
                self.send_response(302)
                self.send_header("Location", redirect_to)
                self.end_headers()
                return
            self.send_response(200)
            self.send_header("Content-Type", "image/jpeg")
            self.send_header("Content-Length", str(len(JPEG)))
            self.end_headers()
            self.wfile.write(JPEG)

        def log_message(self, *args: object) -> None:
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    th = threading.Thread(target=httpd.serve_forever, daemon=True)
    th.start()
    try:
        yield f"127.0.0.1:{httpd.server_address[1]}", seen
    finally:
        httpd.shutdown()
        httpd.server_close()


def test_basic_auth_is_not_sent_across_a_redirect_to_another_host() -> None:
    with server() as (elsewhere, leaked), server(redirect_to=f"http://{elsewhere}/x.jpg") as (camera, got):
        src = SnapshotSource("cam-1", f"http://admin:Admin@123@{camera}/snap.jpg", fps=5)
        src.open()
        assert got == ["Basic YWRtaW46QWRtaW5AMTIz"]  # admin:Admin@123, to the camera itself
        assert leaked == [None], "the camera's password went to the redirect target"
        assert src.masked == f"http://***@{camera}/snap.jpg"
        src.close()


def test_basic_auth_follows_a_redirect_on_the_same_origin() -> None:
    with server(redirect_to="/other.jpg") as (camera, got):
        src = SnapshotSource("cam-1", f"http://u:p@{camera}/snap.jpg", fps=5)
        src.open()
        assert got == ["Basic dTpw", "Basic dTpw"]
        src.close()
