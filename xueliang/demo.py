"""``xueliang demo``: the whole pipeline in one process on the embedded defaults.

Camera (scene generator, looping) → ingest → detector (ONNX Runtime, the shipped
model) → dispatch (SQLite) → operator API and console. Nothing to install beyond the
package, no broker, no database server. Prints the console URL and demo logins.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from xueliang.dispatch.store import Store

import importlib.util
import logging
import os
import secrets
import threading
import time
from pathlib import Path

from xueliang.config import Settings, load_config, parse_config

log = logging.getLogger("xueliang.demo")

DEMO_PASSWORD = "xueliang-demo"
REAL_CLIP = Path("/usr/share/doc/opencv-doc/examples/data/vtest.avi")  # real CCTV, Debian's opencv-doc
DEMO_USERS = [  # username, role, centre
    ("village", "operator", "dajiaqiao"),
    ("township", "supervisor", "anchang"),
    ("county", "supervisor", "keqiao"),
    ("engineer", "engineer", "keqiao"),
    ("admin", "admin", "shaoxing"),
]


def package_dir(name: str) -> Path:
    spec = importlib.util.find_spec(name)
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError(f"package {name} is not installed")
    # namespace packages may list placeholder entries (editable installs): take the real folder
    return next(Path(p) for p in spec.submodule_search_locations if Path(p).is_dir())


def demo_settings(workdir: Path) -> Settings:
    """The built-in demo configuration with its paths filled in."""
    env = dict(os.environ)
    env.setdefault("XL_JWT_SECRET", secrets.token_urlsafe(32))
    env["XL_DEMO_SCENARIO"] = str(package_dir("xueliang.scenes") / "scenarios" / "demo.yaml")
    models = package_dir("xueliang.detector") / "models"
    env["XL_DEMO_MODEL"] = str(models / "xueliang-yolo-n.onnx")
    env["XL_DEMO_MODELS"] = str(models)
    env.setdefault("XL_DEMO_REAL_CLIP", str(REAL_CLIP))
    env["XL_DEMO_WORKDIR"] = str(workdir.resolve())
    text = Path(__file__).with_name("demo.yaml").read_text(encoding="utf-8")
    settings = parse_config(text, "xueliang/demo.yaml", env=env)
    return with_scenario_geometry(without_missing_clips(settings))


def without_missing_clips(settings: Settings) -> Settings:
    """File cameras whose clip is not installed are left out, with a log line that says how to get it."""
    from xueliang.config.cameras import FileSource

    kept = []
    for cam in settings.cameras:
        if isinstance(cam.source, FileSource) and not cam.source.path.is_file():
            log.warning(
                "demo camera %s left out: %s is missing (Debian package opencv-doc; scripts/setup.sh demo installs it)",
                cam.id,
                cam.source.path,
            )
            continue
        kept.append(cam)
    return settings.model_copy(update={"cameras": kept})


def with_scenario_geometry(settings: Settings) -> Settings:
    """Scene cameras take their zones, lines and rules from the scenario file unless the config gives some."""
    from xueliang.config.cameras import SceneSource
    from xueliang.scenes.scenario import load_scenario

    cameras = []
    for cam in settings.cameras:
        if isinstance(cam.source, SceneSource) and not cam.rules:
            scenario = load_scenario(cam.source.scenario)
            update = {"zones": scenario.camera.zones, "lines": scenario.camera.lines, "rules": scenario.camera.rules}
            cameras.append(cam.model_copy(update=update))
        else:
            cameras.append(cam)
    return settings.model_copy(update={"cameras": cameras})


def _ensure_demo_users(store: Store) -> None:
    from xueliang.api.users import create_user

    for username, role, centre in DEMO_USERS:
        create_user(store, username, DEMO_PASSWORD, role, centre, exist_ok=True)


def run_demo(
    port: int = 8000, workdir: Path = Path("var/demo"), duration_s: float | None = None, config_path: str | None = None
) -> int:
    from xueliang.api.app import create_app, make_server
    from xueliang.bus import make_bus
    from xueliang.contracts import topic_specs
    from xueliang.detector.worker import DetectorWorker
    from xueliang.dispatch.store import Store
    from xueliang.dispatch.worker import Dispatcher
    from xueliang.ingest.worker import IngestWorker
    from xueliang.runtime import Lifecycle

    workdir.mkdir(parents=True, exist_ok=True)
    settings = with_scenario_geometry(load_config(config_path)) if config_path else demo_settings(workdir)
    settings.detector.snapshot_dir.mkdir(parents=True, exist_ok=True)

    bus = make_bus(settings.bus)
    bus.ensure_topics(topic_specs(settings.bus.topics, settings.bus.frame_partitions))
    store = Store.from_url(settings.store.url)
    store.migrate()
    _ensure_demo_users(store)

    app = create_app(settings, store)
    # one /metrics for the whole demo: every stage's metrics, the ops collectors and the database gauges
    from xueliang.dispatch.metrics import register_store_collector
    from xueliang.ops.exporter import install_collectors

    install_collectors(settings, bus)
    register_store_collector(store)
    server = make_server(app, "127.0.0.1", port, log_level="warning")

    def serve_api(stop: threading.Event) -> None:
        thread = threading.Thread(target=server.run, name="uvicorn", daemon=True)
        thread.start()
        stop.wait()
        server.should_exit = True
        thread.join(10)

    life = Lifecycle()
    # data flows one way; start downstream first so nothing upstream waits on it
    life.add("api", serve_api)
    life.add("dispatch", Dispatcher(settings, bus, store).run)
    life.add("detect", DetectorWorker(settings, bus).run)
    life.add("ingest", IngestWorker(settings, bus).run)
    life.install_signal_handlers()
    life.start()
    if duration_s is not None:
        threading.Timer(duration_s, life.stop.set).start()

    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while not server.started and time.monotonic() < deadline and not life.stop.is_set():
        time.sleep(0.1)
    print(
        f"\nXueliang demo running: console {url}/  ·  API docs {url}/docs  ·  metrics {url}/metrics\n"
        f"  incidents: {url}/api/v1/incidents (bearer token from POST {url}/api/v1/auth/token)\n"
        f"  logins (password {DEMO_PASSWORD!r}): " + ", ".join(f"{u} ({r}@{c})" for u, r, c in DEMO_USERS) + "\n"
        f"  data in {workdir.resolve()}  ·  Ctrl-C to stop\n",
        flush=True,
    )
    return life.join()
