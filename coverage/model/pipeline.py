"""The stages of :meth:`MaxCoverage.solve`, in order: heuristic, bounds, heuristics on the LP, the MIP.

Each stage runs only while the plan is not yet within ``mip_gap`` of the bound (:meth:`SolveRun.done`)
and time is left; each records its seconds in ``timings`` and reports itself through ``progress``.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from xueliang.coverage.model.core import _Core
from xueliang.coverage.model.instance import EPS
from xueliang.coverage.model.lp import support_columns
from xueliang.coverage.model.solution import proven_optimal


@dataclass(frozen=True)
class SolveSettings:
    """:meth:`MaxCoverage.solve`'s tuning (its docstring says what each does)."""

    local_search: bool = True
    mip: bool = True
    time_limit: float = 10.0
    lagrangian_iters: int = 2000
    mip_gap: float = 1e-4
    search_share: float = 0.3
    small_nnz: int = 20_000
    lp_nnz: int = 150_000
    lp_share: float = 0.6


@dataclass(frozen=True)
class StageClock:
    """The call's start and time limit; reports each stage with the share of the time limit used."""

    t0: float
    time_limit: float
    progress: Callable[[str, float], None] | None

    @property
    def deadline(self) -> float:
        return self.t0 + self.time_limit

    def step(self, stage: str) -> None:
        if self.progress is not None:
            self.progress(stage, min(1.0, (time.perf_counter() - self.t0) / max(self.time_limit, 1e-9)))


class SolveRun:
    """One maximal-covering solve over a presolved matrix: the incumbent plan and the best bound so far."""

    def __init__(
        self,
        solver: _Core,
        k: int,
        budget: float | None,
        quantum: float,
        settings: SolveSettings,
        clock: StageClock,
        timings: dict[str, float],
    ) -> None:
        self.solver, self.k, self.budget, self.q = solver, k, budget, quantum
        self.s, self.clock, self.timings = settings, clock, timings
        self.deadline = clock.deadline
        self.small = solver.A.nnz <= settings.small_nnz and settings.mip  # straight to the HiGHS MIP
        self.large = solver.A.nnz > settings.lp_nnz  # the full MIP does not finish in seconds: ILS on the LP's support
        self.sel: np.ndarray = np.empty(0, np.int64)
        self.curve: np.ndarray = np.zeros(0)
        self.value = 0.0
        self.method = "greedy"
        self.bound, self.bound_kind = 0.0, "total"
        self.x_lp: np.ndarray | None = None

    def execute(self) -> None:
        self.heuristic()
        # quick bounds: everything seeable; the k best single cameras
        self.bound, self.bound_kind = self.solver.quick_bound(self.k, self.budget)
        self.bounds()
        self.lp_restricted_mip()
        self.lp_support_search()
        self.iterated_search()
        self.highs_mip()

    # -- bookkeeping
    def proven(self) -> bool:
        return proven_optimal(self.value, self.bound, self.q)

    def done(self) -> bool:
        return self.proven() or self.value >= self.target() - EPS

    def target(self) -> float:
        """The weight within ``mip_gap`` of the bound: the search stops there."""
        return self.bound * (1 - self.s.mip_gap)

    def time_left(self) -> bool:
        return time.perf_counter() < self.deadline

    def _adopt(self, sel: np.ndarray | None, method: str, value: float | None = None) -> None:
        """Keep ``sel`` when it covers more than the incumbent."""
        if sel is None:
            return
        v = self.solver.value(sel) if value is None else value
        if v > self.value + EPS:
            self.sel, self.value, self.method = sel, v, method

    def _tighten(self, bound: float, kind: str) -> None:
        if bound < self.bound:
            self.bound, self.bound_kind = bound, kind

    # -- stages
    def heuristic(self) -> None:
        """The incremental greedy, then 1-swap local search."""
        solver = self.solver
        self.clock.step("greedy")
        t = time.perf_counter()
        sel, self.curve = solver.greedy(self.k, self.budget)
        self.timings["greedy"] = time.perf_counter() - t
        if self.s.local_search and len(sel):
            self.clock.step("1-swap local search")
            t = time.perf_counter()
            sel2 = solver.local_search(sel, self.budget, deadline=self.deadline)
            self.timings["local_search"] = time.perf_counter() - t
            if solver.value(sel2) > solver.value(sel) + EPS:
                self.method = "greedy+swap"
            sel = sel2
        self.sel, self.value = sel, solver.value(sel)

    def bounds(self) -> None:
        """The LP bound, hedged on large models by a brief subgradient pass before it, and the subgradient
        bound when the LP gave none. They run until the plan is *proven* optimal (not merely within
        ``mip_gap``): the LP costs seconds and turns 'within 0.008 %' into 'optimal' where it is tight."""
        if self.small or self.proven() or not self.time_left():
            return
        iters = self.s.lagrangian_iters * (4 if self.large else 1)
        if self.large and self.s.mip:
            # a hedge for short limits on large models: a brief subgradient pass (at most 10 % of the
            # time, 3 s) before the LP, whose interior point may not finish (its bound stays valid)
            self.clock.step("Lagrangian bound")
            self._lagrangian(iters, lambda start: start + min(0.1 * self.s.time_limit, 3.0))
        if self.s.mip and not self.proven():
            self._lp_bound()
        if self.x_lp is None and not self.done():
            self.clock.step("Lagrangian bound")
            self._lagrangian(iters, lambda start: start + 0.4 * max(0.0, self.deadline - start))

    def _lagrangian(self, iters: int, until: Callable[[float], float]) -> None:
        """Subgradient descent until ``until(start)``; its seconds add up under ``lagrangian``."""
        t = time.perf_counter()
        lb = self.solver.lagrangian_bound(
            self.k, self.budget, self.value, iters=iters, deadline=until(t), tol=self.s.mip_gap, sel=self.sel
        )
        self.timings["lagrangian"] = self.timings.get("lagrangian", 0.0) + time.perf_counter() - t
        self._tighten(lb, "lagrangian")

    def _lp_bound(self) -> None:
        """The LP relaxation by interior point, over a growing candidate support when the candidates far
        outnumber it; keeps its ``x`` for the heuristics that follow."""
        self.clock.step("LP bound (interior point)")
        t = time.perf_counter()
        lp_limit = max(0.1, self.s.lp_share * (self.deadline - t))
        if self.budget is None and self.solver.m > 8 * support_columns(self.k):
            lpb, self.x_lp, rounds = self.solver.support_lp_bound(self.k, self.sel, time_limit=lp_limit)
            self.timings["lp_support_rounds"] = rounds
        else:
            lpb, self.x_lp = self.solver.lp_bound(self.k, self.budget, time_limit=lp_limit, interior=True)
        self.timings["lp_bound"] = time.perf_counter() - t
        self._tighten(lpb, "lp")

    def lp_restricted_mip(self) -> None:
        """RINS-like: the MIP over the LP's support (x > 1e-3) and the incumbent, a model of a few hundred
        to a few thousand candidates that HiGHS solves far faster than the full one (on large models
        only when the support is a small share of the candidates: otherwise it is nearly as hard)."""
        x_lp = self.x_lp
        if x_lp is None or (self.large and float((x_lp > 1e-3).mean()) > 0.1) or self.done() or not self.time_left():
            return
        self.clock.step("LP-restricted MIP")
        t = time.perf_counter()
        rsel = self.solver.restricted_mip(
            np.flatnonzero(x_lp > 1e-3),
            self.k,
            self.budget,
            self.sel,
            mip_gap=self.s.mip_gap,
            time_limit=max(0.1, (0.25 if self.large else 0.6) * (self.deadline - time.perf_counter())),
        )
        if rsel is not None and self.large:  # polish by 1-swaps over every candidate
            rsel = self.solver.local_search(rsel, self.budget, deadline=t + 0.5 * (self.deadline - t))
        self.timings["restricted_mip"] = time.perf_counter() - t
        self._adopt(rsel, "lp-restricted-mip")

    def lp_support_search(self) -> None:
        """Too large for the full MIP in seconds: iterated local search on the LP's support (a few hundred
        columns where the full problem has thousands), polished by 1-swaps over every candidate."""
        x_lp = self.x_lp
        if not self.large or x_lp is None or self.done() or not self.time_left():
            return
        self.clock.step("search on the LP support")
        t = time.perf_counter()
        until = t + 0.75 * (self.deadline - t)  # then 1-swaps over every candidate until the deadline
        ssel = self.solver.support_search(
            x_lp, self.k, self.budget, self.sel, deadline=until, polish_deadline=self.deadline, stop_at=self.target()
        )
        self.timings["support_search"] = time.perf_counter() - t
        self._adopt(ssel, self.method + "+support-ils")

    def iterated_search(self) -> None:
        """Iterated local search over all candidates, for ``search_share`` of the time (all of it on
        large models)."""
        if self.done() or self.s.search_share <= 0 or len(self.sel) <= 1 or self.small or not self.time_left():
            return
        self.clock.step("iterated local search")
        t = time.perf_counter()
        share = 1.0 if self.large else self.s.search_share
        until = min(self.deadline, t + share * self.s.time_limit)
        sel3 = self.solver.iterated_search(self.sel, self.k, self.budget, deadline=until, stop_at=self.target())
        self.timings["iterated_search"] = time.perf_counter() - t
        self._adopt(sel3, self.method + "+ils" if self.method.startswith("lp-") else "greedy+ils")

    def highs_mip(self) -> None:
        """The full HiGHS MIP, warm-started from the incumbent (not on large models); small models, which
        come here straight from the heuristic, add the subgradient bound if it stopped early."""
        if self.done() or not self.s.mip or self.large or time.perf_counter() >= self.deadline - 0.05:
            return
        self.clock.step("HiGHS MIP")
        t = time.perf_counter()
        limit = max(0.1, self.deadline - time.perf_counter())
        res = self.solver.mip_max(
            self.k, self.budget, self.sel, time_limit=limit, mip_gap=self.s.mip_gap, quantum=self.q
        )
        self.timings["mip"] = time.perf_counter() - t
        if res is not None:
            msel, mval, mbound, _ = res
            self._adopt(msel, "highs", mval)
            self._tighten(mbound, "mip")
        if self.small and not self.done():
            self._lagrangian(self.s.lagrangian_iters, lambda start: start + 0.25 * self.s.time_limit)
