"""The ``xueliang`` command: one entry point for every stage.

xueliang demo                       everything in one process: embedded bus + SQLite
xueliang ingest   -c config.yaml    camera stream workers
xueliang detect   -c config.yaml    YOLO detector workers
xueliang dispatch -c config.yaml    incident routing, SLA and escalation
xueliang api      -c config.yaml    operator API and web console
xueliang coverage plan ...          camera placement planning
xueliang validate-config FILE       check a configuration file and exit
xueliang topics   -c config.yaml    create the bus topics
xueliang user add -c config.yaml    create an operator account
"""

from __future__ import annotations

import argparse
import getpass
import logging
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from pydantic import ValidationError

from xueliang.about import __version__
from xueliang.config import ConfigError, Settings, StoreConfig, load_config
from xueliang.log import setup_logging

if TYPE_CHECKING:
    from collections.abc import Callable

    from xueliang.bus import Bus
    from xueliang.dispatch.store import Store
    from xueliang.runtime import Runnable

log = logging.getLogger("xueliang")
DEFAULT_CONFIG = os.environ.get("XL_CONFIG", "xueliang.yaml")


def _settings(path: str) -> Settings:
    return load_config(path)


def _bus(settings: Settings) -> Bus:
    from xueliang.bus import make_bus
    from xueliang.contracts import topic_specs

    bus = make_bus(settings.bus)
    bus.ensure_topics(topic_specs(settings.bus.topics, settings.bus.frame_partitions))
    return bus


def _store(settings: Settings, url: str | None = None) -> Store:
    from xueliang.dispatch.store import Store

    if url:  # a command-line override gets the configuration file's checks
        try:
            url = StoreConfig(url=url).url
        except ValidationError as exc:
            raise ConfigError(f"--store-url: {exc.errors()[0]['msg']}") from None
    url = url or settings.store.url
    _ensure_sqlite_dir(url)
    store = Store.from_url(url)
    store.migrate()
    return store


def _ensure_sqlite_dir(url: str) -> None:
    if url.startswith("sqlite:///") and not url.startswith("sqlite:///:memory:"):
        Path(url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)


def _metrics_server(settings: Settings, bus: Bus | None = None, store: Store | None = None) -> None:
    """Workers without the API serve /metrics on ``metrics.port``: their own metrics plus the
    ops collectors (fleet inventory, consumer lag) and, for dispatch, the database-state gauges."""
    if settings.metrics.port:
        from xueliang.dispatch.metrics import StoreCollector
        from xueliang.ops.exporter import start_metrics_server

        start_metrics_server(settings, bus, [StoreCollector(store)] if store is not None else [])
        log.info("metrics on :%d/metrics", settings.metrics.port)


def _run_stage(name: str, run: Runnable, *closers: Callable[[], object]) -> int:
    """Run one stage until SIGINT/SIGTERM, then close ``closers`` (last first)."""
    from xueliang.runtime import Lifecycle

    life = Lifecycle()
    life.add(name, run)
    for close in closers:
        life.close_after(close)
    return life.run_forever()


def cmd_ingest(args: argparse.Namespace) -> int:
    from xueliang.ingest.worker import IngestWorker

    settings = _settings(args.config)
    bus = _bus(settings)
    _metrics_server(settings, bus)
    worker = IngestWorker(settings, bus, worker_id=args.worker_id, camera_ids=args.camera or None)
    return _run_stage("ingest", worker.run, bus.close)


def cmd_detect(args: argparse.Namespace) -> int:
    from xueliang.detector.worker import DetectorWorker

    settings = _settings(args.config)
    bus = _bus(settings)
    _metrics_server(settings, bus)
    worker = DetectorWorker(settings, bus, worker_id=args.worker_id, group_id=args.group)
    return _run_stage("detect", worker.run, bus.close)


def cmd_dispatch(args: argparse.Namespace) -> int:
    from xueliang.dispatch.worker import Dispatcher

    settings = _settings(args.config)
    store = _store(settings, args.store_url)  # a bad store URL fails before any broker connection
    bus = _bus(settings)
    _metrics_server(settings, bus, store)
    log.info("dispatcher: store %s, bus %s", store.masked_url, settings.bus.type)
    dispatcher = Dispatcher(settings, bus, store, group_id=args.group)
    return _run_stage("dispatch", dispatcher.run, bus.close, store.dispose)


def cmd_api(args: argparse.Namespace) -> int:
    from xueliang.api.app import create_app, is_loopback, serve
    from xueliang.dispatch.metrics import register_store_collector
    from xueliang.ops.exporter import install_collectors

    settings = _settings(args.config)
    store = _store(settings)
    host = args.host or settings.api.host
    app = create_app(settings, store, public=not is_loopback(host))
    # the API's /metrics also carries the fleet inventory and the database-state gauges
    install_collectors(settings, None)
    register_store_collector(store)
    serve(app, host, args.port or settings.api.port, log_level="info")
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    from xueliang.demo import run_demo

    return run_demo(port=args.port, workdir=Path(args.workdir), duration_s=args.duration, config_path=args.config)


def cmd_validate(args: argparse.Namespace) -> int:
    settings = _settings(args.file)
    print(
        f"{args.file}: valid — {len(settings.cameras)} cameras, "
        f"{sum(1 for _ in settings.centres.walk())} centres, bus={settings.bus.type}"
    )
    return 0


def cmd_topics(args: argparse.Namespace) -> int:
    from xueliang.contracts import topic_specs

    settings = _settings(args.config)
    _bus(settings)
    for spec in topic_specs(settings.bus.topics, settings.bus.frame_partitions):
        print(f"{spec.name}: {spec.partitions} partitions, retention {spec.retention_ms} ms")
    return 0


def cmd_user_add(args: argparse.Namespace) -> int:
    from xueliang.api.users import UserError, create_user

    settings = _settings(args.config)
    centres = {c.id for c, _ in settings.centres.walk()}
    password = os.environ.get("XL_NEW_USER_PASSWORD") or getpass.getpass(f"password for {args.username}: ")
    try:
        create_user(_store(settings), args.username, password, args.role, args.centre, centres=centres)
    except UserError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"user {args.username} ({args.role}, {args.centre}) created")
    return 0


def cmd_coverage(argv: list[str]) -> int:
    from xueliang.coverage.cli import main as coverage_main

    return int(coverage_main(argv) or 0)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="xueliang", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--version", action="version", version=f"xueliang {__version__}")
    p.add_argument("--log-level", default=os.environ.get("XL_LOG_LEVEL", "INFO"))
    sub = p.add_subparsers(dest="command", required=True)

    def with_config(sp: argparse.ArgumentParser) -> argparse.ArgumentParser:
        sp.add_argument("-c", "--config", default=DEFAULT_CONFIG, help="configuration YAML (env XL_CONFIG)")
        sp.add_argument("--log-level", default=argparse.SUPPRESS, help="also accepted after the subcommand")
        return sp

    d = sub.add_parser("demo", help="run the whole pipeline in one process (embedded bus + SQLite)")
    d.add_argument("--port", type=int, default=int(os.environ.get("XL_DEMO_PORT", "8000")))
    d.add_argument("--workdir", default="var/demo", help="where the demo keeps its SQLite file and snapshots")
    d.add_argument(
        "--duration", type=float, default=None, help="stop after this many seconds (default: run until Ctrl-C)"
    )
    d.add_argument("-c", "--config", default=None, help="use this configuration instead of the built-in demo")
    d.set_defaults(func=cmd_demo)

    i = with_config(sub.add_parser("ingest", help="camera stream workers"))
    i.add_argument("--worker-id", default=None)
    i.add_argument("--camera", action="append", help="run only these cameras (default: share via the bus)")
    i.set_defaults(func=cmd_ingest)

    t = with_config(sub.add_parser("detect", help="YOLO detector workers"))
    t.add_argument("--worker-id", default=None)
    t.add_argument("--group", default="detector", help="consumer group (default: %(default)s)")
    t.set_defaults(func=cmd_detect)

    ds = with_config(sub.add_parser("dispatch", help="incident routing, SLA and escalation"))
    ds.add_argument("--store-url", default=None, help="override store.url")
    ds.add_argument("--group", default="dispatch", help="consumer group (default: %(default)s)")
    ds.set_defaults(func=cmd_dispatch)

    a = with_config(sub.add_parser("api", help="operator API and web console"))
    a.add_argument("--host", default=None)
    a.add_argument("--port", type=int, default=None)
    a.set_defaults(func=cmd_api)

    v = sub.add_parser("validate-config", help="validate a configuration file")
    v.add_argument("file")
    v.set_defaults(func=cmd_validate)

    with_config(sub.add_parser("topics", help="create the bus topics")).set_defaults(func=cmd_topics)

    u = sub.add_parser("user", help="manage operator accounts")
    usub = u.add_subparsers(dest="user_command", required=True)
    ua = with_config(usub.add_parser("add", help="create a user (password from XL_NEW_USER_PASSWORD or a prompt)"))
    ua.add_argument("--username", required=True)
    ua.add_argument("--role", required=True, choices=["operator", "supervisor", "engineer", "admin"])
    ua.add_argument("--centre", required=True, help="home centre id")
    ua.set_defaults(func=cmd_user_add)

    sub.add_parser("coverage", help="camera placement planning (xueliang coverage plan --help)", add_help=False)
    return p


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["coverage"]:
        setup_logging(os.environ.get("XL_LOG_LEVEL", "INFO"))
        return cmd_coverage(argv[1:])
    args = build_parser().parse_args(argv)
    setup_logging(args.log_level)
    try:
        return int(args.func(args) or 0)
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
