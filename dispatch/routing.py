"""Routing: camera → village grid (网格) → owning centre by severity and rule → centres notified.

* A camera's grid is its explicit ``village``; otherwise, for a GB/T 28181 20-digit id,
  the centre whose ``division_code`` is the longest prefix of the id's 8-digit division
  code (a village if one carries it, else the township or county that does).
* :class:`xueliang.config.dispatch.RoutingRule` picks the owner tier by severity, a rule
  naming the incident's ``rule_type`` winning over one that does not; the owner is the
  grid centre's ancestor (or itself) at that tier; ``notify_tiers`` name the ancestors told.
* A camera that no grid claims is owned by the root centre, with the reason recorded,
  so that nobody's incident is ever dropped.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from xueliang.config.centres import Centre, Tier
from xueliang.config.dispatch import RoutingRule
from xueliang.contracts import Severity


@dataclass(frozen=True, slots=True)
class CentreNode:
    id: str
    name: str
    tier: Tier
    parent_id: str | None
    division_code: str | None = None


class UnknownCentre(KeyError):
    def __str__(self) -> str:
        return f"unknown centre {self.args[0]!r}"


@dataclass
class CentreTree:
    """The centre tree as plain nodes, with the lookups routing and authorisation need."""

    nodes: dict[str, CentreNode]
    children: dict[str, list[str]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        roots = [n.id for n in self.nodes.values() if n.parent_id is None]
        if len(roots) != 1:
            raise ValueError(f"the centre tree needs exactly one root, found {roots}")
        self.root_id = roots[0]
        self.children = {n: [] for n in self.nodes}
        for node in self.nodes.values():
            if node.parent_id is not None:
                if node.parent_id not in self.nodes:
                    raise ValueError(f"centre {node.id!r}: parent {node.parent_id!r} is not in the tree")
                self.children[node.parent_id].append(node.id)

    @classmethod
    def from_config(cls, root: Centre) -> CentreTree:
        return cls.from_nodes(
            CentreNode(c.id, c.name, c.tier, parent.id if parent else None, c.division_code)
            for c, parent in root.walk()
        )

    @classmethod
    def from_nodes(cls, nodes: Iterable[CentreNode]) -> CentreTree:
        return cls({n.id: n for n in nodes})

    def __contains__(self, centre_id: object) -> bool:
        return centre_id in self.nodes

    def node(self, centre_id: str) -> CentreNode:
        try:
            return self.nodes[centre_id]
        except KeyError:
            raise UnknownCentre(centre_id) from None

    def parent(self, centre_id: str) -> str | None:
        return self.node(centre_id).parent_id

    def ancestors(self, centre_id: str) -> list[str]:
        """Parent first, root last."""
        out, cur = [], self.node(centre_id).parent_id
        while cur is not None:
            out.append(cur)
            cur = self.nodes[cur].parent_id
        return out

    def subtree(self, centre_id: str) -> list[str]:
        """``centre_id`` and every centre below it."""
        self.node(centre_id)
        out, stack = [], [centre_id]
        while stack:
            cur = stack.pop()
            out.append(cur)
            stack.extend(reversed(self.children[cur]))
        return out

    def in_subtree(self, centre_id: str, of: str) -> bool:
        """Is ``centre_id`` ``of`` itself or below it? (authorisation: may a user of ``of`` see ``centre_id``)."""
        if centre_id not in self.nodes or of not in self.nodes:
            return False
        return centre_id == of or of in self.ancestors(centre_id)

    def at_tier(self, centre_id: str, tier: Tier) -> str | None:
        """The centre itself or its ancestor at ``tier`` (None if the tree has none there)."""
        for cid in [centre_id, *self.ancestors(centre_id)]:
            if self.nodes[cid].tier is tier:
                return cid
        return None

    def grid_for_division(self, division: str) -> str | None:
        """The centre whose division code is the longest prefix of ``division`` (villages win ties)."""
        best: tuple[int, int, str] | None = None
        for node in self.nodes.values():
            code = node.division_code
            if code and division.startswith(code):
                key = (len(code), node.tier.depth, node.id)
                if best is None or key > best:
                    best = key
        return best[2] if best else None

    def as_dict(self, centre_id: str | None = None) -> dict:
        """Nested ``{id, name, tier, division_code, children: [...]}`` for the API."""
        cid = centre_id or self.root_id
        n = self.node(cid)
        return {
            "id": n.id,
            "name": n.name,
            "tier": n.tier.value,
            "division_code": n.division_code,
            "children": [self.as_dict(c) for c in self.children[cid]],
        }


def gb28181_division(camera_id: str) -> str | None:
    """The 8-digit division code of a GB/T 28181 20-digit device id, or None if the id is not one."""
    return camera_id[:8] if len(camera_id) == 20 and camera_id.isdigit() else None


@dataclass(frozen=True, slots=True)
class Route:
    grid_id: str
    owner_id: str
    notify_ids: tuple[str, ...]
    reason: str


def resolve_grid(tree: CentreTree, camera_id: str, village: str | None) -> tuple[str | None, str]:
    """The grid centre of a camera and how it was found."""
    if village:
        if village not in tree:
            return None, f"camera {camera_id}: configured village {village!r} is not a centre"
        return village, f"camera {camera_id} is configured in {village}"
    division = gb28181_division(camera_id)
    if division is None:
        return None, f"camera {camera_id} has no village and no GB/T 28181 id"
    grid = tree.grid_for_division(division)
    if grid is None:
        return None, f"camera {camera_id}: no centre carries division code {division}"
    return grid, f"camera {camera_id}: GB/T 28181 division {division} → {grid}"


def pick_rule(rules: Sequence[RoutingRule], severity: Severity, rule_type: str) -> RoutingRule | None:
    specific = [r for r in rules if r.severity is severity and r.rule_type == rule_type]
    if specific:
        return specific[0]
    generic = [r for r in rules if r.severity is severity and r.rule_type is None]
    return generic[0] if generic else None


def route(
    tree: CentreTree,
    rules: Sequence[RoutingRule],
    *,
    camera_id: str,
    village: str | None,
    severity: Severity,
    rule_type: str,
) -> Route:
    grid, why = resolve_grid(tree, camera_id, village)
    if grid is None:
        return Route(tree.root_id, tree.root_id, (), f"{why}; owned by the root centre {tree.root_id}")
    rule = pick_rule(rules, severity, rule_type)
    if rule is None:
        return Route(grid, grid, (), f"{why}; no routing rule for {severity.value}/{rule_type}: grid centre owns")
    grid_tier = tree.node(grid).tier
    if rule.owner_tier.depth >= grid_tier.depth:
        owner = grid  # the grid sits above the owner tier (a township-level grid): it owns
    else:
        owner = tree.at_tier(grid, rule.owner_tier) or grid
    notify: list[str] = []
    for tier in rule.notify_tiers:
        cid = tree.at_tier(owner, tier)
        if cid is not None and cid != owner and cid not in notify:
            notify.append(cid)
    return Route(grid, owner, tuple(notify), f"{why}; {severity.value}/{rule_type} owned by {rule.owner_tier.value}")
