"""SQL conditions on incident rows that several queries share: the filters every incident list
takes (:class:`~xueliang.dispatch.views.IncidentFilterFields`: the incident list and the alert
wall) and the report-time window (those lists and the KPIs).

Usage::

    q = select(IncidentRow).where(*filter_conditions(filters))
    q = q.where(*reported_between(since, until))
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ColumnElement

from xueliang.dispatch.models import IncidentRow
from xueliang.dispatch.views import IncidentFilterFields


def reported_between(since: datetime | None, until: datetime | None) -> list[ColumnElement[bool]]:
    """Reported in ``[since, until)``; an open end adds no condition."""
    where: list[ColumnElement[bool]] = []
    if since is not None:
        where.append(IncidentRow.reported_at >= since)
    if until is not None:
        where.append(IncidentRow.reported_at < until)
    return where


def filter_conditions(f: IncidentFilterFields) -> list[ColumnElement[bool]]:
    """Each list filter as "any of these values", and the report-time window (``centre_id`` is the
    caller's: it decides the owners a viewer may see)."""
    where: list[ColumnElement[bool]] = []
    for column, values in (
        (IncidentRow.state, f.states),
        (IncidentRow.severity, f.severities),
        (IncidentRow.rule_type, f.rule_types),
        (IncidentRow.camera_id, f.camera_ids),
        (IncidentRow.sla_flag, f.sla_flags),
    ):
        if values:
            where.append(column.in_([str(v) for v in values]))
    return where + reported_between(f.since, f.until)
