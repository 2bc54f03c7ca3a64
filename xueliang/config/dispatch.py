"""Dispatch section: who owns an incident (by severity and rule), who is notified,
and the SLA clocks that drive supervision (督办) and escalation."""

from __future__ import annotations

from pydantic import Field

from xueliang.config._base import StrictModel
from xueliang.config.centres import Tier
from xueliang.contracts import RuleType, Severity


class Sla(StrictModel):
    accept_s: float = Field(gt=0, description="time from report to acceptance")
    close_s: float = Field(gt=0, description="time from report to closure")
    warn_share: float = Field(0.8, gt=0, lt=1, description="yellow flag at this share of the SLA")


class RoutingRule(StrictModel):
    """Which tier owns incidents of ``severity`` (optionally only of ``rule_type``) and which tiers above are notified."""

    severity: Severity
    rule_type: RuleType | None = None
    owner_tier: Tier
    notify_tiers: list[Tier] = Field(default_factory=list)


def _default_routing() -> list[RoutingRule]:
    return [
        RoutingRule(severity=Severity.general, owner_tier=Tier.village),
        RoutingRule(severity=Severity.serious, owner_tier=Tier.village, notify_tiers=[Tier.township]),
        RoutingRule(severity=Severity.major, owner_tier=Tier.township, notify_tiers=[Tier.county]),
        RoutingRule(severity=Severity.critical, owner_tier=Tier.county, notify_tiers=[Tier.city]),
    ]


def _default_sla() -> dict[Severity, Sla]:
    return {
        Severity.general: Sla(accept_s=1800, close_s=3 * 86400),
        Severity.serious: Sla(accept_s=900, close_s=86400),
        Severity.major: Sla(accept_s=300, close_s=4 * 3600),
        Severity.critical: Sla(accept_s=120, close_s=3600),
    }


class DispatchConfig(StrictModel):
    routing: list[RoutingRule] = Field(default_factory=_default_routing)
    sla: dict[Severity, Sla] = Field(default_factory=_default_sla)
    tick_s: float = Field(1.0, gt=0, description="how often SLA timers are evaluated")
