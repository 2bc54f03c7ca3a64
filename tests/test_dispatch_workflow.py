"""The workflow state machine, routing and authorisation primitives (pure; no database)."""

from __future__ import annotations

import pytest

from xueliang.config.centres import Tier
from xueliang.contracts import Severity
from xueliang.dispatch.routing import CentreTree, gb28181_division, route
from xueliang.dispatch.testing import sample_settings
from xueliang.dispatch.workflow import (
    FINAL_STATES,
    OPEN_STATES,
    TRANSITIONS,
    Action,
    IllegalTransition,
    Role,
    State,
    allowed_actions,
    next_state,
    role_may,
)

HAPPY_PATH = [
    (State.reported, Action.accept, State.accepted),
    (State.accepted, Action.dispatch, State.dispatched),
    (State.dispatched, Action.receive, State.received),
    (State.received, Action.handle, State.handling),
    (State.handling, Action.feedback, State.feedback),
    (State.feedback, Action.verify, State.verified),
    (State.verified, Action.close, State.closed),
]


@pytest.mark.parametrize(
    ("state", "action", "expected"),
    [
        *HAPPY_PATH,
        (State.reported, Action.reject, State.rejected),
        (State.accepted, Action.reject, State.rejected),
        (State.dispatched, Action.return_, State.returned),
        (State.returned, Action.dispatch, State.dispatched),
        (State.escalated, Action.accept, State.accepted),
        (State.escalated, Action.dispatch, State.dispatched),
        (State.escalated, Action.escalate, State.escalated),
    ],
)
def test_legal_transitions(state: State, action: Action, expected: State) -> None:
    assert next_state("inc-1", state, action) is expected


@pytest.mark.parametrize(
    ("state", "action"),
    [
        (State.reported, Action.close),
        (State.reported, Action.dispatch),
        (State.accepted, Action.accept),
        (State.dispatched, Action.handle),
        (State.handling, Action.close),
        (State.feedback, Action.close),
        (State.closed, Action.accept),
        (State.closed, Action.escalate),
        (State.rejected, Action.accept),
        (State.rejected, Action.escalate),
    ],
)
def test_illegal_transitions_name_the_state_and_the_legal_actions(state: State, action: Action) -> None:
    with pytest.raises(IllegalTransition) as err:
        next_state("inc-1", state, action)
    msg = str(err.value)
    assert "inc-1" in msg and state.value in msg and action.value in msg
    assert err.value.http_status == 409
    for legal in allowed_actions(state):
        assert legal.value in msg


def test_escalate_from_every_open_state_and_never_from_a_final_one() -> None:
    for s in OPEN_STATES:
        assert next_state("x", s, Action.escalate) is State.escalated
    for s in FINAL_STATES:
        assert allowed_actions(s) == []
    # every state is reachable from `reported`
    reach, todo = {State.reported}, [State.reported]
    while todo:
        cur = todo.pop()
        for action in allowed_actions(cur):
            nxt = TRANSITIONS[action][1]
            if nxt not in reach:
                reach.add(nxt)
                todo.append(nxt)
    assert reach == set(State)


@pytest.mark.parametrize(
    ("role", "action", "allowed"),
    [
        (Role.operator, Action.accept, True),
        (Role.operator, Action.dispatch, True),
        (Role.operator, Action.close, False),
        (Role.operator, Action.escalate, False),
        (Role.supervisor, Action.close, True),
        (Role.supervisor, Action.escalate, True),
        (Role.engineer, Action.accept, False),
        (Role.admin, Action.close, True),
    ],
)
def test_role_permissions(role: Role, action: Action, allowed: bool) -> None:
    assert role_may(role, action) is allowed


@pytest.fixture(scope="module")
def tree() -> CentreTree:
    return CentreTree.from_config(sample_settings().centres)


def test_tree_lookups(tree: CentreTree) -> None:
    assert tree.root_id == "city"
    assert tree.ancestors("village-a2") == ["town-a", "county", "city"]
    assert set(tree.subtree("town-a")) == {"town-a", "village-a1", "village-a2"}
    assert tree.in_subtree("village-a1", of="county")
    assert not tree.in_subtree("village-b1", of="town-a")
    assert not tree.in_subtree("county", of="village-a1")
    assert tree.at_tier("village-b1", Tier.township) == "town-b"


def test_gb28181_camera_routes_to_the_village_carrying_its_division_code(tree: CentreTree) -> None:
    rules = sample_settings().dispatch.routing
    cam = "33060312001320000017"
    assert gb28181_division(cam) == "33060312"
    r = route(tree, rules, camera_id=cam, village=None, severity=Severity.general, rule_type="intrusion")
    assert (r.grid_id, r.owner_id, r.notify_ids) == ("village-a2", "village-a2", ())
    assert "33060312" in r.reason
    # the same camera with a major fire: the township owns, the county is notified
    r = route(tree, rules, camera_id=cam, village=None, severity=Severity.major, rule_type="fire_smoke")
    assert (r.owner_id, r.notify_ids) == ("town-a", ("county",))
    # another village's division code
    r = route(
        tree, rules, camera_id="33060321001320000001", village=None, severity=Severity.serious, rule_type="intrusion"
    )
    assert (r.grid_id, r.owner_id, r.notify_ids) == ("village-b1", "village-b1", ("town-b",))
    # a division only the county carries: the county's grid owns it
    r = route(
        tree, rules, camera_id="33060399001320000001", village=None, severity=Severity.general, rule_type="intrusion"
    )
    assert (r.grid_id, r.owner_id) == ("county", "county")


def test_routing_by_severity_and_unknown_cameras(tree: CentreTree) -> None:
    rules = sample_settings().dispatch.routing
    r = route(tree, rules, camera_id="cam-x", village="village-b1", severity=Severity.critical, rule_type="crowding")
    assert (r.owner_id, r.notify_ids) == ("county", ("city",))
    r = route(tree, rules, camera_id="cam-x", village="village-b1", severity=Severity.major, rule_type="loitering")
    assert (r.owner_id, r.notify_ids) == ("village-b1", ("town-b", "county"))
    # 19 digits is not a GB/T 28181 id; nobody claims it: the root owns it, with the reason
    r = route(
        tree, rules, camera_id="3306031200132000001", village=None, severity=Severity.general, rule_type="intrusion"
    )
    assert r.owner_id == "city" and "no village and no GB/T 28181 id" in r.reason
