"""The incident workflow (受理 → 分拨 → 处置 → 办结) as a state machine with legal transitions only.

::

    reported ──accept──▶ accepted ──dispatch──▶ dispatched ──receive──▶ received ──handle──▶ handling
       │                    │                      │  ▲                                        │
       │reject              │reject                │return / dispatch again                  │feedback
       ▼                    ▼                      ▼  │                                        ▼
    rejected (false_alarm | duplicate)          returned                                   feedback
                                                                                              │verify
                                                                           closed ◀──close── verified

``escalate`` enters ``escalated`` from any open state (by a supervisor, or by the SLA
tick with the actor ``system``); the centre it moved to then accepts, rejects or
re-dispatches it, or escalates it further. ``rejected`` and ``closed`` are final.

Supervision flags (督办: yellow at ``warn_share`` of an SLA, red once overdue) are
*flags* on the incident, not states; see :mod:`xueliang.dispatch.service`.

Everything here is pure: no database, no clock. :func:`next_state` is the only
authority on legality; the service calls it inside the row-locked transaction.
"""

from __future__ import annotations

from enum import StrEnum

from xueliang.errors import Forbidden, InvalidRequest, NotFound, StaleRevision, WorkflowError
from xueliang.ranked import RankedStrEnum
from xueliang.roles import SYSTEM, Actor, Role

__all__ = [  # errors and roles live in neutral modules; re-exported for dispatch's callers
    "FINAL_STATES",
    "OPEN_STATES",
    "ROLE_ACTIONS",
    "SYSTEM",
    "TRANSITIONS",
    "Action",
    "Actor",
    "Forbidden",
    "IllegalTransition",
    "InvalidRequest",
    "NotFound",
    "RejectReason",
    "Role",
    "SlaFlag",
    "StaleRevision",
    "State",
    "WorkflowError",
    "allowed_actions",
    "next_state",
    "role_may",
]


class State(StrEnum):
    reported = "reported"
    accepted = "accepted"
    rejected = "rejected"
    dispatched = "dispatched"
    received = "received"
    returned = "returned"
    handling = "handling"
    feedback = "feedback"
    verified = "verified"
    closed = "closed"
    escalated = "escalated"

    @property
    def is_open(self) -> bool:
        return self not in FINAL_STATES

    @property
    def awaits_acceptance(self) -> bool:
        """States in which the time-to-accept clock runs (the owning centre has not taken it on)."""
        return self in (State.reported, State.escalated)


class SlaFlag(RankedStrEnum):
    """A supervision (督办) flag on an incident's SLA clock: yellow at ``warn_share`` of the window,
    red once overdue. A flag, not a state: it never changes what may be done. Ranked in this order."""

    none = "none"
    yellow = "yellow"
    red = "red"

    @classmethod
    def worst(cls, *flags: str) -> SlaFlag:
        """The most severe of ``flags`` (values or members)."""
        return max((cls(f) for f in flags), key=lambda f: f.rank)


FINAL_STATES = frozenset({State.rejected, State.closed})
OPEN_STATES = frozenset(s for s in State if s not in FINAL_STATES)


class Action(StrEnum):
    accept = "accept"  # 受理
    reject = "reject"  # not an incident: false alarm or duplicate
    dispatch = "dispatch"  # 分拨 to a unit or a centre
    receive = "receive"  # the unit signs for it
    return_ = "return"  # the unit sends it back (not theirs)
    handle = "handle"  # 处置 starts
    feedback = "feedback"  # the unit reports the result
    verify = "verify"  # the centre checks the result
    close = "close"  # 办结
    escalate = "escalate"  # to the parent centre (manual, or the SLA tick)


class RejectReason(StrEnum):
    false_alarm = "false_alarm"
    duplicate = "duplicate"


_T: dict[Action, tuple[frozenset[State], State]] = {
    Action.accept: (frozenset({State.reported, State.escalated}), State.accepted),
    Action.reject: (frozenset({State.reported, State.accepted, State.escalated}), State.rejected),
    Action.dispatch: (frozenset({State.accepted, State.returned, State.escalated}), State.dispatched),
    Action.receive: (frozenset({State.dispatched}), State.received),
    Action.return_: (frozenset({State.dispatched}), State.returned),
    Action.handle: (frozenset({State.received}), State.handling),
    Action.feedback: (frozenset({State.handling}), State.feedback),
    Action.verify: (frozenset({State.feedback}), State.verified),
    Action.close: (frozenset({State.verified}), State.closed),
    Action.escalate: (OPEN_STATES, State.escalated),
}
TRANSITIONS: dict[Action, tuple[frozenset[State], State]] = dict(_T)


class IllegalTransition(WorkflowError):
    """The action is not legal in the incident's current state (HTTP 409)."""

    http_status = 409

    def __init__(self, incident_id: str, state: State, action: Action) -> None:
        self.incident_id, self.state, self.action = incident_id, state, action
        legal = sorted(a.value for a in allowed_actions(state))
        super().__init__(
            f"incident {incident_id}: cannot {action.value} an incident that is {state.value} "
            f"(legal now: {', '.join(legal) or 'none, it is final'})"
        )


def next_state(incident_id: str, state: State, action: Action) -> State:
    """The state after ``action``, or :class:`IllegalTransition`."""
    sources, target = TRANSITIONS[action]
    if state not in sources:
        raise IllegalTransition(incident_id, state, action)
    return target


def allowed_actions(state: State) -> list[Action]:
    return [a for a, (sources, _) in TRANSITIONS.items() if state in sources]


# ---------------------------------------------------------------- roles
_OPERATOR = frozenset(
    {Action.accept, Action.reject, Action.dispatch, Action.receive, Action.return_, Action.handle, Action.feedback}
)
ROLE_ACTIONS: dict[Role, frozenset[Action]] = {
    Role.operator: _OPERATOR,
    Role.supervisor: _OPERATOR | {Action.verify, Action.close, Action.escalate},
    Role.engineer: frozenset(),
    Role.admin: frozenset(Action),
    Role.grid_worker: frozenset({Action.receive, Action.return_, Action.handle, Action.feedback}),
}


def role_may(role: Role, action: Action) -> bool:
    return action in ROLE_ACTIONS[role]
