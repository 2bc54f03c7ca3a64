"""A plan and the evidence for it: the solution type, the bound names and the words for its status."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Literal

import numpy as np

from xueliang.coverage.model.instance import EPS


def weight_quantum(values: np.ndarray) -> float:
    """The largest ``q`` in (1, 1/2, 1/4, 1/5, 1/10, 1/20, 1/100) such that every value is a multiple of
    ``q`` (0 when none is). Every plan's covered weight is then a multiple of ``q`` too, so a plan whose
    weight is within ``q`` of an upper bound is optimal."""
    v = np.asarray(values, dtype=np.float64)
    if len(v) == 0:
        return 1.0
    for q in (1.0, 0.5, 0.25, 0.2, 0.1, 0.05, 0.01):
        r = v / q
        if np.all(np.abs(r - np.round(r)) <= 1e-9 * np.maximum(1.0, np.abs(r))):
            return q
    return 0.0


def proven_optimal(value: float, bound: float, quantum: float) -> bool:
    """True when ``bound`` proves ``value`` optimal: ``bound - value < quantum`` for weights that are
    multiples of ``quantum`` (integer weights: ``quantum = 1``), otherwise a zero gap (to 1e-9)."""
    if quantum > 0:
        return bound - value < quantum * (1 - 1e-6)
    return bound - value <= 1e-9 * max(1.0, abs(bound))


def gap_words(gap: float) -> str:
    """``within X %``, X rounded *up* (three decimals), so the words never claim more than is proven."""
    pct = math.ceil(max(0.0, gap) * 100 * 1000 - 1e-9) / 1000
    return f"within {max(pct, 0.001):.3f} %"


BOUND_KINDS = {
    "total": "all weight a new camera can see",
    "best-singles": "the k best single cameras' weights summed",
    "lagrangian": "Lagrangian relaxation (subgradient multipliers)",
    "lp": "LP relaxation (interior point; certified by the Lagrangian at its duals)",
    "mip": "HiGHS branch-and-bound dual bound",
    "cheapest-camera": "set cover: the cheapest camera's cost (a lower bound)",
    "cost-mip": "set cover: HiGHS dual bound on the cheapest cost",
}


@dataclass(frozen=True)
class CoverageSolution:
    """A plan and the evidence for it.

    ``covered_weight`` counts only demand the chosen cameras newly cover (``fixed_weight``,
    covered by existing cameras, is reported beside it); ``upper_bound`` bounds the best
    achievable ``covered_weight`` (``bound_kind`` says which bound it is, :data:`BOUND_KINDS`) and
    ``gap = (upper_bound - covered_weight) / upper_bound``. ``status`` is ``"optimal"`` only when the
    bound proves it (:func:`proven_optimal`: integer weights and ``upper_bound - covered_weight < 1``,
    or a zero gap); otherwise ``"feasible"`` and :attr:`status_text` says ``within X %``.
    ``k_requested`` is the k asked for; fewer cameras (:attr:`k_used`) are returned only when no
    further camera adds weight: :attr:`everything_coverable_covered` then says whether that is because
    all the weight any candidate sees is covered. ``curve[t]`` is the covered weight after the
    greedy's first ``t + 1`` picks (the marginal-gain curve).
    """

    selected: np.ndarray
    covered_weight: float
    upper_bound: float
    total_weight: float
    fixed_weight: float
    covered: np.ndarray  # bool per original demand row: covered by the new cameras or existing ones
    curve: np.ndarray
    status: Literal["optimal", "feasible"]
    method: str
    cost: float
    timings: dict[str, float] = field(default_factory=dict)
    cost_lower_bound: float | None = None  # set cover: a lower bound on the cheapest plan's cost
    bound_kind: str = "total"
    k_requested: int | None = None
    coverable_weight: float = 0.0  # the weight new cameras could cover if all candidates were built
    quantum: float = 0.0  # every plan's covered weight is a multiple of this (0: unknown)

    @property
    def gap(self) -> float:
        if self.upper_bound <= EPS:
            return 0.0
        return max(0.0, (self.upper_bound - self.covered_weight) / self.upper_bound)

    @property
    def k_used(self) -> int:
        return len(self.selected)

    @property
    def everything_coverable_covered(self) -> bool:
        return self.covered_weight >= self.coverable_weight - 1e-9 * max(1.0, self.coverable_weight)

    @property
    def cost_gap(self) -> float | None:
        """Set cover: ``(cost - cost_lower_bound) / cost``."""
        if self.cost_lower_bound is None or self.cost <= 0:
            return None
        return max(0.0, (self.cost - self.cost_lower_bound) / self.cost)

    @property
    def status_text(self) -> str:
        """``optimal`` or ``within X %`` (of the upper bound; of the cost lower bound for set cover)."""
        if self.status == "optimal":
            return "optimal"
        g = self.cost_gap if self.cost_lower_bound is not None else self.gap
        return gap_words(g or 0.0) + (" of the cheapest cost" if self.cost_lower_bound is not None else "")

    @property
    def k_text(self) -> str:
        """``k requested 300, 75 used: everything coverable covered`` (or ``k requested 10, 10 used``)."""
        if self.k_requested is None:
            return f"{self.k_used} cameras" + (
                ": everything coverable covered" if self.everything_coverable_covered else ""
            )
        out = f"k requested {self.k_requested}, {self.k_used} used"
        if self.k_used < self.k_requested:
            out += (
                ": everything coverable covered"
                if self.everything_coverable_covered
                else ": no further camera adds weight within the site capacities / budget"
            )
        return out

    def summary(self) -> dict[str, object]:
        return {
            "cameras": len(self.selected),
            "k_requested": self.k_requested,
            "k_used": self.k_used,
            "everything_coverable_covered": self.everything_coverable_covered,
            "covered_weight": float(self.covered_weight),
            "coverable_weight": float(self.coverable_weight),
            "upper_bound": float(self.upper_bound),
            "bound_kind": self.bound_kind,
            "bound": BOUND_KINDS.get(self.bound_kind, self.bound_kind),
            "gap": float(self.gap),
            "fixed_weight": float(self.fixed_weight),
            "total_weight": float(self.total_weight),
            "status": self.status,
            "status_text": self.status_text,
            "k_text": self.k_text,
            "method": self.method,
            "cost": float(self.cost),
            "cost_lower_bound": self.cost_lower_bound,
            "timings_s": {k: round(v, 6) for k, v in self.timings.items()},
        }
