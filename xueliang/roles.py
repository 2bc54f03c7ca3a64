"""Who acts: a user's role and an actor (name, role, home centre). Shared by dispatch's authorisation,
the API's users and its routers; what each role may do to an incident is dispatch's
(:data:`xueliang.dispatch.workflow.ROLE_ACTIONS`)."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class Role(StrEnum):
    operator = "operator"  # 值班员: runs the workflow at their centre
    supervisor = "supervisor"  # 督办: everything an operator does, plus verify/close/escalate
    engineer = "engineer"  # cameras and their health; no incident actions
    admin = "admin"  # everything
    grid_worker = "grid_worker"  # 网格员: receives, handles and reports back the cases dispatched to them


@dataclass(frozen=True, slots=True)
class Actor:
    """Who acts: a user name, a role and a home centre (the API authenticates; this authorises)."""

    name: str
    role: Role
    centre_id: str


SYSTEM = Actor(name="system", role=Role.admin, centre_id="")
"""The SLA tick and the dispatcher act as ``system`` (audited as such)."""
