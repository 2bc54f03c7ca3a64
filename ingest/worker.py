"""The ingest worker: runs camera loops, publishes frames, health and camera-fault incidents.

Which cameras a worker runs:

* ``camera_ids`` given: exactly those (static assignment);
* the embedded bus (one process): every enabled camera;
* Kafka: cameras are shared among all running workers by Kafka's group membership,
  without a coordinator of our own. The compacted camera-registry topic has (at
  least) one partition per camera; the enabled cameras, sorted by id, map to its
  partitions in order (camera *i* → partition *i* mod *P*). Every worker subscribes
  to the registry in group ``ingest`` and runs the cameras of the partitions Kafka
  assigns it: kill a worker and, after the session timeout, its partitions (and
  cameras) move to the survivors; start one and load spreads. On a rebalance the
  worker stops the cameras it lost before starting the ones it gained.

Frames of camera *i* go to partition *i* mod (frames partitions) of the frames topic
(explicit, so a handful of cameras spread evenly over the detectors).
"""

from __future__ import annotations

import logging
import os
import socket
import threading

from xueliang.bus.base import Bus, BusError, Consumer
from xueliang.bus.memory import MemoryBus
from xueliang.config import Settings
from xueliang.config.cameras import CameraConfig
from xueliang.contracts import (
    CameraAssignment,
    CameraHealth,
    Incident,
    TopicSpec,
    topic_specs,
)
from xueliang.ingest import metrics
from xueliang.ingest.camera import CameraRunner
from xueliang.ingest.health import HealthTracker
from xueliang.ingest.publisher import Publisher
from xueliang.retry import Backoff

log = logging.getLogger(__name__)

GROUP_ID = "ingest"


class IngestWorker:
    def __init__(
        self,
        settings: Settings,
        bus: Bus,
        *,
        worker_id: str | None = None,
        camera_ids: list[str] | None = None,
        share: bool | None = None,
        max_buffered_frames: int | None = None,
        max_in_flight: int | None = None,
        tick_s: float | None = None,
    ) -> None:
        """``share``: use group membership (default: only on Kafka and without ``camera_ids``).
        ``max_buffered_frames`` + ``max_in_flight`` bound the frames this process holds for the bus
        (default: the ``ingest`` section of the configuration, as is ``tick_s``)."""
        cfg = settings.ingest
        self.settings = settings
        self.bus = bus
        self.worker_id = worker_id or f"{socket.gethostname()}-{os.getpid()}"
        enabled = sorted((c for c in settings.cameras if c.enabled), key=lambda c: c.id)
        if camera_ids is not None:
            known = {c.id for c in settings.cameras}
            unknown = [c for c in camera_ids if c not in known]
            if unknown:
                raise ValueError(f"unknown camera id(s) {unknown}; configured: {sorted(known)}")
            disabled = sorted(set(camera_ids) - {c.id for c in enabled})
            if disabled:
                log.warning("camera(s) %s are disabled in the configuration (enabled: false): not run", disabled)
        self.cameras: list[CameraConfig] = enabled
        self.index = {c.id: i for i, c in enumerate(enabled)}
        self.static_ids = camera_ids
        self.share = share if share is not None else (camera_ids is None and not isinstance(bus, MemoryBus))
        self.topics = settings.bus.topics
        self.publisher = Publisher(
            bus,
            self.topics.frames,
            max_buffered_frames=max_buffered_frames or cfg.max_buffered_frames,
            max_in_flight=max_in_flight or cfg.max_in_flight,
            client_id=f"ingest-{self.worker_id}",
        )
        self.tick_s = tick_s or cfg.tick_s
        self.runners: dict[str, CameraRunner] = {}
        self._order: list[str] = []
        self._frame_partitions = 1
        self._registry_partitions = max(1, len(enabled))
        self._lock = threading.Lock()

    # ------------------------------------------------------------ topology
    def topic_specs(self) -> list[TopicSpec]:
        """Topics this worker needs (the registry with at least one partition per camera); only those:
        its Kafka principal may describe no others (xueliang.bus.acls)."""
        specs = []
        used = {self.topics.frames, self.topics.camera_health, self.topics.incidents, self.topics.camera_registry}
        for spec in topic_specs(self.topics, self.settings.bus.frame_partitions):
            if spec.name not in used:
                continue
            if spec.name == self.topics.camera_registry:
                spec = TopicSpec(  # noqa: PLW2901 - the registry's spec, widened to one partition per camera
                    spec.name,
                    max(spec.partitions, len(self.cameras), 1),
                    spec.retention_ms,
                    spec.max_message_bytes,
                    compacted=True,
                )
            specs.append(spec)
        return specs

    def _setup_topics(self, stop: threading.Event) -> bool:
        backoff = Backoff(1.0, 10.0)
        while not stop.is_set():
            try:
                self.bus.ensure_topics(self.topic_specs())
                self._frame_partitions = len(self.bus.end_offsets(self.topics.frames))
                if self.share:
                    self._registry_partitions = len(self.bus.end_offsets(self.topics.camera_registry))
                return True
            except BusError as exc:
                delay = backoff.next()
                log.warning("ingest %s: bus not ready (%s); retrying in %.0f s", self.worker_id, exc, delay)
                stop.wait(delay)
        return False

    def frame_partition(self, camera_id: str) -> int:
        return self.index[camera_id] % max(1, self._frame_partitions)

    def registry_partition(self, camera_id: str) -> int:
        return self.index[camera_id] % self._registry_partitions

    def _publish_registry(self) -> None:
        for cam in self.cameras:
            self.publisher.offer_event(
                self.topics.camera_registry,
                cam.id,
                CameraAssignment(camera_id=cam.id).to_bytes(),
                partition=self.registry_partition(cam.id),
            )

    # ------------------------------------------------------------ cameras
    def running(self) -> list[str]:
        with self._lock:
            return list(self._order)

    def _start_camera(self, camera_id: str) -> None:
        cam = next(c for c in self.cameras if c.id == camera_id)
        runner = CameraRunner(cam, self.publisher, self.frame_partition(camera_id), HealthTracker(cam))
        with self._lock:
            self.runners[camera_id] = runner
            self._order.append(camera_id)
        log.info("ingest %s: starting camera %s (%s)", self.worker_id, camera_id, cam.source.masked)
        runner.start()

    def _stop_cameras(self, camera_ids: list[str]) -> None:
        with self._lock:
            runners = [(cid, self.runners.pop(cid)) for cid in camera_ids if cid in self.runners]
            for cid, _ in runners:
                self._order.remove(cid)
        for _, r in runners:
            r.stop()
        for cid, r in runners:
            r.join(timeout=max(2.0, r.camera.reconnect.stall_timeout_s + 1))
            if r.alive():
                log.warning(
                    "ingest %s: camera %s did not stop in time (blocked read); abandoning its thread",
                    self.worker_id,
                    cid,
                )
            metrics.forget_camera(cid)
            log.info("ingest %s: stopped camera %s", self.worker_id, cid)

    def _apply(self, wanted: set[str]) -> None:
        current = set(self.running())
        lost = [c for c in reversed(self.running()) if c not in wanted]
        if lost:
            self._stop_cameras(lost)
        for cid in sorted(wanted - current):
            self._start_camera(cid)
        if lost or wanted - current:
            log.info("ingest %s: running cameras %s", self.worker_id, sorted(wanted))
        metrics.ASSIGNED.set(len(wanted))

    def _tick_health(self) -> None:
        with self._lock:
            runners = list(self.runners.values())
        for r in runners:
            for msg in r.health.tick():
                if isinstance(msg, CameraHealth):
                    log.info(
                        "camera %s is %s%s", msg.camera_id, msg.status.value, f" ({msg.reason})" if msg.reason else ""
                    )
                    self.publisher.offer_event(
                        self.topics.camera_health, msg.camera_id, msg.to_bytes(), {"schema": msg.schema_.encode()}
                    )
                elif isinstance(msg, Incident):
                    log.warning("camera %s fault incident %s: %s", msg.camera_id, msg.id, msg.details)
                    self.publisher.offer_event(
                        self.topics.incidents, msg.camera_id, msg.to_bytes(), {"schema": msg.schema_.encode()}
                    )

    # ------------------------------------------------------------ lifecycle
    def run(self, stop: threading.Event) -> None:
        """Run until ``stop`` is set; stop cameras in reverse start order, then flush the bus."""
        if not self._setup_topics(stop):
            return
        self.publisher.start()
        consumer: Consumer | None = None
        try:
            if not self.share:
                ids = self.static_ids if self.static_ids is not None else [c.id for c in self.cameras]
                self._apply(set(ids) & set(self.index))
                while not stop.wait(self.tick_s):
                    self._tick_health()
            else:
                self._publish_registry()
                reg = self.topics.camera_registry
                last_owned: set[int] | None = None
                while not stop.is_set():
                    if consumer is None:
                        try:
                            consumer = self.bus.consumer(
                                GROUP_ID, [reg], offset_reset="latest", client_id=f"ingest-{self.worker_id}"
                            )
                        except BusError as exc:
                            log.warning("ingest %s: cannot join group %s yet: %s", self.worker_id, GROUP_ID, exc)
                            stop.wait(1.0)
                            continue
                    try:
                        consumer.poll(timeout=self.tick_s, max_records=100)
                        owned = {tp.partition for tp in consumer.assignment() if tp.topic == reg}
                        if owned != last_owned:
                            # partitions may have been added since start (a rebalance follows): every
                            # worker must map cameras with the same partition count
                            self._registry_partitions = max(1, len(self.bus.end_offsets(reg)))
                    except BusError as exc:
                        log.warning("ingest %s: group %s poll failed: %s", self.worker_id, GROUP_ID, exc)
                        stop.wait(self.tick_s)
                        continue
                    last_owned = owned
                    self._apply({c.id for c in self.cameras if self.registry_partition(c.id) in owned})
                    self._tick_health()
        finally:
            self._stop_cameras(list(reversed(self.running())))
            if consumer is not None:
                try:
                    consumer.close()
                except BusError as exc:
                    log.warning("ingest %s: leaving group %s: %s", self.worker_id, GROUP_ID, exc)
            self.publisher.close()
            log.info("ingest %s stopped", self.worker_id)


def main(argv: list[str] | None = None) -> int:
    """``python -m xueliang.ingest.worker ARGS`` is ``xueliang ingest ARGS`` (one entry point)."""
    import sys

    from xueliang.cli import main as cli_main

    return cli_main(["ingest", *(sys.argv[1:] if argv is None else argv)])


if __name__ == "__main__":
    raise SystemExit(main())
