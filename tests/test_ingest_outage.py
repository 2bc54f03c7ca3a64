"""A 20 s outage of a real Kafka broker: the worker neither crashes nor holds more frames than its
bounded buffer (drop-oldest, counted), and publishing resumes when the broker is back.

Runs its own throwaway broker (deploy/kafka/kafka.sh on free ports with its own data
directory) so stopping it does not disturb the shared one."""

from __future__ import annotations

import os
import shutil
import subprocess
import threading
import time
import uuid
from pathlib import Path

import pytest

from xueliang.bus.base import BusError
from xueliang.contracts import FrameMessage
from xueliang.ingest import metrics
from xueliang.ingest.testing import (
    REPO,
    FootageMissing,
    encode_h264,
    free_port,
    settings_for,
    vtest_avi,
)
from xueliang.ingest.worker import IngestWorker

KAFKA_SH = REPO / "deploy" / "kafka" / "kafka.sh"
OUTAGE_S = 20.0
MAX_BUFFERED = 16
MAX_IN_FLIGHT = 8


def rss_bytes() -> int:
    """Resident set size of this process (Linux /proc)."""
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


class PrivateBroker:
    def __init__(self, data: Path) -> None:
        self.port = free_port()
        controller = free_port()
        while controller == self.port:
            controller = free_port()
        self.env = {
            **os.environ,
            "XL_KAFKA_PORT": str(self.port),
            "XL_KAFKA_CONTROLLER_PORT": str(controller),
            "XL_KAFKA_DATA": str(data),
            "XL_KAFKA_HEAP": "384m",
        }

    def _run(self, cmd: str) -> None:
        subprocess.run(
            [str(KAFKA_SH), cmd],
            env=self.env,
            check=True,
            timeout=150,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )

    def start(self) -> None:
        self._run("start")

    def stop(self) -> None:
        self._run("stop")


@pytest.fixture()
def broker(kafka_bootstrap, tmp_path):  # type: ignore[no-untyped-def]
    # kafka_bootstrap: only where the project's Kafka is provisioned (jars fetched, Java present)
    if not KAFKA_SH.exists() or shutil.which("java") is None:
        pytest.skip("deploy/kafka/kafka.sh or Java missing")
    b = PrivateBroker(tmp_path / "kafka")
    b.start()
    yield b
    b.stop()


@pytest.mark.slow
def test_broker_outage_bounded_memory_and_resume(broker: PrivateBroker) -> None:
    try:
        clip = encode_h264(vtest_avi(), fps=25, gop=50, name="vtest25")
    except FootageMissing as exc:
        pytest.skip(str(exc))
    from xueliang.bus.kafka import KafkaBus

    prefix = f"t-outage-{uuid.uuid4().hex[:6]}"
    settings = settings_for(
        [
            {
                "id": "cam-o",
                "source": {"type": "file", "path": str(clip)},
                "sample_fps": 25,
                "motion": {"enabled": False},
                "quality": {"enabled": False},
            }
        ],
        bus={
            "type": "kafka",
            "bootstrap_servers": [f"127.0.0.1:{broker.port}"],
            "frame_partitions": 1,
            "client_timeout_s": 10,
            "topics": {
                "frames": f"{prefix}.frames",
                "incidents": f"{prefix}.incidents",
                "camera_health": f"{prefix}.health",
                "dead_letters": f"{prefix}.dlq",
                "camera_registry": f"{prefix}.registry",
            },
        },
        ingest={"max_buffered_frames": MAX_BUFFERED, "max_in_flight": MAX_IN_FLIGHT},
    )  # the configured buffer
    bus = KafkaBus(settings.bus)
    worker = IngestWorker(settings, bus, worker_id="w-outage", camera_ids=["cam-o"])
    stop = threading.Event()
    thread = threading.Thread(target=worker.run, args=(stop,))
    thread.start()
    dropped = metrics.FRAMES_DROPPED.labels("cam-o", "buffer_full")
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and worker.publisher.sent_frames < 50:
            time.sleep(0.2)
        assert worker.publisher.sent_frames >= 50, "frames did not flow before the outage"
        time.sleep(2)
        rss_before = rss_bytes()
        drops_before = dropped._value.get()

        broker.stop()
        t_down = time.monotonic()
        peak_pending, rss_peak = 0, rss_before
        while time.monotonic() - t_down < OUTAGE_S:
            time.sleep(0.25)
            producer = worker.publisher._producer
            peak_pending = max(peak_pending, producer.pending() if producer else 0)
            rss_peak = max(rss_peak, rss_bytes())
            assert thread.is_alive(), "the worker crashed during the outage"
        broker.start()
        restarted = time.time()
        drops = dropped._value.get() - drops_before
        print(
            f"\nbroker down {OUTAGE_S:.0f} s: buffer peak {worker.publisher.peak_buffered}/{MAX_BUFFERED}, "
            f"in flight peak {peak_pending}/{MAX_IN_FLIGHT}, dropped oldest {drops:.0f}, "
            f"RSS {rss_before / 2**20:.0f} → peak {rss_peak / 2**20:.0f} MiB"
        )
        assert worker.publisher.peak_buffered <= MAX_BUFFERED
        assert peak_pending <= MAX_IN_FLIGHT
        assert drops >= 25 * OUTAGE_S * 0.5  # most of the outage's frames were dropped, not kept
        # 25 fps × 20 s of ~70 kB JPEGs would be ≈ 35 MB if the buffer were unbounded
        assert rss_peak - rss_before < 25 * 2**20

        deadline = time.monotonic() + 45
        consumer = None
        while consumer is None:
            try:
                consumer = bus.consumer(
                    f"check-{uuid.uuid4().hex[:6]}", [settings.bus.topics.frames], offset_reset="earliest"
                )
            except BusError:  # the checker's admin client may need a moment after the restart
                if time.monotonic() > deadline:
                    raise
                time.sleep(1)
        fresh, first_fresh = 0, 0.0
        while time.monotonic() < deadline and fresh < 25:
            for rec in consumer.poll(timeout=0.5):
                if FrameMessage.from_record(rec.value, rec.headers).capture_ts > restarted:
                    fresh += 1
                    first_fresh = first_fresh or time.time() - restarted
        consumer.close()
        print(
            f"publishing resumed: {fresh} frames captured after the broker restart arrived, "
            f"the first {first_fresh or float('nan'):.1f} s after it accepted clients"
        )
        assert fresh >= 25
        assert thread.is_alive()
    finally:
        stop.set()
        thread.join(timeout=40)
        bus.close()
    assert not thread.is_alive()
