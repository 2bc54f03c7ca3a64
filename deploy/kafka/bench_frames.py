"""Frame throughput through the bus: JPEG-sized records, camera-keyed, as ingest sends them.

    .venv/bin/python deploy/kafka/bench_frames.py --bootstrap 127.0.0.1:9092 [--frames 300 --kib 200]
    .venv/bin/python deploy/kafka/bench_frames.py --memory

Prints produce (send + flush, acks=all) and consume rates. Payloads are random
bytes (incompressible, like JPEG); a fixed seed keeps runs comparable.
"""

from __future__ import annotations

import argparse
import random
import time
import uuid

from xueliang.bus import Bus
from xueliang.contracts import MAX_MESSAGE_BYTES, TopicSpec


def run(bus: Bus, frames: int, kib: int, cameras: int) -> dict[str, float]:
    topic = f"bench.frames.{uuid.uuid4().hex[:8]}"
    bus.ensure_topics([TopicSpec(topic, 6, retention_ms=600_000, max_message_bytes=MAX_MESSAGE_BYTES)])
    rng = random.Random(0)
    payloads = [rng.randbytes(kib * 1024) for _ in range(8)]
    producer = bus.producer(client_id="bench-producer")
    t0 = time.perf_counter()
    for i in range(frames):
        cam = f"cam-{i % cameras:02d}"
        producer.send(
            topic,
            payloads[i % len(payloads)],
            key=cam,
            partition=i % cameras % 6,
            headers={"camera": cam.encode(), "seq": str(i).encode()},
        )
    producer.flush(timeout=120)
    produce_s = time.perf_counter() - t0
    producer.close()

    consumer = bus.consumer(f"bench-{uuid.uuid4().hex[:8]}", [topic], client_id="bench-consumer")
    got = 0
    t1 = time.perf_counter()
    first: float | None = None
    while got < frames and time.perf_counter() - t1 < 120:
        batch = consumer.poll(0.5, max_records=50)
        if batch and first is None:
            first = time.perf_counter()
        got += len(batch)
    consume_s = time.perf_counter() - (first or t1)
    consumer.close()
    if hasattr(bus, "delete_topics"):
        bus.delete_topics([topic])
    mib = frames * kib / 1024
    return {
        "frames": frames,
        "produce_fps": frames / produce_s,
        "produce_mib_s": mib / produce_s,
        "consume_fps": got / consume_s,
        "consume_mib_s": got * kib / 1024 / consume_s,
        "join_s": (first or t1) - t1,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--bootstrap", default="127.0.0.1:9092")
    ap.add_argument("--memory", action="store_true", help="embedded transport instead of Kafka")
    ap.add_argument("--frames", type=int, default=300)
    ap.add_argument("--kib", type=int, default=200, help="frame size (a 1080p JPEG is ~200-400 KiB)")
    ap.add_argument("--cameras", type=int, default=6)
    args = ap.parse_args()
    if args.memory:
        from xueliang.bus.memory import MemoryBus

        bus: Bus = MemoryBus()
    else:
        from xueliang.bus.kafka import KafkaBus
        from xueliang.config.bus import KafkaBusConfig

        bus = KafkaBus(KafkaBusConfig(bootstrap_servers=[args.bootstrap]))
    try:
        r = run(bus, args.frames, args.kib, args.cameras)
    finally:
        bus.close()
    print(
        f"{'memory' if args.memory else 'kafka'}: {r['frames']} frames of {args.kib} KiB: "
        f"produce {r['produce_fps']:.0f} frames/s ({r['produce_mib_s']:.0f} MiB/s), "
        f"consume {r['consume_fps']:.0f} frames/s ({r['consume_mib_s']:.0f} MiB/s), "
        f"group join {r['join_s']:.2f}s"
    )


if __name__ == "__main__":
    main()
