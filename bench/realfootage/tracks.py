"""How well the tracker follows objects on the labelled real clips: tracks, tracks seen once, observations per track.

    python bench/realfootage/tracks.py [--clips vtest] [--fps 2]

Runs the clips as ``events.py`` does (the real worker, production setup, shipped tracker defaults) and counts
the track ids the tracker hands out: a walker followed from entry to exit is one track with many observations;
one lost at every sample is many tracks seen once.
"""

from __future__ import annotations

import argparse
import statistics
import sys
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from events import load_events, run

from xueliang.config.detector import real_world_backend
from xueliang.detector import tracking


def track_statistics(clips: list[str], fps: float) -> dict[str, dict[str, Any]]:
    """Per clip: samples, detections tracked, tracks, tracks seen once, median and max observations per track."""
    seen: dict[int, Counter[int]] = defaultdict(Counter)  # tracker (one per camera) -> track id -> observations
    samples: Counter[int] = Counter()
    update = tracking.ByteTracker.update

    def recording(self: tracking.ByteTracker, dets: Any, ts: float) -> Any:
        out = update(self, dets, ts)
        samples[id(self)] += 1
        seen[id(self)].update(int(t) for t in out.track_id if t >= 0)
        return out

    tracking.ByteTracker.update = recording  # type: ignore[method-assign]
    stats: dict[str, dict[str, Any]] = {}
    try:
        events = load_events()
        for name in clips:  # one clip per run: one tracker each
            before = set(seen)
            run(events, [name], fps, real_world_backend())
            counts = [c for key in set(seen) - before for c in seen[key].values()]
            n = sum(samples[key] for key in set(seen) - before)
            stats[name] = {
                "samples": n,
                "tracked_detections": sum(counts),
                "tracks": len(counts),
                "seen_once": sum(1 for c in counts if c == 1),
                "median_observations": statistics.median(counts) if counts else 0,
                "max_observations": max(counts, default=0),
            }
    finally:
        tracking.ByteTracker.update = update  # type: ignore[method-assign]
    return stats


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--clips", nargs="+", default=["vtest"], choices=list(load_events().clips))
    ap.add_argument("--fps", type=float, default=2.0)
    args = ap.parse_args(argv)
    print(f"| clip @ {args.fps:g} fps | samples | tracked detections | tracks | seen once | median obs | max obs |")
    print("|---|---|---|---|---|---|---|")
    for name, s in track_statistics(args.clips, args.fps).items():
        print(
            f"| {name} | {s['samples']} | {s['tracked_detections']} | {s['tracks']} | {s['seen_once']} "
            f"| {s['median_observations']:g} | {s['max_observations']} |"
        )


if __name__ == "__main__":
    main()
