"""Query parameters several routers share, each parsed once by a dependency.

* :data:`TimeRangeDep` — ``since`` / ``until`` (report time, ``[since, until)``); a time without a
  zone is taken as UTC. The incident list, the alert wall and the centres' KPIs take it.
* :data:`IncidentFiltersDep` — the incident filters the incident list and the alert wall (page and
  CSV export) share: ``centre_id``, ``state``, ``severity``, ``sla_flag`` and the time range. An
  explicit ``centre_id`` is checked against the user's area (404 unknown, 403 outside). Each router
  adds its own parameters and builds its query model with :meth:`IncidentFilters.fields`.

Usage::

    def list_incidents(user: CurrentUser, service: ServiceDep, filters: IncidentFiltersDep, ...):
        query = IncidentFilter(**filters.fields(), open_only=open_only)
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from fastapi import Depends, Query

from xueliang.api.access import check_centre
from xueliang.api.deps import CurrentUser, ServiceDep
from xueliang.contracts import Severity
from xueliang.dispatch.workflow import State

SlaFlag = Literal["none", "yellow", "red"]


def as_utc(value: datetime | None) -> datetime | None:
    """A query time in UTC; one without a zone is taken as UTC."""
    if value is None:
        return None
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


@dataclass(frozen=True)
class TimeRange:
    since: datetime | None = None
    until: datetime | None = None


def time_range(
    since: Annotated[datetime | None, Query(description="reported at or after (ISO 8601; UTC if no zone)")] = None,
    until: Annotated[datetime | None, Query(description="reported before (exclusive)")] = None,
) -> TimeRange:
    return TimeRange(since=as_utc(since), until=as_utc(until))


TimeRangeDep = Annotated[TimeRange, Depends(time_range)]


@dataclass(frozen=True)
class IncidentFilters:
    """The shared filters, named as the dispatch query models name them (all optional, AND)."""

    centre_id: str | None = None
    states: list[State] | None = None
    severities: list[Severity] | None = None
    sla_flags: list[SlaFlag] | None = None
    since: datetime | None = None
    until: datetime | None = None

    def fields(self) -> dict[str, Any]:
        """The filters as keyword arguments of ``IncidentFilter`` / ``WallQuery``."""
        return {f.name: getattr(self, f.name) for f in fields(self)}


def incident_filters(
    user: CurrentUser,
    service: ServiceDep,
    period: TimeRangeDep,
    centre_id: Annotated[
        str | None, Query(max_length=64, description="owner centre's subtree (default: yours)")
    ] = None,
    state: Annotated[list[State] | None, Query(description="any of these states")] = None,
    severity: Annotated[list[Severity] | None, Query()] = None,
    sla_flag: Annotated[list[SlaFlag] | None, Query(description="督办 flags")] = None,
) -> IncidentFilters:
    if centre_id is not None:
        check_centre(service, user, centre_id)
    return IncidentFilters(
        centre_id=centre_id,
        states=state,
        severities=severity,
        sla_flags=sla_flag,
        since=period.since,
        until=period.until,
    )


IncidentFiltersDep = Annotated[IncidentFilters, Depends(incident_filters)]
