"""A camera's status (online / degraded / offline), its diagnosis, and camera-fault incidents.

The camera thread reports what it sees (connected, a frame, a diagnosis); the
worker's supervisor calls :meth:`HealthTracker.tick` about once a second, so a camera
whose reader is blocked on a dead stream still goes offline on time.

Status:

* ``offline``: no frame for ``reconnect.offline_after_s`` (or never, that long after start);
* ``degraded``: no frame for ``reconnect.stall_timeout_s`` (stalled), or a failing diagnosis;
* ``online``: frames flowing and the picture passes diagnosis.

Every change of status or of the set of failing diagnoses is one
:class:`~xueliang.contracts.CameraHealth` message. A condition (``offline`` or a
diagnosis fault) that lasts ``quality.fault_grace_s`` becomes an
:class:`~xueliang.contracts.Incident` with rule ``camera_fault``; its id is derived
from (camera, condition, episode start), so repeats update one case; when the
condition clears, the same incident is sent again with ``details.state = resolved``.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from xueliang.config.cameras import CameraConfig
from xueliang.contracts import CameraHealth, CameraStatus, Incident, Severity
from xueliang.ingest import metrics
from xueliang.ingest.quality import Diagnosis

FAULT_RULE = "camera_fault"
#: Conditions an operator must act on at once (tampering) are graded higher.
_SEVERITY = {"covered": Severity.serious, "moved": Severity.serious, "offline": Severity.general}


@dataclass
class _Episode:
    start: float
    reported: bool = False
    revision: int = 0


class HealthTracker:
    def __init__(self, camera: CameraConfig, clock: Callable[[], float] = time.time) -> None:
        self.camera = camera
        self._clock = clock
        self._lock = threading.Lock()
        self._started = clock()
        self._last_frame: float | None = None
        self._frames = 0
        self._fps_window: list[float] = []
        self._reason = ""
        self._diagnosis: Diagnosis | None = None
        self._published: tuple[CameraStatus, tuple[str, ...]] | None = None
        self._episodes: dict[str, _Episode] = {}

    # ------------------------------------------------------------- reports
    def frame(self, wall_ts: float | None = None) -> None:
        """A frame arrived (wall-clock time of arrival, not the capture stamp)."""
        now = self._clock() if wall_ts is None else wall_ts
        with self._lock:
            self._last_frame = now
            self._reason = ""
            self._fps_window.append(now)
            if len(self._fps_window) > 64:
                del self._fps_window[:32]

    def disconnected(self, reason: str) -> None:
        with self._lock:
            self._reason = reason

    def diagnosed(self, diagnosis: Diagnosis) -> None:
        with self._lock:
            self._diagnosis = diagnosis
        for check, score in diagnosis.scores.items():
            metrics.QUALITY.labels(self.camera.id, check).set(score)

    # ------------------------------------------------------------- status
    def _status(self, now: float) -> tuple[CameraStatus, tuple[str, ...], str]:
        rc = self.camera.reconnect
        age = now - (self._last_frame if self._last_frame is not None else self._started)
        faults = self._diagnosis.faults if self._diagnosis is not None and self._last_frame is not None else ()
        if age >= rc.offline_after_s:
            return CameraStatus.offline, (), self._reason or f"no frame for {age:.0f} s"
        if self._last_frame is None:
            return CameraStatus.offline, (), self._reason or "connecting"
        if age >= rc.stall_timeout_s:
            return CameraStatus.degraded, faults, self._reason or f"stalled: no frame for {age:.1f} s"
        if faults:
            return CameraStatus.degraded, faults, "video quality: " + ", ".join(faults)
        return CameraStatus.online, (), ""

    def fps(self) -> float | None:
        w = self._fps_window
        if len(w) < 2 or w[-1] == w[0]:
            return None
        return round((len(w) - 1) / (w[-1] - w[0]), 2)

    def current(self) -> CameraStatus | None:
        return self._published[0] if self._published else None

    def tick(self, now: float | None = None) -> list[CameraHealth | Incident]:
        """Messages to publish now: a health change, and fault incidents that passed the grace period."""
        now = self._clock() if now is None else now
        out: list[CameraHealth | Incident] = []
        with self._lock:
            status, faults, reason = self._status(now)
            # before the first frame, stay silent until the camera is really late
            silent_start = (
                self._published is None
                and self._last_frame is None
                and now - self._started < self.camera.reconnect.offline_after_s
            )
            if not silent_start and self._published != (status, faults):
                self._published = (status, faults)
                metrics.STATUS.labels(self.camera.id).set(metrics.STATUS_VALUE[status.value])
                out.append(
                    CameraHealth(
                        camera_id=self.camera.id,
                        status=status,
                        at=datetime.fromtimestamp(now, UTC),
                        reason=reason,
                        faults=list(faults),
                        scores=dict(self._diagnosis.scores) if self._diagnosis else {},
                        fps=self.fps(),
                    )
                )
            conditions = set(faults) | ({"offline"} if status is CameraStatus.offline and not silent_start else set())
            out.extend(self._episodes_update(conditions, now, reason))
        return out

    def _incident(self, condition: str, ep: _Episode, now: float, state: str, reason: str) -> Incident:
        started = datetime.fromtimestamp(ep.start, UTC)
        details: dict[str, float | int | str] = {
            "fault": condition,
            "state": state,
            "duration_s": round(now - ep.start, 1),
        }
        if reason:
            details["reason"] = reason
        if self._diagnosis is not None and condition in self._diagnosis.scores:
            details["score"] = self._diagnosis.scores[condition]
        return Incident(
            id=Incident.make_id(self.camera.id, FAULT_RULE, f"{condition}@{started.isoformat()}"),
            camera_id=self.camera.id,
            rule=FAULT_RULE,
            rule_type=FAULT_RULE,
            severity=_SEVERITY.get(condition, Severity.general),
            started_at=started,
            updated_at=datetime.fromtimestamp(now, UTC),
            revision=ep.revision,
            details=details,
        )

    def _episodes_update(self, conditions: set[str], now: float, reason: str) -> list[Incident]:
        out: list[Incident] = []
        grace = self.camera.quality.fault_grace_s
        for cond in conditions:
            ep = self._episodes.setdefault(cond, _Episode(start=now))
            if not ep.reported and now - ep.start >= grace:
                ep.reported = True
                out.append(self._incident(cond, ep, now, "active", reason))
        for cond in [c for c in self._episodes if c not in conditions]:
            ep = self._episodes.pop(cond)
            if ep.reported:
                ep.revision += 1
                out.append(self._incident(cond, ep, now, "resolved", ""))
        return out
