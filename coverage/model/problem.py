"""The maximal-covering problem: its input checks, constructors, presolve and the two solves."""

from __future__ import annotations

import dataclasses
import math
import time
from collections.abc import Callable
from typing import Any, Literal

import numpy as np
import scipy.sparse as sp

from xueliang.coverage.errors import CoverageInputError, InfeasibleError
from xueliang.coverage.model.core import _Core
from xueliang.coverage.model.instance import EPS, Presolved, coverage_from_points, presolve
from xueliang.coverage.model.pipeline import SolveRun, SolveSettings, StageClock
from xueliang.coverage.model.solution import CoverageSolution, proven_optimal, weight_quantum


class MaxCoverage:
    """Maximal covering over a sparse coverage matrix; see :mod:`xueliang.coverage.model` for the formulation.

    Build with :meth:`from_sparse`, :meth:`from_points` or :meth:`from_cost_matrix`, then call
    :meth:`solve` (k cameras or a budget) or :meth:`set_cover` (a target share).
    """

    def __init__(
        self,
        A: sp.spmatrix,
        weights: np.ndarray,
        *,
        cost: np.ndarray | None = None,
        site: np.ndarray | None = None,
        capacity: np.ndarray | None = None,
        covered_by_existing: np.ndarray | None = None,
    ) -> None:
        A = sp.csr_matrix(A, dtype=np.float64)
        A.sum_duplicates()
        A.sort_indices()
        n, m = A.shape
        w = np.asarray(weights, dtype=np.float64).reshape(-1)
        if w.shape[0] != n:
            raise CoverageInputError(f"{w.shape[0]} weights for {n} demand rows", source="weights")
        if n == 0:
            raise CoverageInputError("no demand", source="demand")
        if np.any(~np.isfinite(w)) or np.any(w < 0):
            raise CoverageInputError("weights must be finite and >= 0", source="weights")
        self.A = A
        self.weights = w
        self.n, self.m = n, m
        self.cost = np.ones(m) if cost is None else np.asarray(cost, dtype=np.float64).reshape(-1)
        if self.cost.shape[0] != m or np.any(self.cost <= 0):
            raise CoverageInputError("one positive cost per candidate required", source="cost")
        self.site = np.arange(m) if site is None else np.asarray(site, dtype=np.int64).reshape(-1)
        if self.site.shape[0] != m:
            raise CoverageInputError("one site per candidate required", source="site")
        n_sites = int(self.site.max()) + 1 if m else 0
        self.capacity = np.ones(n_sites, dtype=np.int64) if capacity is None else np.asarray(capacity, dtype=np.int64)
        if self.capacity.shape[0] < n_sites:
            raise CoverageInputError("one capacity per site required", source="capacity")
        self.fixed = (
            np.zeros(n, dtype=bool) if covered_by_existing is None else np.asarray(covered_by_existing, dtype=bool)
        )
        self._pre: Presolved | None = None

    # ----------------------------------------------------------------- constructors
    @classmethod
    def from_sparse(cls, A: sp.spmatrix, weights: np.ndarray, **kw: Any) -> MaxCoverage:
        return cls(A, weights, **kw)

    @classmethod
    def from_points(
        cls, demand_xy: np.ndarray, candidate_xy: np.ndarray, radius: float, weights: np.ndarray, **kw: Any
    ) -> MaxCoverage:
        """Coverage ``a_ij = 1`` when ``|d_i - c_j| <= radius``, from a KD-tree range query (never dense)."""
        A = coverage_from_points(demand_xy, candidate_xy, radius)
        return cls(A, weights, **kw)

    @classmethod
    def from_cost_matrix(
        cls, cost_matrix: np.ndarray, weights: np.ndarray, service_radius: float, **kw: Any
    ) -> MaxCoverage:
        """spopt-compatible input: ``a_ij = 1`` where ``cost_ij <= service_radius``."""
        rows, cols = np.nonzero(np.asarray(cost_matrix) <= service_radius)
        A = sp.csr_matrix((np.ones(len(rows)), (rows, cols)), shape=np.shape(cost_matrix))
        return cls(A, weights, **kw)

    # ----------------------------------------------------------------- presolve
    def presolve(self) -> Presolved:
        """Drop unseeable and already-covered demand; merge rows with identical candidate sets."""
        if self._pre is None:
            self._pre = presolve(self.A, self.weights, self.fixed)
        return self._pre

    # ----------------------------------------------------------------- solve
    def solve(
        self,
        k: int | None = None,
        *,
        budget: float | None = None,
        local_search: bool = True,
        mip: bool = True,
        time_limit: float = 10.0,
        lagrangian_iters: int = 2000,
        mip_gap: float = 1e-4,
        search_share: float = 0.3,
        small_nnz: int = 20_000,
        lp_nnz: int = 150_000,
        lp_share: float = 0.6,
        progress: Callable[[str, float], None] | None = None,
    ) -> CoverageSolution:
        """Choose at most ``k`` cameras (or cameras within ``budget``) maximising covered weight.

        ``time_limit`` bounds the whole call (seconds). Below ``small_nnz`` non-zeros the model goes
        straight from the heuristic to the HiGHS MIP, which proves optimality in milliseconds there.
        Above, the bound comes first: the LP relaxation by interior point without crossover (up to
        ``lp_share`` of the time left), certified by evaluating the Lagrangian bound at its duals (any
        multipliers give a valid bound, so the LP's accuracy does not matter); when it does not finish,
        subgradient multipliers. Then the heuristics use the LP's solution (restricted MIP up to
        ``lp_nnz`` non-zeros, iterated local search on its support above) and the rest of the time,
        ``search_share`` of it for iterated local search; models up to ``lp_nnz`` finish with the full
        HiGHS MIP. The search stops when the plan is within ``mip_gap`` (relative) of the bound, but
        ``status == "optimal"`` only when the bound proves it (:func:`proven_optimal`). Raises
        :class:`InfeasibleError` when neither ``k`` nor ``budget`` allow a camera. ``progress(stage,
        fraction of the time limit used)`` is called as each stage starts.
        """
        if k is None and budget is None:
            raise CoverageInputError("give k (number of cameras) or budget", source="request")
        if k is not None and k < 1:
            raise InfeasibleError(f"k must be >= 1, got {k}")
        if budget is not None and budget < float(self.cost.min(initial=math.inf)):
            raise InfeasibleError(f"budget {budget} buys no camera (cheapest costs {self.cost.min()})")
        # in SolveSettings' field order
        settings = SolveSettings(
            local_search, mip, time_limit, lagrangian_iters, mip_gap, search_share, small_nnz, lp_nnz, lp_share
        )
        clock = StageClock(time.perf_counter(), time_limit, progress)
        clock.step("presolve")
        pre = self.presolve()
        timings = {"presolve": time.perf_counter() - clock.t0}
        solver = _Core(pre.A, pre.weights, self.cost, self.site, self.capacity)
        run = SolveRun(
            solver, k if k is not None else self.m, budget, weight_quantum(pre.weights), settings, clock, timings
        )
        run.execute()
        timings["total"] = time.perf_counter() - clock.t0
        clock.step("done")
        status: Literal["optimal", "feasible"] = "optimal" if run.proven() else "feasible"
        r = self._result(pre, run.sel, run.value, max(run.bound, run.value), run.curve, status, run.method, timings)
        return dataclasses.replace(r, bound_kind=run.bound_kind, k_requested=k, quantum=run.q)

    def set_cover(self, share: float, *, mip: bool = True, time_limit: float = 10.0) -> CoverageSolution:
        """Cheapest set of cameras whose coverage (new plus existing) reaches ``share`` of all demand weight.

        Raises :class:`InfeasibleError` when even every candidate together falls short.
        """
        if not 0 < share <= 1:
            raise CoverageInputError(f"share must be in (0, 1], got {share}", source="request")
        t0 = time.perf_counter()
        pre = self.presolve()
        total = float(self.weights.sum())
        need = share * total - pre.fixed_weight
        reachable = float(pre.weights.sum())
        if need > reachable + 1e-9 * total:
            raise InfeasibleError(
                f"target share {share:.3f} unreachable: existing cameras plus every candidate cover "
                f"{(pre.fixed_weight + reachable) / total:.4f}"
            )
        solver = _Core(pre.A, pre.weights, self.cost, self.site, self.capacity)
        timings: dict[str, float] = {}
        if need <= 0:
            return self._result(
                pre, np.empty(0, np.int64), 0.0, 0.0, np.zeros(0), "optimal", "none-needed", {"total": 0.0}
            )
        sel, curve = solver.greedy(self.m, None, target=need, by_ratio=True)
        timings["greedy"] = time.perf_counter() - t0
        method = "greedy"
        lower, bound_kind = float(self.cost.min()), "cheapest-camera"
        if mip:
            res = solver.mip_cover(need, sel, time_limit=time_limit)
            if res is not None:
                msel, _, mlower = res
                if math.isfinite(mlower) and mlower > lower:
                    lower, bound_kind = mlower, "cost-mip"
                if self.cost[msel].sum() < self.cost[sel].sum() - EPS:
                    sel, method = msel, "highs"
        timings["total"] = time.perf_counter() - t0
        value = solver.value(sel)
        cost = float(self.cost[sel].sum())
        # optimal only when the lower bound proves it (costs multiples of q: cost - lower < q)
        status: Literal["optimal", "feasible"] = (
            "optimal" if proven_optimal(lower, cost, weight_quantum(self.cost)) else "feasible"
        )
        r = self._result(pre, sel, value, value, curve, status, method, timings)
        return dataclasses.replace(r, cost_lower_bound=min(float(lower), cost), bound_kind=bound_kind)

    def _result(
        self,
        pre: Presolved,
        sel: np.ndarray,
        value: float,
        bound: float,
        curve: np.ndarray,
        status: Literal["optimal", "feasible"],
        method: str,
        timings: dict[str, float],
    ) -> CoverageSolution:
        sel = np.asarray(sel, dtype=np.int64)
        covered = self.fixed.copy()
        if len(sel):
            seen = np.asarray(self.A[:, sel].sum(axis=1)).reshape(-1) > 0
            covered |= seen
        for arr in (sel, covered, curve):
            arr.setflags(write=False)
        return CoverageSolution(
            selected=sel,
            covered_weight=float(value),
            upper_bound=float(bound),
            total_weight=float(self.weights.sum()),
            fixed_weight=pre.fixed_weight,
            covered=covered,
            curve=np.asarray(curve, dtype=np.float64),
            status=status,
            method=method,
            cost=float(self.cost[sel].sum()),
            timings=timings,
            coverable_weight=float(pre.weights.sum()),
        )
