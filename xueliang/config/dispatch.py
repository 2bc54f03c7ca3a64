"""Dispatch section: who owns an incident (by severity and rule), who is notified,
and the SLA clocks that drive supervision (督办) and escalation."""

from __future__ import annotations

from pydantic import Field, field_validator

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


class MergeConfig(StrictModel):
    """事件归并: repeated alarms of one camera and rule become occurrences of one open case."""

    window_s: float = Field(
        600.0,
        ge=0,
        le=7 * 86400,
        description="a new incident of the same camera, rule and zone attaches to an open case whose latest "
        "occurrence is at most this many seconds older; 0 turns merging off",
    )
    by_rule_type: dict[RuleType, float] = Field(
        default_factory=dict,
        description="per rule type window (seconds, 0 = never merge), e.g. {fire_smoke: 0, loitering: 1800}",
    )

    @field_validator("by_rule_type")
    @classmethod
    def _non_negative(cls, v: dict[RuleType, float]) -> dict[RuleType, float]:
        for k, w in v.items():
            if not 0 <= w <= 7 * 86400:
                raise ValueError(f"merge window for {k!r} must be 0..604800 s, got {w}")
        return v

    def window_for(self, rule_type: str) -> float:
        return {str(k): w for k, w in self.by_rule_type.items()}.get(rule_type, self.window_s)


class DispatchConfig(StrictModel):
    routing: list[RoutingRule] = Field(default_factory=_default_routing)
    merge: MergeConfig = Field(default_factory=MergeConfig, description="merging repeated alarms (事件归并)")
    sla: dict[Severity, Sla] = Field(default_factory=_default_sla)
    tick_s: float = Field(1.0, gt=0, description="how often SLA timers are evaluated")
