"""Test and bench helpers for the ingest tier: real footage, a real RTSP server, small configs.

* :func:`vtest_avi` finds Debian opencv-doc's ``vtest.avi`` (768×576 pedestrians, 10 fps),
  decompressing a ``.gz`` copy if that is what the package installed.
* :func:`encode_h264` re-encodes footage with ffmpeg (cached by its arguments).
* :class:`RtspServer` runs ``deploy/rtsp/rtsp_server.py`` (GStreamer's RTSP server, under the
  system Python) on loopback; it can be stopped and restarted on the same port.
* :func:`settings_for` builds a validated :class:`~xueliang.config.Settings` around cameras.
"""

from __future__ import annotations

import gzip
import hashlib
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, Self

from xueliang.config import Settings

if TYPE_CHECKING:
    import http.server
    import threading

    import numpy as np

REPO = Path(__file__).resolve().parents[1]
RTSP_SERVER = REPO / "deploy" / "rtsp" / "rtsp_server.py"
CACHE = Path(tempfile.gettempdir()) / "xueliang-ingest-cache"
_VTEST_CANDIDATES = [
    Path("/usr/share/doc/opencv-doc/examples/data/vtest.avi"),
    Path("/usr/share/doc/opencv-doc/examples/data/vtest.avi.gz"),
]


class FootageMissing(RuntimeError):
    pass


def vtest_avi() -> Path:
    """Path of opencv-doc's vtest.avi (a decompressed cache copy if the package ships it gzipped)."""
    candidates = list(_VTEST_CANDIDATES)
    if shutil.which("dpkg"):  # the package's own file list, wherever this distribution put it
        listed = subprocess.run(
            ["dpkg", "-L", "opencv-doc"], capture_output=True, text=True, timeout=30, check=False
        ).stdout  # not installed: empty list
        candidates += [Path(p) for p in listed.splitlines() if p.endswith(("vtest.avi", "vtest.avi.gz"))]
    for path in candidates:
        if path.suffix == ".avi" and path.is_file():
            return path
        if path.suffix == ".gz" and path.is_file():
            CACHE.mkdir(parents=True, exist_ok=True)
            out = CACHE / "vtest.avi"
            if not out.is_file():
                with gzip.open(path, "rb") as src, open(out.with_suffix(".tmp"), "wb") as dst:
                    shutil.copyfileobj(src, dst)
                out.with_suffix(".tmp").rename(out)
            return out
    raise FootageMissing("opencv-doc's vtest.avi not found (apt-get install opencv-doc)")


def encode_h264(
    src: Path,
    *,
    fps: int = 25,
    gop: int = 50,
    height: int | None = None,
    loops: int = 1,
    crf: int = 23,
    preset: str = "veryfast",
    name: str | None = None,
    width: int | None = None,
    seconds: float | None = None,
) -> Path:
    """Re-encode ``src`` to H.264 mp4 at ``fps`` (frames duplicated or dropped) with a fixed GOP; cached.

    ``height`` alone keeps the aspect ratio; ``width`` and ``height`` together force the size."""
    key = hashlib.sha1(f"{src}|{fps}|{gop}|{height}|{loops}|{crf}|{preset}|{width}|{seconds}".encode()).hexdigest()[:12]
    CACHE.mkdir(parents=True, exist_ok=True)
    out = CACHE / f"{name or src.stem}-{key}.mp4"
    if out.is_file():
        return out
    vf = [f"fps={fps}"]
    if height:
        vf.append(f"scale={width or -2}:{height}:flags=bicubic")
    tmp = out.with_suffix(".part.mp4")
    cmd = [
        "ffmpeg",
        "-v",
        "error",
        "-y",
        "-stream_loop",
        str(loops - 1),
        "-i",
        str(src),
        "-vf",
        ",".join(vf),
        "-c:v",
        "libx264",
        "-preset",
        preset,
        "-crf",
        str(crf),
        "-g",
        str(gop),
        "-keyint_min",
        str(gop),
        "-sc_threshold",
        "0",
        "-bf",
        "0",
        "-pix_fmt",
        "yuv420p",
        "-an",
        *(["-t", str(seconds)] if seconds else []),
        str(tmp),
    ]
    subprocess.run(cmd, check=True, timeout=600)
    tmp.rename(out)
    return out


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class RtspServer:
    """``deploy/rtsp/rtsp_server.py`` serving ``mounts`` (name → mp4) on 127.0.0.1:``port``."""

    def __init__(self, mounts: dict[str, Path], port: int | None = None) -> None:
        self.mounts = mounts
        self.port = port or free_port()
        self.proc: subprocess.Popen[str] | None = None

    def url(self, mount: str) -> str:
        return f"rtsp://127.0.0.1:{self.port}/{mount}"

    def start(self, timeout: float = 15.0) -> Self:
        if not Path("/usr/bin/python3").exists():
            raise FootageMissing("/usr/bin/python3 (with python3-gi) is needed for the RTSP server")
        cmd = ["/usr/bin/python3", str(RTSP_SERVER), "--port", str(self.port)]
        for name, path in self.mounts.items():
            cmd += ["--mount", f"{name}={path}"]
        self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        deadline = time.monotonic() + timeout
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        if not line.startswith("READY"):
            err = self.proc.stderr.read() if self.proc.stderr else ""
            self.stop()
            raise RuntimeError(f"RTSP server did not start: {line!r} {err[-2000:]}")
        while time.monotonic() < deadline:  # the port is bound when READY prints; double-check
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", self.port)) == 0:
                    return self
            time.sleep(0.05)
        raise RuntimeError(f"RTSP server not accepting on port {self.port}")

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=5)
            for stream in (self.proc.stdout, self.proc.stderr):
                if stream is not None:
                    stream.close()
            self.proc = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


CENTRES: dict[str, Any] = {
    "id": "city",
    "name": "绍兴市",
    "tier": "city",
    "children": [
        {
            "id": "keqiao",
            "name": "柯桥区",
            "tier": "county",
            "children": [
                {
                    "id": "anchang",
                    "name": "安昌街道",
                    "tier": "township",
                    "children": [{"id": "v1", "name": "示范村", "tier": "village"}],
                }
            ],
        }
    ],
}


def settings_for(
    cameras: list[dict[str, Any]], bus: dict[str, Any] | None = None, ingest: dict[str, Any] | None = None
) -> Settings:
    """Validated settings with a one-village centre tree; cameras default to village ``v1``."""
    cams = [{"village": "v1", **c} for c in cameras]
    extra = {**({"bus": bus} if bus else {}), **({"ingest": ingest} if ingest else {})}
    return Settings.model_validate({"centres": CENTRES, "cameras": cams, **extra})


class MjpegServer:
    """A tiny HTTP MJPEG camera (``multipart/x-mixed-replace``) on loopback, like a cheap IP camera's
    ``/video.mjpg``: it streams ``frames`` (BGR arrays) round-robin at ``fps``."""

    def __init__(self, frames: list[np.ndarray], fps: float = 10.0, quality: int = 85) -> None:
        import cv2

        self.jpegs = [cv2.imencode(".jpg", f, [cv2.IMWRITE_JPEG_QUALITY, quality])[1].tobytes() for f in frames]
        self.fps = fps
        self.port = free_port()
        self._server: http.server.ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/video.mjpg"

    def start(self) -> Self:
        import http.server
        import threading

        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:  # quiet
                return None

            def do_GET(self) -> None:
                self.send_response(200)
                self.send_header("Content-Type", "multipart/x-mixed-replace; boundary=frame")
                self.end_headers()
                i = 0
                t0 = time.monotonic()
                try:
                    while True:
                        jpg = outer.jpegs[i % len(outer.jpegs)]
                        self.wfile.write(
                            b"--frame\r\nContent-Type: image/jpeg\r\n"
                            + f"Content-Length: {len(jpg)}\r\n\r\n".encode()
                            + jpg
                            + b"\r\n"
                        )
                        i += 1
                        delay = t0 + i / outer.fps - time.monotonic()
                        if delay > 0:
                            time.sleep(delay)
                except (BrokenPipeError, ConnectionResetError):
                    return  # the client went away

        self._server = http.server.ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
