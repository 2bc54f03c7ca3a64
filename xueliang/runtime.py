"""Own the lifecycle: one stop event, SIGINT/SIGTERM handlers, ordered start and reverse stop.

A :class:`Lifecycle` runs each stage's ``run(stop)`` in its own thread. If a stage
dies with an exception, the whole process stops (nothing half-alive keeps
pretending to be healthy) and the exit status says so. One exception: a stage the
broker refuses for lack of an ACL (:class:`~xueliang.bus.base.BusAccessDenied`) is not
helped by a restart, and a crash loop would only bury the reason: the stage logs one
clear line (principal, operation, topic or group) and tries again every
``access_retry_s``, so it starts working as soon as the ACL is granted.
"""

from __future__ import annotations

import logging
import signal
import threading
from collections.abc import Callable
from dataclasses import dataclass, field

log = logging.getLogger(__name__)

Runnable = Callable[[threading.Event], None]


@dataclass
class _Stage:
    name: str
    run: Runnable
    thread: threading.Thread | None = None
    error: BaseException | None = None
    denied: int = 0  # times the broker refused it an ACL


@dataclass
class Lifecycle:
    stop: threading.Event = field(default_factory=threading.Event)
    stages: list[_Stage] = field(default_factory=list)
    closers: list[Callable[[], object]] = field(default_factory=list)
    access_retry_s: float = 60.0

    def add(self, name: str, run: Runnable) -> None:
        self.stages.append(_Stage(name, run))

    def close_after(self, close: Callable[[], object]) -> None:
        """Call ``close`` (a bus's or store's) once every stage has stopped; last registered, first closed."""
        self.closers.append(close)

    def install_signal_handlers(self) -> None:
        def handler(signum: int, _frame: object) -> None:
            log.info("received %s, stopping", signal.Signals(signum).name)
            self.stop.set()

        signal.signal(signal.SIGINT, handler)
        signal.signal(signal.SIGTERM, handler)

    def start(self) -> None:
        for stage in self.stages:

            def target(s: _Stage = stage) -> None:
                from xueliang.bus.base import BusAccessDenied

                while True:
                    try:
                        s.run(self.stop)
                        return
                    except BusAccessDenied as exc:
                        s.denied += 1
                        log.error("stage %s refused by Kafka: %s; retrying in %.0f s", s.name, exc, self.access_retry_s)
                        if self.stop.wait(self.access_retry_s):
                            return
                    except BaseException as exc:
                        s.error = exc
                        log.exception("stage %s failed; stopping everything", s.name)
                        self.stop.set()
                        return

            stage.thread = threading.Thread(target=target, name=stage.name, daemon=True)
            stage.thread.start()
            log.info("started %s", stage.name)

    def join(self, timeout_per_stage: float = 15.0) -> int:
        """Wait for the stop event, then for the stages in reverse order; exit status 1 if any failed."""
        while not self.stop.wait(0.5):
            pass
        for stage in reversed(self.stages):
            if stage.thread is not None:
                stage.thread.join(timeout_per_stage)
                if stage.thread.is_alive():
                    log.warning("stage %s did not stop within %.0f s", stage.name, timeout_per_stage)
        for close in reversed(self.closers):
            try:
                close()
            except Exception:  # one failed close must not skip the others
                log.exception("closing %r failed", close)
        return 1 if any(s.error for s in self.stages) else 0

    def run_forever(self) -> int:
        self.install_signal_handlers()
        self.start()
        return self.join()
