"""HTTP snapshot cameras: one JPEG per GET, credentials as Basic auth that never follows a redirect
to another origin."""

from __future__ import annotations

import time
from typing import Any

import cv2
import numpy as np

from xueliang.config.cameras import mask_url
from xueliang.ingest.sources.base import FrameSource, SourceError, sleep_until


def _snapshot_opener() -> Any:
    """urllib with redirects that never carry the camera's ``Authorization`` header to another origin
    (scheme, host or port): urllib's own handler copies every header to wherever the camera redirects."""
    import urllib.parse
    import urllib.request

    class SameOriginAuth(urllib.request.HTTPRedirectHandler):
        def redirect_request(self, req, fp, code, msg, headers, newurl):  # type: ignore[no-untyped-def]  # urllib's hook
            new = super().redirect_request(req, fp, code, msg, headers, newurl)
            if new is not None:
                old_o, new_o = urllib.parse.urlsplit(req.full_url), urllib.parse.urlsplit(new.full_url)
                if (old_o.scheme, old_o.hostname, old_o.port) != (new_o.scheme, new_o.hostname, new_o.port):
                    new.headers.pop("Authorization", None)
                    new.unredirected_hdrs.pop("Authorization", None)
            return new

    return urllib.request.build_opener(SameOriginAuth)


class SnapshotSource(FrameSource):
    """An HTTP snapshot URL (one JPEG per GET), polled at the camera's sample rate."""

    def __init__(self, camera_id: str, url: str, *, fps: float, timeout_s: float = 5.0) -> None:
        import base64
        import urllib.parse

        super().__init__(camera_id)
        parts = urllib.parse.urlsplit(url)
        self.masked = mask_url(url)
        self._headers: dict[str, str] = {}
        if parts.username is not None:
            token = f"{urllib.parse.unquote(parts.username)}:{urllib.parse.unquote(parts.password or '')}"
            self._headers["Authorization"] = "Basic " + base64.b64encode(token.encode()).decode()
            netloc = parts.hostname or ""
            if parts.port:
                netloc += f":{parts.port}"
            parts = parts._replace(netloc=netloc)
        self._url = urllib.parse.urlunsplit(parts)
        self.period = 1.0 / fps
        self.timeout_s = timeout_s
        self._body = b""
        self._next = 0.0

    def _fetch(self) -> bytes:
        import urllib.error
        import urllib.request

        request = urllib.request.Request(self._url, headers=self._headers)
        try:
            with _snapshot_opener().open(request, timeout=self.timeout_s) as resp:
                return bytes(resp.read())
        except (urllib.error.URLError, OSError) as exc:
            reason = getattr(exc, "reason", None) or type(exc).__name__
            raise SourceError(f"camera {self.camera_id}: snapshot {self.masked} failed: {reason}") from None

    def open(self) -> None:
        self._body = self._fetch()
        self._next = time.time()

    def grab(self) -> float | None:
        sleep_until(self._next)
        now = time.time()
        self._next = now + self.period  # never ahead of the sampler's grid (a sleep only overshoots)
        if not self._body:
            self._body = self._fetch()
        return now

    def retrieve(self) -> np.ndarray:
        body, self._body = self._body, b""
        image = cv2.imdecode(np.frombuffer(body, np.uint8), cv2.IMREAD_COLOR) if body else None
        if image is None:
            raise SourceError(f"camera {self.camera_id}: snapshot {self.masked} is not a decodable image")
        return image

    def close(self) -> None:
        self._body = b""
