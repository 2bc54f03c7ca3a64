"""The dispatch service: the one API over the store that the dispatcher, the operator API
and the CLI call. Routing, the workflow, supervision (督办) and escalation live here.

Usage::

    store = Store.from_url(settings.store.url); store.migrate()
    svc = DispatchService(store, settings)          # clock defaults to the system clock
    svc.sync_config()                               # centres and cameras from the YAML
    svc.ingest_incident(incident)                   # upsert by the detector's id
    svc.transition(incident.id, Action.accept, Actor("li", Role.operator, "village-a"))
    svc.tick()                                      # SLA flags and escalations due by now

Errors are typed (:mod:`xueliang.errors`, and :mod:`xueliang.dispatch.workflow`'s
``IllegalTransition``): ``IllegalTransition`` and ``StaleRevision`` (HTTP 409), ``Forbidden``
(403), ``NotFound`` (404), ``InvalidRequest`` (422); each carries ``http_status`` and a message
naming the incident, camera or field.

SLA clocks (per severity, ``settings.dispatch.sla``): the accept clock runs while the
owning centre has not accepted (``reported``/``escalated``), from the report (or from
the escalation); the close clock runs from the report until closure. At
``warn_share`` of a window the incident gets a yellow flag; at its end a red flag and
an escalation to the owner's parent centre, which gets a fresh window of the same
length from the breached deadline (not from when the tick ran), and so on up the
tree. Every deadline is a column; :meth:`tick` only compares them with the clock, so
timers survive restarts and fire on schedule after one.
"""

from __future__ import annotations

from xueliang.dispatch.cameras import CamerasMixin
from xueliang.dispatch.changes import ChangeEvent, EventKind, Listener
from xueliang.dispatch.core import FLAG_RANK, UNIT_ACTIONS
from xueliang.dispatch.intake import IntakeMixin
from xueliang.dispatch.oversight import OversightMixin
from xueliang.dispatch.queries import QueriesMixin
from xueliang.dispatch.transitions import TransitionsMixin

__all__ = ["FLAG_RANK", "UNIT_ACTIONS", "ChangeEvent", "DispatchService", "EventKind", "Listener"]


class DispatchService(IntakeMixin, TransitionsMixin, QueriesMixin, CamerasMixin, OversightMixin):
    """See the module docstring. Thread-safe: every call runs in its own transaction.

    A thin facade: each concern lives in its own module, on one base (:class:`ServiceCore`,
    :mod:`xueliang.dispatch.core`: store, settings, clock, centre tree, authorisation, the
    change feed of :mod:`xueliang.dispatch.changes`):

    * :mod:`~xueliang.dispatch.intake`: detector and camera-health reports;
    * :mod:`~xueliang.dispatch.merging` and :mod:`~xueliang.dispatch.regrade`: repeated alarms, raised grades;
    * :mod:`~xueliang.dispatch.transitions`: workflow actions;
    * :mod:`~xueliang.dispatch.supervision`: the tick, SLA flags and escalation;
    * :mod:`~xueliang.dispatch.queries`: incident reads, notifications and KPIs;
    * :mod:`~xueliang.dispatch.cameras`: camera CRUD and the on-line rate;
    * :mod:`~xueliang.dispatch.oversight`: per-child KPIs, urging (督办), escalated-away sight.
    """
