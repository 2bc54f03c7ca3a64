#!/usr/bin/python3
"""A tiny RTSP server on loopback for tests and demos (GStreamer's gst-rtsp-server).

Runs with the *system* Python (``/usr/bin/python3``), which has PyGObject and the
GStreamer introspection data (Debian: python3-gi, gir1.2-gst-rtsp-server-1.0,
gstreamer1.0-plugins-base/good/bad/ugly). It serves an H.264 file (mp4/mkv, e.g. one
pre-encoded with ffmpeg from opencv-doc's vtest.avi) at ``rtsp://HOST:PORT/<mount>``,
paced in real time, over RTP/UDP or RTP-over-RTSP (TCP interleaved). Each client
gets its own pipeline from the file's start; at the file's end the stream ends
(encode a long enough file, e.g. ``ffmpeg -stream_loop N``; clients reconnect).

    /usr/bin/python3 deploy/rtsp/rtsp_server.py --port 8554 --mount cam1=clip.mp4

Prints ``READY rtsp://HOST:PORT`` on stdout once it listens.
"""

from __future__ import annotations

import argparse
import signal
import sys

import gi

gi.require_version("Gst", "1.0")
gi.require_version("GstRtspServer", "1.0")
from gi.repository import GLib, Gst, GstRtspServer


class FileFactory(GstRtspServer.RTSPMediaFactory):
    def __init__(self, path: str) -> None:
        super().__init__()
        self.path = path
        self.set_shared(False)

    def do_create_element(self, url):
        demux = "matroskademux" if self.path.endswith((".mkv", ".webm")) else "qtdemux"
        launch = (
            f"( filesrc location={self.path} ! {demux} ! h264parse config-interval=-1 "
            f"! rtph264pay name=pay0 pt=96 config-interval=-1 )"
        )
        return Gst.parse_launch(launch)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=8554)
    ap.add_argument("--mount", action="append", required=True, help="NAME=PATH to an H.264 mp4/mkv")
    args = ap.parse_args()
    Gst.init(None)
    server = GstRtspServer.RTSPServer()
    server.set_address(args.host)
    server.set_service(str(args.port))
    mounts = server.get_mount_points()
    for spec in args.mount:
        name, _, path = spec.partition("=")
        if not path:
            ap.error(f"--mount {spec!r}: expected NAME=PATH")
        mounts.add_factory(f"/{name}", FileFactory(path))
    if server.attach(None) == 0:
        print(f"cannot listen on {args.host}:{args.port}", file=sys.stderr)
        return 1
    loop = GLib.MainLoop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        GLib.unix_signal_add(GLib.PRIORITY_DEFAULT, sig, loop.quit)
    print(f"READY rtsp://{args.host}:{args.port}", flush=True)
    loop.run()
    return 0


if __name__ == "__main__":
    sys.exit(main())
