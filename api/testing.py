"""Test helpers shipped with the API: a small centre tree with users, incidents and a live server.

Used by the project's tests, the browser test and ``bench/api``::

    env = ApiEnv.create(tmp_path)             # SQLite store, migrated; app; users
    token = env.login("op-a1")
    with env.serve() as base_url: ...         # uvicorn in a thread on a free port
"""

from __future__ import annotations

import functools
import shutil
import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from xueliang.config import Settings, parse_config
from xueliang.contracts import Incident, Severity

JWT_SECRET = "test-secret-" + "k" * 40
PASSWORD = "correct-horse-battery"

SAMPLE_CONFIG = """
centres:
  id: shaoxing
  name: 绍兴市社会治理中心
  tier: city
  children:
    - id: keqiao
      name: 柯桥区综治中心
      tier: county
      children:
        - id: anchang
          name: 安昌街道综治中心
          tier: township
          children:
            - {id: dajiaqiao, name: 大家桥村, tier: village}
            - {id: xishi, name: 西市村, tier: village}
        - id: qianqing
          name: 钱清街道综治中心
          tier: township
          children:
            - {id: dongjia, name: 东江村, tier: village}
cameras:
  - id: cam-dajiaqiao-entrance
    name: 大家桥村村口
    village: dajiaqiao
    source: {type: file, path: /dev/null}
    zones: [{name: gate, label: 村口大门, polygon: [[10, 10], [200, 10], [200, 150], [10, 150]]}]
    rules: [{name: gate-intrusion, label: 村口闯入, type: intrusion, zone: gate}]
    placement: {lon: 120.4561, lat: 30.0912, azimuth_deg: 90, hfov_deg: 70, range_m: 60}
  - id: cam-dajiaqiao-pond
    name: 大家桥村池塘
    village: dajiaqiao
    source: {type: file, path: /dev/null}
    placement: {lon: 120.4570, lat: 30.0905, azimuth_deg: 300, hfov_deg: 90, range_m: 50}
  - id: cam-xishi-square
    name: 西市村广场
    village: xishi
    source: {type: file, path: /dev/null}
    placement: {lon: 120.4590, lat: 30.0920, azimuth_deg: 200, hfov_deg: 60, range_m: 70}
  - id: cam-dongjia-bridge
    name: 东江村桥头
    village: dongjia
    source: {type: file, path: /dev/null}
api:
  jwt_secret: "%s"
detector:
  snapshot_dir: "%s"
dispatch:
  merge: {window_s: 0}  # the API suites raise many incidents per camera; merging has its own tests
"""

# username -> (role, centre)
USERS: dict[str, tuple[str, str]] = {
    "op-dajiaqiao": ("operator", "dajiaqiao"),
    "op-xishi": ("operator", "xishi"),
    "sup-anchang": ("supervisor", "anchang"),
    "sup-qianqing": ("supervisor", "qianqing"),
    "sup-keqiao": ("supervisor", "keqiao"),
    "eng-keqiao": ("engineer", "keqiao"),
    "eng-xishi": ("engineer", "xishi"),
    "admin": ("admin", "shaoxing"),
}


def sample_settings(snapshot_dir: Path, *, extra: str = "") -> Settings:
    return parse_config(SAMPLE_CONFIG % (JWT_SECRET, snapshot_dir) + extra, "api-testing")


def make_incident(
    camera_id: str = "cam-dajiaqiao-entrance",
    *,
    episode: str = "1",
    rule: str = "gate-intrusion",
    rule_type: str = "intrusion",
    severity: Severity = Severity.general,
    at: datetime | None = None,
    revision: int = 0,
    with_snapshot: bool = True,
) -> Incident:
    at = at or datetime.now(UTC)
    iid = Incident.make_id(camera_id, rule, episode)
    return Incident(
        id=iid,
        camera_id=camera_id,
        rule=rule,
        rule_type=rule_type,
        severity=severity,
        zone="gate",
        class_names=["person"],
        started_at=at - timedelta(seconds=3),
        updated_at=at,
        revision=revision,
        snapshot_url=f"/snapshots/{iid}.jpg" if with_snapshot else None,
        details={"dwell_s": 3.0, "count": 1},
    )


def _scene_frame(name: str, at_s: float | None, rule: str) -> Any:
    """A rendered frame of a shipped scenario with its zones and ground-truth boxes drawn."""
    import importlib.util

    import cv2
    import numpy as np

    from xueliang.scenes.render import SceneRenderer
    from xueliang.scenes.scenario import load_scenario

    spec = importlib.util.find_spec("xueliang.scenes")
    assert spec is not None and spec.submodule_search_locations
    scenario = load_scenario(Path(next(iter(spec.submodule_search_locations))) / "scenarios" / f"{name}.yaml")
    if at_s is None:
        first = next((e.first_start_s for e in scenario.expect if e.first_start_s is not None), None)
        at_s = first + 1.0 if first is not None else scenario.duration_s / 2
    renderer = SceneRenderer(scenario, seed=3)
    frame = renderer.render_frame(int(at_s * scenario.fps))
    img = frame.image.copy()
    for zone in scenario.camera.zones:
        cv2.polylines(img, [np.array(zone.polygon, np.int32)], True, (0, 215, 255), 2)
    for box in frame.boxes:
        x1, y1, x2, y2 = (int(v) for v in box.xyxy)
        cv2.rectangle(img, (x1, y1), (x2, y2), (0, 0, 255), 2)
        cv2.putText(
            img,
            f"{box.class_name} #{box.track_id}",
            (x1, max(12, y1 - 4)),
            cv2.FONT_HERSHEY_SIMPLEX,
            0.45,
            (0, 0, 255),
            1,
            cv2.LINE_AA,
        )
    cv2.putText(img, rule, (10, 24), cv2.FONT_HERSHEY_SIMPLEX, 0.7, (255, 255, 255), 2, cv2.LINE_AA)
    return img


@functools.cache
def _template_db() -> Path:
    import tempfile

    from xueliang.dispatch.store import Store

    path = Path(tempfile.mkdtemp(prefix="xl-api-template-")) / "template.db"
    store = Store.from_url(f"sqlite:///{path}")
    store.migrate()
    with store.engine.connect() as conn:
        conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
    store.dispose()
    return path


@functools.cache
def _password_hash() -> str:
    from xueliang.api.security import hash_password

    return hash_password(PASSWORD)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class ApiEnv:
    settings: Settings
    store: Any
    app: Any
    service: Any
    clock: Callable[[], datetime] | None

    @classmethod
    def create(
        cls,
        workdir: Path,
        *,
        clock: Callable[[], datetime] | None = None,
        db_url: str | None = None,
        settings: Settings | None = None,
        users: dict[str, tuple[str, str]] | None = None,
    ) -> ApiEnv:
        from xueliang.api.app import create_app
        from xueliang.api.users import create_user
        from xueliang.dispatch.store import Store

        snapshots = workdir / "snapshots"
        snapshots.mkdir(parents=True, exist_ok=True)
        settings = settings or sample_settings(snapshots)
        if db_url is None:  # copy a migrated template: Alembic once per process, not per test
            shutil.copyfile(_template_db(), workdir / "xueliang.db")
            store = Store.from_url(f"sqlite:///{workdir}/xueliang.db")
        else:
            store = Store.from_url(db_url)
            store.migrate()
        app = create_app(settings, store, clock=clock)
        for name, (role, centre) in (USERS if users is None else users).items():
            create_user(store, name, PASSWORD, role, centre, exist_ok=True, password_hash=_password_hash())
        return cls(settings, store, app, app.state.service, clock)

    def token(self, username: str) -> str:
        from xueliang.api.deps import now_from
        from xueliang.api.security import create_token
        from xueliang.api.users import get_user

        user = get_user(self.store, username)
        assert user is not None, username
        return create_token(
            JWT_SECRET, user.username, user.role.value, user.centre_id, now=now_from(self.clock), ttl_s=3600
        )

    def headers(self, username: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token(username)}"}

    def write_snapshot(self, incident: Incident, scenario: str | None = None, at_s: float | None = None) -> Path:
        """A JPEG for the incident where the detector puts it: with ``scenario`` (a file of
        ``xueliang.scenes``), that scene's frame at ``at_s`` (default: its first expected event + 1 s)
        annotated like the detector does (zones, boxes, rule); otherwise a small synthetic image."""
        import cv2
        import numpy as np

        if scenario is not None:
            img = _scene_frame(scenario, at_s, incident.rule)
        else:
            img = np.zeros((180, 320, 3), np.uint8)
            img[:] = np.linspace(40, 120, 320, dtype=np.uint8)[None, :, None]
            cv2.rectangle(img, (120, 40), (180, 160), (0, 0, 255), 2)
            cv2.putText(img, incident.rule, (8, 20), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (255, 255, 255), 1)
        path = Path(self.settings.detector.snapshot_dir) / f"{incident.id}.jpg"
        ok, buf = cv2.imencode(".jpg", img, [cv2.IMWRITE_JPEG_QUALITY, 85])
        assert ok
        path.write_bytes(buf.tobytes())
        return path

    @contextmanager
    def serve(self, port: int | None = None) -> Iterator[str]:
        """Run the app under uvicorn in a thread; yields the base URL."""
        from xueliang.api.app import make_server

        port = port or free_port()
        server = make_server(self.app, "127.0.0.1", port, log_level="warning", timeout_graceful_shutdown=2)
        thread = threading.Thread(target=server.run, name="api-test-server", daemon=True)
        thread.start()
        deadline = time.monotonic() + 20
        while not server.started:
            if time.monotonic() > deadline or not thread.is_alive():
                raise RuntimeError("the API server did not start")
            time.sleep(0.02)
        try:
            yield f"http://127.0.0.1:{port}"
        finally:
            server.should_exit = True
            thread.join(10)


@dataclass(frozen=True)
class Sse:
    event: str
    id: str | None
    data: str


class SseReader:
    """Reads a live-feed stream in a thread; ``next(pred, timeout)`` returns the first matching event."""

    def __init__(self, url: str, headers: dict[str, str] | None = None) -> None:
        import queue

        import httpx

        self.events: queue.Queue[Sse | BaseException] = queue.Queue()
        self._client = httpx.Client(timeout=httpx.Timeout(30.0, read=None))
        self._url, self._headers = url, headers or {}
        self.status: int | None = None
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        if not self._ready.wait(10):
            raise TimeoutError("the live feed did not answer")

    def _run(self) -> None:
        try:
            with self._client.stream("GET", self._url, headers=self._headers) as r:
                self.status = r.status_code
                self._ready.set()
                if r.status_code != 200:
                    return
                data: list[str] = []
                event, eid = "message", None
                for line in r.iter_lines():
                    if line == "":
                        if data:
                            self.events.put(Sse(event, eid, "\n".join(data)))
                        event, eid, data = "message", None, []
                    elif line.startswith(":"):
                        continue
                    else:
                        key, _, value = line.partition(":")
                        value = value[1:] if value.startswith(" ") else value
                        if key == "event":
                            event = value
                        elif key == "id":
                            eid = value
                        elif key == "data":
                            data.append(value)
        except Exception as exc:  # noqa: BLE001 - surfaced to the test through the queue
            self._ready.set()
            self.events.put(exc)

    def next(self, pred: Callable[[Sse], bool] = lambda e: True, timeout: float = 5.0) -> Sse:
        import queue

        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError("no matching live-feed event")
            try:
                item = self.events.get(timeout=left)
            except queue.Empty:
                raise TimeoutError("no matching live-feed event") from None
            if isinstance(item, BaseException):
                raise item
            if pred(item):
                return item

    def join(self, timeout: float) -> bool:
        """Wait for the stream to end; True if it did."""
        self._thread.join(timeout)
        return not self._thread.is_alive()

    def close(self) -> None:
        self._client.close()
