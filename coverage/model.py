"""Camera placement as maximal covering (MCLP), budgeted covering and set cover, on a sparse matrix.

The coverage matrix ``A`` is a ``scipy.sparse`` CSR matrix of shape ``(n demand, m candidates)``
with ``a_ij = 1`` when candidate ``j`` (a ``(site, heading)`` pair) sees demand point ``i``.
It is never dense: it is built from geometry (:mod:`xueliang.coverage.visibility`) or from
coordinates with a KD-tree range query (:meth:`MaxCoverage.from_points`).

Formulation (maximal covering, Church & ReVelle 1974, with budget and site capacity)::

    maximise    sum_i w_i y_i
    subject to  y_i <= sum_j a_ij x_j          for every demand i      (covered only if seen)
                sum_j x_j <= k                                         (k new cameras)   or
                sum_j c_j x_j <= B                                     (budget B)
                sum_{j in site s} x_j <= cap_s  for every site s        (cameras per pole)
                x_j in {0, 1},  0 <= y_i <= 1

Set cover for a target share ``rho``::

    minimise    sum_j c_j x_j
    subject to  sum_i w_i y_i >= rho * sum_i w_i,   y_i <= sum_j a_ij x_j,  site capacities.

Solvers, used in this order by :meth:`MaxCoverage.solve`:

1. *presolve*: drop demand that no candidate sees (it can never count), drop demand already
   covered by existing cameras (it counts either way), merge rows with identical candidate sets
   (summing their weights);
2. *incremental greedy*: keeps every candidate's marginal gain exact by subtracting the weight of
   newly covered rows from the candidates that see them (``O(nnz)`` in total); for a budget it
   ranks by gain per cost and keeps the better of that and the best single affordable camera;
3. *1-swap local search*: exchanges a chosen camera for an unchosen one while that gains weight;
4. *bounds*: relaxing ``y_i <= sum_j a_ij x_j`` with multipliers ``lambda_i`` in ``[0, w_i]`` gives
   ``L(lambda) = sum_i (w_i - lambda_i)^+ + max_x sum_j x_j (A^T lambda)_j``, an upper bound for *every*
   ``lambda``, so a bound is certified by evaluating it. The multipliers come from the LP relaxation
   solved by interior point without crossover (its row duals; over a growing candidate support when
   the candidates far outnumber it), else from subgradient descent; HiGHS's MIP dual bound where the
   MIP runs. The solution names the bound (``bound_kind``);
5. *heuristics on the LP*: a MIP restricted to the LP's support (RINS-like), iterated local search on
   the support and over all candidates; *HiGHS MIP* (up to ``lp_nnz`` non-zeros), warm-started.

``status == "optimal"`` only when the bound proves it (:func:`proven_optimal`); otherwise the
solution reads ``within X %`` (:attr:`CoverageSolution.status_text`).
Every :class:`CoverageSolution` carries its covered weight, an upper bound and the relative gap.
"""

from __future__ import annotations

import dataclasses
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import scipy.sparse as sp
from scipy.spatial import cKDTree

from xueliang.coverage.errors import CoverageInputError, InfeasibleError

_EPS = 1e-9


def _gather(indptr: np.ndarray, indices: np.ndarray, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Column indices of the given CSR rows, concatenated, and the row position each came from."""
    rows = np.asarray(rows, dtype=np.int64)
    starts = indptr[rows]
    lens = indptr[rows + 1] - starts
    total = int(lens.sum())
    if total == 0:
        return np.empty(0, dtype=indices.dtype), np.empty(0, dtype=np.int64)
    offs = np.repeat(starts - np.cumsum(lens) + lens, lens) + np.arange(total)
    return indices[offs], np.repeat(np.arange(len(rows)), lens)


@dataclass(frozen=True)
class Presolved:
    """The reduced problem: unique demand rows with summed weights, and the maps back."""

    A: sp.csr_matrix  # reduced rows x candidates
    weights: np.ndarray  # reduced row weights
    row_of: np.ndarray  # original demand row -> reduced row, -1 when dropped
    unseeable_weight: float  # weight no candidate can see
    fixed_weight: float  # weight already covered by existing cameras
    n_original: int


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
        if self.upper_bound <= _EPS:
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


class MaxCoverage:
    """Maximal covering over a sparse coverage matrix; see the module docstring for the formulation.

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
        if self._pre is not None:
            return self._pre
        A, w = self.A, self.weights
        deg = np.diff(A.indptr)
        unseeable = (deg == 0) & ~self.fixed
        keep = np.flatnonzero((deg > 0) & ~self.fixed)
        row_of = np.full(self.n, -1, dtype=np.int64)
        if len(keep) == 0:
            Ar = sp.csr_matrix((0, self.m))
            pre = Presolved(Ar, np.zeros(0), row_of, float(w[unseeable].sum()), float(w[self.fixed].sum()), self.n)
            self._pre = pre
            return pre
        sub = A[keep]
        # two independent 64-bit hashes of each row's column set (wrap-around sums), plus its length
        rng = np.random.default_rng(12345)
        r1 = rng.integers(0, 2**63 - 1, size=self.m, dtype=np.int64).astype(np.uint64)
        r2 = rng.integers(0, 2**63 - 1, size=self.m, dtype=np.int64).astype(np.uint64)
        starts = sub.indptr[:-1]
        with np.errstate(over="ignore"):
            h1 = np.add.reduceat(r1[sub.indices], starts)
            h2 = np.add.reduceat(r2[sub.indices], starts)
        key = np.stack([h1, h2, np.diff(sub.indptr).astype(np.uint64)], axis=1)
        _, first, inverse = np.unique(key, axis=0, return_index=True, return_inverse=True)
        inverse = inverse.reshape(-1)
        wr = np.bincount(inverse, weights=w[keep], minlength=len(first))
        Ar = sub[first]
        row_of[keep] = inverse
        pre = Presolved(sp.csr_matrix(Ar), wr, row_of, float(w[unseeable].sum()), float(w[self.fixed].sum()), self.n)
        self._pre = pre
        return pre

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
        t0 = time.perf_counter()

        def step(stage: str) -> None:
            if progress is not None:
                progress(stage, min(1.0, (time.perf_counter() - t0) / max(time_limit, 1e-9)))

        timings: dict[str, float] = {}
        step("presolve")
        pre = self.presolve()
        timings["presolve"] = time.perf_counter() - t0
        kk = k if k is not None else self.m
        solver = _Core(pre.A, pre.weights, self.cost, self.site, self.capacity)
        q = weight_quantum(pre.weights)
        step("greedy")
        t = time.perf_counter()
        sel, curve = solver.greedy(kk, budget)
        timings["greedy"] = time.perf_counter() - t
        method = "greedy"
        deadline = t0 + time_limit
        if local_search and len(sel):
            step("1-swap local search")
            t = time.perf_counter()
            sel2 = solver.local_search(sel, budget, deadline=deadline)
            timings["local_search"] = time.perf_counter() - t
            if solver.value(sel2) > solver.value(sel) + _EPS:
                method = "greedy+swap"
            sel = sel2
        value = solver.value(sel)
        t = time.perf_counter()
        small = pre.A.nnz <= small_nnz and mip
        large = pre.A.nnz > lp_nnz  # the full MIP does not finish in seconds: ILS on the LP's support instead
        # quick bounds: everything seeable; the k best single cameras
        bound, bound_kind = solver.quick_bound(kk, budget)

        def done() -> bool:
            return proven_optimal(value, bound, q) or value >= bound * (1 - mip_gap) - _EPS

        x_lp: np.ndarray | None = None
        # the bounds run until the plan is *proven* optimal (not merely within mip_gap): the LP costs seconds
        # and turns 'within 0.008 %' into 'optimal' where it is tight
        if not small and not proven_optimal(value, bound, q) and time.perf_counter() < deadline:
            lag_iters = lagrangian_iters * (4 if large else 1)
            if large and mip:
                # a hedge for short limits on large models: a brief subgradient pass (at most 10 % of the
                # time, 3 s) before the LP, whose interior point may not finish (its bound stays valid)
                step("Lagrangian bound")
                t = time.perf_counter()
                lb = solver.lagrangian_bound(
                    kk, budget, value, iters=lag_iters, deadline=t + min(0.1 * time_limit, 3.0), tol=mip_gap, sel=sel
                )
                timings["lagrangian"] = time.perf_counter() - t
                if lb < bound:
                    bound, bound_kind = lb, "lagrangian"
            if mip and not proven_optimal(value, bound, q):
                step("LP bound (interior point)")
                t = time.perf_counter()
                lp_limit = max(0.1, lp_share * (deadline - t))
                if budget is None and solver.m > 8 * support_columns(kk):
                    lpb, x_lp, rounds = solver.support_lp_bound(kk, sel, time_limit=lp_limit)
                    timings["lp_support_rounds"] = rounds
                else:
                    lpb, x_lp = solver.lp_bound(kk, budget, time_limit=lp_limit, interior=True)
                timings["lp_bound"] = time.perf_counter() - t
                if lpb < bound:
                    bound, bound_kind = lpb, "lp"
            if x_lp is None and not done():
                step("Lagrangian bound")
                t = time.perf_counter()
                lb = solver.lagrangian_bound(
                    kk,
                    budget,
                    value,
                    iters=lag_iters,
                    deadline=t + 0.4 * max(0.0, deadline - t),
                    tol=mip_gap,
                    sel=sel,
                )
                timings["lagrangian"] = timings.get("lagrangian", 0.0) + time.perf_counter() - t
                if lb < bound:
                    bound, bound_kind = lb, "lagrangian"
        support_share = float((x_lp > 1e-3).mean()) if x_lp is not None else 1.0
        if x_lp is not None and (not large or support_share <= 0.1) and not done() and time.perf_counter() < deadline:
            # RINS-like: the MIP over the LP's support (x > 1e-3) and the incumbent, a model of a few hundred
            # to a few thousand candidates that HiGHS solves far faster than the full one (on large models
            # only when the support is a small share of the candidates: otherwise it is nearly as hard)
            step("LP-restricted MIP")
            t = time.perf_counter()
            rsel = solver.restricted_mip(
                np.flatnonzero(x_lp > 1e-3),
                kk,
                budget,
                sel,
                mip_gap=mip_gap,
                time_limit=max(0.1, (0.25 if large else 0.6) * (deadline - time.perf_counter())),
            )
            if rsel is not None and large:  # polish by 1-swaps over every candidate
                rsel = solver.local_search(rsel, budget, deadline=t + 0.5 * (deadline - t))
            timings["restricted_mip"] = time.perf_counter() - t
            if rsel is not None and solver.value(rsel) > value + _EPS:
                sel, value, method = rsel, solver.value(rsel), "lp-restricted-mip"
        if large and x_lp is not None and not done() and time.perf_counter() < deadline:
            # too large for the full MIP in seconds: iterated local search on the LP's support (a few
            # hundred columns where the full problem has thousands), polished by 1-swaps over every candidate
            step("search on the LP support")
            t = time.perf_counter()
            ssel = solver.support_search(
                x_lp,
                kk,
                budget,
                sel,
                deadline=t + 0.75 * (deadline - t),
                polish_deadline=deadline,
                stop_at=bound * (1 - mip_gap),
            )
            timings["support_search"] = time.perf_counter() - t
            if solver.value(ssel) > value + _EPS:
                sel, value, method = ssel, solver.value(ssel), method + "+support-ils"
        if not done() and search_share > 0 and len(sel) > 1 and not small and time.perf_counter() < deadline:
            step("iterated local search")
            t = time.perf_counter()
            share = 1.0 if large else search_share
            sel3 = solver.iterated_search(
                sel, kk, budget, deadline=min(deadline, t + share * time_limit), stop_at=bound * (1 - mip_gap)
            )
            timings["iterated_search"] = time.perf_counter() - t
            v3 = solver.value(sel3)
            if v3 > value + _EPS:
                sel, value, method = sel3, v3, method + "+ils" if method.startswith("lp-") else "greedy+ils"
        if not done() and mip and not large and time.perf_counter() < deadline - 0.05:
            step("HiGHS MIP")
            t = time.perf_counter()
            res = solver.mip_max(
                kk, budget, sel, time_limit=max(0.1, deadline - time.perf_counter()), mip_gap=mip_gap, quantum=q
            )
            timings["mip"] = time.perf_counter() - t
            if res is not None:
                msel, mval, mbound, _ = res
                if mval > value + _EPS:
                    sel, value, method = msel, mval, "highs"
                if mbound < bound:
                    bound, bound_kind = mbound, "mip"
            if (
                small and not done()
            ):  # small models go straight to HiGHS; if it stopped early, add the subgradient bound
                t = time.perf_counter()
                lb = solver.lagrangian_bound(
                    kk, budget, value, iters=lagrangian_iters, deadline=t + 0.25 * time_limit, tol=mip_gap, sel=sel
                )
                timings["lagrangian"] = timings.get("lagrangian", 0.0) + time.perf_counter() - t
                if lb < bound:
                    bound, bound_kind = lb, "lagrangian"
        timings["total"] = time.perf_counter() - t0
        step("done")
        status: Literal["optimal", "feasible"] = "optimal" if proven_optimal(value, bound, q) else "feasible"
        r = self._result(pre, sel, value, max(bound, value), curve, status, method, timings)
        return dataclasses.replace(r, bound_kind=bound_kind, k_requested=k, quantum=q)

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
                if self.cost[msel].sum() < self.cost[sel].sum() - _EPS:
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


def support_columns(k: int) -> int:
    """How many candidates the first LP support holds for ``k`` cameras."""
    return max(2000, 8 * k)


def coverage_from_points(demand_xy: np.ndarray, candidate_xy: np.ndarray, radius: float) -> sp.csr_matrix:
    """Sparse ``(n, m)`` coverage matrix of pairs within ``radius`` (KD-tree range query)."""
    d = np.asarray(demand_xy, dtype=np.float64)
    c = np.asarray(candidate_xy, dtype=np.float64)
    td, tc = cKDTree(d), cKDTree(c)
    M = td.sparse_distance_matrix(tc, radius, output_type="coo_matrix")
    A = sp.csr_matrix((np.ones(M.nnz), (M.row, M.col)), shape=(len(d), len(c)))
    # sparse_distance_matrix drops zero distances (coincident points): add them back
    same = tc.query_ball_point(d, r=0.0)
    extra = [(i, j) for i, js in enumerate(same) for j in js]
    if extra:
        ei, ej = np.array(extra).T
        A = A + sp.csr_matrix((np.ones(len(ei)), (ei, ej)), shape=A.shape)
        A.data[:] = 1.0
    return A


class _Core:
    """Solvers over a presolved matrix (rows unique, weights summed)."""

    def __init__(self, A: sp.csr_matrix, w: np.ndarray, cost: np.ndarray, site: np.ndarray, cap: np.ndarray) -> None:
        self.A = A
        self.C = A.tocsc()
        self.w = w
        self.cost = cost
        self.site = site
        self.cap = cap
        self.n, self.m = A.shape
        counts = np.bincount(site, minlength=len(cap)) if len(site) else np.zeros(0, np.int64)
        self.sites_trivial = bool(np.all(counts <= cap[: len(counts)]))
        self._dominated: np.ndarray | None = None

    def dominated(self) -> np.ndarray:
        """Candidates whose demand set is contained in another's (ties: the higher index). With equal
        costs and no binding site capacity some optimum avoids them, so the LP/MIP may fix them to 0."""
        cached: np.ndarray | None = getattr(self, "_dominated", None)
        if cached is not None:
            return cached
        dom = np.zeros(self.m, dtype=bool)
        if self.sites_trivial and self.m > 1 and np.ptp(self.cost) == 0 and self.C.nnz:
            O = (self.C.T @ self.C).tocoo()
            size = np.diff(self.C.indptr)
            sub = (O.data == size[O.row]) & (O.row != O.col)  # set(row) is a subset of set(col)
            eq = sub & (size[O.row] == size[O.col])
            dom[O.row[sub & ~eq]] = True
            dom[O.row[eq & (O.row > O.col)]] = True
        self._dominated = dom
        return dom

    def col_rows(self, j: int) -> np.ndarray:
        return self.C.indices[self.C.indptr[j] : self.C.indptr[j + 1]]

    def value(self, sel: np.ndarray) -> float:
        if len(sel) == 0 or self.n == 0:
            return 0.0
        rows, _ = _gather(self.C.indptr, self.C.indices, np.asarray(sel))
        cov = np.zeros(self.n, dtype=bool)
        cov[rows] = True
        return float(self.w[cov].sum())

    # -- incremental greedy
    def greedy(
        self,
        k: int,
        budget: float | None,
        *,
        target: float | None = None,
        by_ratio: bool | None = None,
        start: np.ndarray | None = None,
        noise: np.random.Generator | None = None,
    ) -> tuple[np.ndarray, np.ndarray]:
        m = self.m
        if self.n == 0 or m == 0:
            return np.empty(0, np.int64), np.zeros(0)
        ratio = budget is not None if by_ratio is None else by_ratio
        gain = np.asarray(self.C.T @ self.w).reshape(-1).astype(np.float64)
        covered = np.zeros(self.n, dtype=bool)
        avail = np.ones(m, dtype=bool)
        used = np.zeros(len(self.cap), dtype=np.int64)
        spent, value = 0.0, 0.0
        chosen: list[int] = []
        curve: list[float] = []
        tol = _EPS * max(1.0, float(self.w.sum()))

        def take(j: int) -> float:
            """Add column j: mark its rows covered, update every column's marginal gain and the site caps."""
            chosen.append(j)
            rows = self.col_rows(j)
            new = rows[~covered[rows]]
            covered[new] = True
            cols, pos = _gather(self.A.indptr, self.A.indices, new)
            gain[:] -= np.bincount(cols, weights=self.w[new][pos], minlength=m)
            avail[j] = False
            s = self.site[j]
            used[s] += 1
            if used[s] >= self.cap[s]:
                avail[self.site == s] = False
            return float(self.w[new].sum())

        for j in [] if start is None else [int(x) for x in start]:
            spent += self.cost[j]
            value += take(j)
        if start is not None:
            curve = [value]
        while len(chosen) < k:
            if budget is not None:
                avail &= self.cost <= budget - spent + 1e-12
            score = gain / self.cost if ratio else gain.copy()
            if noise is not None:
                score *= noise.uniform(0.85, 1.0, size=m)
            score[~avail] = -np.inf
            j = int(np.argmax(score))
            if not np.isfinite(score[j]) or gain[j] <= tol:
                break
            spent += self.cost[j]
            value += take(j)
            curve.append(value)
            if target is not None and value >= target - tol:
                break
        sel = np.array(chosen, dtype=np.int64)
        if budget is not None and target is None and start is None:
            # best single affordable camera (keeps the (1 - 1/sqrt(e)) guarantee of budgeted greedy)
            g0 = np.asarray(self.C.T @ self.w).reshape(-1)
            g0[self.cost > budget] = -np.inf
            j = int(np.argmax(g0))
            if np.isfinite(g0[j]) and g0[j] > value + tol:
                sel, curve = np.array([j]), [float(g0[j])]
        return sel, np.array(curve)

    # -- 1-swap local search
    def local_search(self, sel: np.ndarray, budget: float | None, *, deadline: float) -> np.ndarray:
        S = [int(j) for j in sel]
        if not S:
            return np.asarray(sel)
        m = self.m
        At = self.C.T.tocsr()  # rows = candidates
        cnt = np.zeros(self.n, dtype=np.int64)
        rows, _ = _gather(self.C.indptr, self.C.indices, np.array(S))
        np.add.at(cnt, rows, 1)
        in_S = np.zeros(m, dtype=bool)
        in_S[S] = True
        used = np.bincount(self.site[S], minlength=len(self.cap))
        tol = 1e-7 * max(1.0, float(self.w.sum()))
        improved = True
        while improved and time.perf_counter() < deadline:
            improved = False
            gain0 = At @ (self.w * (cnt == 0))
            for s in list(S):
                if time.perf_counter() >= deadline:
                    break
                rs = self.col_rows(s)
                U = rs[cnt[rs] == 1]
                loss = float(self.w[U].sum())
                cols, pos = _gather(self.A.indptr, self.A.indices, U)
                score = gain0 + np.bincount(cols, weights=self.w[U][pos], minlength=m)
                score[in_S] = -np.inf
                full = used >= self.cap
                full[self.site[s]] = used[self.site[s]] - 1 >= self.cap[self.site[s]]
                score[full[self.site]] = -np.inf
                if budget is not None:
                    spent = float(self.cost[S].sum()) - self.cost[s]
                    score[self.cost > budget - spent + 1e-12] = -np.inf
                j = int(np.argmax(score))
                if np.isfinite(score[j]) and score[j] - loss > tol:
                    S.remove(s)
                    S.append(j)
                    in_S[s], in_S[j] = False, True
                    used[self.site[s]] -= 1
                    used[self.site[j]] += 1
                    cnt[rs] -= 1
                    cnt[self.col_rows(j)] += 1
                    gain0 = At @ (self.w * (cnt == 0))
                    improved = True
        return np.array(S, dtype=np.int64)

    # -- iterated local search: perturb (drop a few cameras), greedy refill, 1-swap descent
    def iterated_search(
        self,
        sel: np.ndarray,
        k: int,
        budget: float | None,
        *,
        deadline: float,
        seed: int = 0,
        stop_at: float = math.inf,
        max_stale: int = 200,
    ) -> np.ndarray:
        rng = np.random.default_rng(seed)
        best = np.asarray(sel, dtype=np.int64)
        best_v = self.value(best)
        cur, cur_v = best, best_v
        At = self.C.T.tocsr()
        stale = 0
        while time.perf_counter() < deadline and len(cur) > 1 and best_v < stop_at - _EPS and stale < max_stale:
            stale += 1
            # remove the chosen cameras in the 2-hop neighbourhood of one chosen camera (shared demand)
            s0 = int(cur[rng.integers(len(cur))])
            rows1 = self.col_rows(s0)
            cols1 = np.unique(_gather(self.A.indptr, self.A.indices, rows1)[0])
            rows2 = np.unique(_gather(At.indptr, At.indices, cols1)[0])
            near = np.zeros(self.m, dtype=bool)
            near[_gather(self.A.indptr, self.A.indices, rows2)[0]] = True
            drop = near[cur]
            if drop.sum() > max(2, len(cur) // 4):
                idx = np.flatnonzero(drop)
                drop[:] = False
                drop[rng.choice(idx, size=max(2, len(cur) // 4), replace=False)] = True
            base = cur[~drop]
            fill, _ = self.greedy(k, budget, start=base, noise=rng)
            cand = self.local_search(fill, budget, deadline=deadline)
            v = self.value(cand)
            if v >= cur_v - 1e-12:
                cur, cur_v = cand, v
                if v > best_v + 1e-12:
                    best, best_v = cand, v
                    stale = 0
        return best

    # -- Lagrangian upper bound
    def _inner(self, v: np.ndarray, k: int, budget: float | None) -> tuple[float, np.ndarray]:
        """max sum_j v_j x_j over the relaxed feasible set (cardinality + site capacity, or fractional budget)."""
        x = np.zeros(self.m)
        if budget is not None:
            order = np.argsort(-v / self.cost)
            left = budget
            for j in order:
                if v[j] <= 0 or left <= 0:
                    break
                take = min(1.0, left / self.cost[j])
                x[j] = take
                left -= take * self.cost[j]
            return float(v @ x), x
        if self.sites_trivial:
            if k >= self.m:
                pick = np.flatnonzero(v > 0)
            else:
                pick = np.argpartition(-v, k - 1)[:k]
                pick = pick[v[pick] > 0]
            x[pick] = 1.0
            return float(v[pick].sum()), x
        order = np.argsort(-v, kind="stable")
        order = order[v[order] > 0]
        if len(order) == 0:
            pick = order
        else:
            # partition matroid: best cap_s candidates per site, then the best k of those
            srt_site = self.site[order]
            by_site = np.argsort(srt_site, kind="stable")  # stable: keeps value order within a site
            ss = srt_site[by_site]
            first = np.r_[0, np.flatnonzero(np.diff(ss)) + 1]
            grp_start = np.repeat(first, np.diff(np.r_[first, len(ss)]))
            rank = np.empty(len(order), dtype=np.int64)
            rank[by_site] = np.arange(len(ss)) - grp_start
            pick = order[rank < self.cap[srt_site]][:k]
        x[pick] = 1.0
        return float(v[pick].sum()), x

    def lagrangian_value(self, lam: np.ndarray, k: int, budget: float | None) -> float:
        """``L(lambda) = sum_i (w_i - lambda_i)^+ + max_x sum_j x_j (A^T lambda)_j``: an upper bound for
        every ``lambda`` in ``[0, w]`` (``lambda`` is clipped into it)."""
        lam = np.clip(np.asarray(lam, dtype=np.float64), 0.0, self.w)
        v = np.asarray(self.C.T @ lam).reshape(-1)
        if self._dominated is not None:  # some optimum avoids them (see dominated()): a valid restriction
            v[self._dominated] = 0.0
        yv = self.w - lam
        return float(yv[yv > 0].sum()) + self._inner(v, k, budget)[0]

    def quick_bound(self, k: int, budget: float | None) -> tuple[float, str]:
        """The better of all the weight (``L(0)``) and the k best single cameras (``L(w)``)."""
        total = float(self.w.sum())
        singles = self._inner(np.asarray(self.C.T @ self.w).reshape(-1), k, budget)[0]
        return (total, "total") if total <= singles else (singles, "best-singles")

    def lagrangian_bound(
        self,
        k: int,
        budget: float | None,
        lower: float,
        *,
        iters: int = 300,
        deadline: float = math.inf,
        tol: float = 1e-6,
        sel: np.ndarray | None = None,
    ) -> float:
        """Subgradient descent on the Lagrangian dual (see the module docstring); returns the best bound.

        Two starts race for ``iters // 4`` steps each: ``lambda_i = w_i / deg_i`` and a primal-dual
        start from the heuristic solution ``sel`` (``w_i`` on rows it leaves uncovered, ``0.6 w_i`` on
        rows it covers once, 0 on rows covered twice or more); the better one continues with a
        patient step-halving rule until ``iters`` or ``deadline``."""
        if self.n == 0:
            return 0.0
        w = self.w
        # L(0) = all the weight; L(w) = the k best single-camera gains
        best = min(float(w.sum()), self._inner(np.asarray(self.C.T @ w).reshape(-1), k, budget)[0])
        if best - lower <= tol * max(1.0, best) or iters <= 0:
            return best
        deg = np.diff(self.A.indptr).astype(np.float64)
        starts = [w / np.maximum(deg, 1.0)]
        if sel is not None and len(sel):
            rows, _ = _gather(self.C.indptr, self.C.indices, np.asarray(sel))
            cnt = np.bincount(rows, minlength=self.n)
            starts.append(np.where(cnt == 0, w, np.where(cnt == 1, 0.6 * w, 0.0)))
        first = max(10, iters // 4)
        runs = [self._subgradient(lam, k, budget, lower, first, deadline, tol, stall_max=15) for lam in starts]
        b0, lam0, theta0 = min(runs, key=lambda r: r[0])
        best = min(best, b0)
        if best - lower > tol * max(1.0, best) and iters - first * len(starts) > 0:
            b1, _, _ = self._subgradient(
                lam0, k, budget, lower, iters - first * len(starts), deadline, tol, stall_max=30, theta=theta0
            )
            best = min(best, b1)
        # trivially valid bound: all the weight
        return float(min(best, w.sum()))

    def _subgradient(
        self,
        lam: np.ndarray,
        k: int,
        budget: float | None,
        lower: float,
        iters: int,
        deadline: float,
        tol: float,
        *,
        stall_max: int,
        theta: float = 1.0,
    ) -> tuple[float, np.ndarray, float]:
        w = self.w
        best, best_lam = math.inf, lam
        stall = 0
        lens = np.diff(self.C.indptr)
        for _ in range(iters):
            if time.perf_counter() > deadline and math.isfinite(best):
                break
            v = np.asarray(self.C.T @ lam).reshape(-1)
            inner, x = self._inner(v, k, budget)
            yv = w - lam
            L = float(yv[yv > 0].sum()) + inner
            if best - 1e-12 * max(1.0, abs(best) if math.isfinite(best) else 1.0) > L:
                best, best_lam = L, lam
                stall = 0
            else:
                stall += 1
                if stall >= stall_max:
                    theta *= 0.5
                    stall = 0
            if best - lower <= tol * max(1.0, best) or theta < 1e-6:
                break
            picked = np.flatnonzero(x)
            rows, _ = _gather(self.C.indptr, self.C.indices, picked)
            cover = np.bincount(rows, weights=np.repeat(x[picked], lens[picked]), minlength=self.n)
            g = cover - (yv > 0)
            g[(lam <= 0) & (g > 0)] = 0.0
            g[(lam >= w) & (g < 0)] = 0.0
            nrm = float(g @ g)
            if nrm <= 0:
                break
            step = theta * (L - lower) / nrm
            lam = np.clip(lam - step * g, 0.0, w)
        return best, best_lam, theta

    # -- HiGHS models
    def _highs(self, time_limit: float, mip_gap: float) -> tuple[Any, Any]:  # highspy is untyped
        import highspy

        h = highspy.Highs()
        h.setOptionValue("output_flag", False)
        h.setOptionValue("time_limit", float(max(0.05, time_limit)))
        h.setOptionValue("mip_rel_gap", float(mip_gap))
        h.setOptionValue("threads", 1)
        # HiGHS checks time_limit only in some phases: also interrupt from its callbacks at the deadline
        stop_at = time.perf_counter() + max(0.05, time_limit)

        def interrupt(e: Any) -> None:
            if time.perf_counter() > stop_at:
                e.interrupt()

        for cb in (h.cbSimplexInterrupt, h.cbIpmInterrupt, h.cbMipInterrupt):
            cb += interrupt
        return h, highspy

    def _base_lp(self, highspy: Any, obj_x: np.ndarray, obj_y: np.ndarray, sense_max: bool) -> Any:
        """Columns: x_0..x_{m-1}, y_0..y_{n-1}. Rows: y_i - sum_j a_ij x_j <= 0, site capacities."""
        n, m = self.n, self.m
        lp = highspy.HighsLp()
        lp.num_col_ = m + n
        lp.col_cost_ = np.concatenate([obj_x, obj_y]).astype(np.float64)
        lp.col_lower_ = np.zeros(m + n)
        upper = np.ones(m + n)
        upper[:m][self.dominated()] = 0.0  # HiGHS presolve then drops these columns
        lp.col_upper_ = upper
        # coverage rows (row-wise): [y_i, -x_j...]
        A = self.A
        starts = A.indptr[:-1] + np.arange(n)
        idx = np.empty(A.nnz + n, dtype=np.int32)
        val = np.empty(A.nnz + n)
        ypos = starts
        idx[ypos] = m + np.arange(n)
        val[ypos] = 1.0
        mask = np.ones(A.nnz + n, dtype=bool)
        mask[ypos] = False
        idx[mask] = A.indices
        val[mask] = -1.0
        row_start = [np.asarray(starts, dtype=np.int64)]
        rlo = [np.full(n, -highspy.kHighsInf)]
        rup = [np.zeros(n)]
        nnz = A.nnz + n
        extra_idx, extra_val = [idx], [val]
        # site capacities where a site holds more candidates than its capacity allows
        counts = np.bincount(self.site, minlength=len(self.cap))
        tight = np.flatnonzero((counts > self.cap[: len(counts)]) & (counts > 1))
        if len(tight):
            order = np.argsort(self.site, kind="stable")
            ss = self.site[order]
            for s in tight:
                cols = order[ss == s]
                row_start.append(np.array([nnz]))
                extra_idx.append(cols.astype(np.int32))
                extra_val.append(np.ones(len(cols)))
                rlo.append(np.array([-highspy.kHighsInf]))
                rup.append(np.array([float(self.cap[s])]))
                nnz += len(cols)
        lp.num_row_ = n + len(tight)
        lp.row_lower_ = np.concatenate(rlo)
        lp.row_upper_ = np.concatenate(rup)
        lp.a_matrix_.format_ = highspy.MatrixFormat.kRowwise
        lp.a_matrix_.start_ = np.concatenate([*row_start, [nnz]]).astype(np.int32)
        lp.a_matrix_.index_ = np.concatenate(extra_idx).astype(np.int32)
        lp.a_matrix_.value_ = np.concatenate(extra_val)
        lp.a_matrix_.num_row_ = lp.num_row_
        lp.a_matrix_.num_col_ = lp.num_col_
        lp.sense_ = highspy.ObjSense.kMaximize if sense_max else highspy.ObjSense.kMinimize
        lp.integrality_ = [highspy.HighsVarType.kInteger] * m + [highspy.HighsVarType.kContinuous] * n
        return lp

    def _start(self, h: Any, highspy: Any, sel: np.ndarray) -> None:
        x = np.zeros(self.m + self.n)
        x[sel] = 1.0
        rows, _ = _gather(self.C.indptr, self.C.indices, sel)
        x[self.m + rows] = 1.0
        sol = highspy.HighsSolution()
        sol.col_value = list(x)
        sol.value_valid = True
        h.setSolution(sol)

    def lp_bound(
        self, k: int, budget: float | None, *, time_limit: float, interior: bool = False
    ) -> tuple[float, np.ndarray | None]:
        """An upper bound from the LP relaxation and the LP's ``x``, or ``(inf, None)`` when it does not
        finish in time. ``interior``: HiGHS' interior-point method without crossover (seconds where
        simplex takes minutes on large models). The bound is the Lagrangian bound at the LP's row duals
        (valid for any multipliers, so it certifies itself; equal to the LP optimum at an exact dual),
        or the LP objective padded by the method's tolerance when the duals are missing."""
        h, highspy = self._highs(time_limit, 1e-4)
        if interior:
            h.setOptionValue("solver", "ipm")
            h.setOptionValue("run_crossover", "off")
        lp = self._base_lp(highspy, np.zeros(self.m), self.w, True)
        lp.integrality_ = []
        h.passModel(lp)
        allx = np.arange(self.m, dtype=np.int32)
        if budget is not None:
            h.addRow(-highspy.kHighsInf, float(budget), self.m, allx, self.cost.astype(np.float64))
        if k < self.m:
            h.addRow(-highspy.kHighsInf, float(k), self.m, allx, np.ones(self.m))
        h.run()
        if h.getModelStatus() != highspy.HighsModelStatus.kOptimal:
            return math.inf, None
        sol = h.getSolution()
        x = np.asarray(sol.col_value[: self.m])
        # certify: the coverage rows' duals are Lagrangian multipliers, and L(lambda) is a valid bound for
        # any lambda in [0, w], however accurate the LP solve (padded only for float summation)
        bound = math.inf
        if sol.dual_valid:
            lam = np.abs(np.asarray(sol.row_dual[: self.n]))
            bound = self.lagrangian_value(lam, k, budget) * (1 + 1e-12)
        if not math.isfinite(bound) or bound > h.getInfo().objective_function_value * (1 + 1e-3) + 1e-6:
            # duals missing or poor: fall back to the LP objective, padded by the method's tolerance
            pad = 1e-6 if interior else 1e-9
            bound = min(bound, float(h.getInfo().objective_function_value) * (1 + pad) + pad)
        return bound, x

    def support_lp_bound(
        self, k: int, incumbent: np.ndarray, *, time_limit: float, max_rounds: int = 8, first: int | None = None
    ) -> tuple[float, np.ndarray | None, int]:
        """The LP bound by column generation over a candidate support: the LP (interior point) over a
        few thousand promising candidates and the demand they see, whose row duals (``w_i`` on the rows
        none of them sees: those rows stay uncovered) are multipliers for the *full* Lagrangian bound
        ``L(lambda)`` (valid for any multipliers); candidates whose ``(A^T lambda)_j`` would enter the
        inner top-k are added and the LP solved again, until none would (then ``L(lambda)`` is the full
        LP's value) or the time is up. Returns the best bound, the LP's ``x`` on all candidates
        (zero outside the support) and the number of LP solves."""
        t_end = time.perf_counter() + time_limit
        w = self.w
        # first support: the incumbent and the best candidates under the primal-dual multipliers of the
        # incumbent (w_i on rows it leaves uncovered, 0.6 w_i on rows it covers once, 0 on rows covered twice)
        rows, _ = _gather(self.C.indptr, self.C.indices, np.asarray(incumbent, dtype=np.int64))
        cnt = np.bincount(rows, minlength=self.n)
        lam0 = np.where(cnt == 0, w, np.where(cnt == 1, 0.6 * w, 0.0))
        v = np.asarray(self.C.T @ lam0).reshape(-1)
        n0 = first or support_columns(k)
        cols = np.union1d(np.argpartition(-v, min(n0, self.m - 1))[:n0], np.asarray(incumbent, dtype=np.int64))
        best, best_x, rounds = math.inf, None, 0
        while rounds < max_rounds and time.perf_counter() < t_end:
            rounds += 1
            sub = self.C[:, cols].tocsc()
            rws = np.flatnonzero(np.diff(sub.tocsr().indptr) > 0)
            core = _Core(sp.csr_matrix(sub.tocsr()[rws]), w[rws], self.cost[cols], self.site[cols], self.cap)
            res = core.lp_duals(min(k, len(cols)), time_limit=max(0.1, t_end - time.perf_counter()))
            if res is None:
                break
            x_sub, lam_sub, obj = res
            lam = w.copy()
            lam[rws] = np.clip(lam_sub, 0.0, w[rws])
            b = self.lagrangian_value(lam, k, None) * (1 + 1e-12)
            x = np.zeros(self.m)
            x[cols] = x_sub
            if b < best:
                best, best_x = b, x
            if best - obj <= 1e-7 * max(1.0, abs(obj)):
                break  # the support's LP is the full LP
            # candidates outside the support that would enter the inner top-k under these multipliers
            vv = np.asarray(self.C.T @ lam).reshape(-1)
            _, xin = self._inner(vv, k, None)
            picked = np.flatnonzero(xin > 0)
            thr = float(vv[picked].min()) if len(picked) else 0.0
            outside = np.ones(self.m, dtype=bool)
            outside[cols] = False
            viol = np.flatnonzero(outside & (vv >= thr - 1e-9))
            if len(viol) == 0:
                break
            viol = viol[np.argsort(-vv[viol], kind="stable")[: max(n0, 2 * len(picked))]]
            cols = np.union1d(cols, viol)
        return best, best_x, rounds

    def lp_duals(self, k: int, *, time_limit: float) -> tuple[np.ndarray, np.ndarray, float] | None:
        """The LP relaxation (cardinality k) by interior point without crossover: ``x``, the coverage rows'
        duals and the objective, or ``None`` when it does not finish in time."""
        h, highspy = self._highs(time_limit, 1e-4)
        h.setOptionValue("solver", "ipm")
        h.setOptionValue("run_crossover", "off")
        lp = self._base_lp(highspy, np.zeros(self.m), self.w, True)
        lp.integrality_ = []
        h.passModel(lp)
        if k < self.m:
            h.addRow(-highspy.kHighsInf, float(k), self.m, np.arange(self.m, dtype=np.int32), np.ones(self.m))
        h.run()
        sol = h.getSolution()
        if h.getModelStatus() != highspy.HighsModelStatus.kOptimal or not sol.dual_valid:
            return None
        return (
            np.asarray(sol.col_value[: self.m]),
            np.abs(np.asarray(sol.row_dual[: self.n])),
            float(h.getInfo().objective_function_value),
        )

    def support_search(
        self,
        x_lp: np.ndarray,
        k: int,
        budget: float | None,
        incumbent: np.ndarray,
        *,
        deadline: float,
        polish_deadline: float,
        stop_at: float = math.inf,
    ) -> np.ndarray:
        """Iterated local search restricted to the LP's support (x > 1e-3) and the incumbent, started
        from the better of the incumbent and the LP's k largest columns after 1-swaps; then 1-swaps over
        every candidate until ``polish_deadline``."""
        top = np.argsort(-x_lp, kind="stable")[: min(k, self.m)]
        if budget is not None:  # the LP's largest columns that fit the budget, in order
            top = top[np.cumsum(self.cost[top]) <= budget + 1e-12]
        rounded = self.local_search(top, budget, deadline=deadline)
        start = rounded if self.value(rounded) > self.value(incumbent) else np.asarray(incumbent, dtype=np.int64)
        keep = np.unique(np.concatenate([np.flatnonzero(x_lp > 1e-3), start]).astype(np.int64))
        sub = self.A[:, keep].tocsr()
        rows = np.flatnonzero(np.diff(sub.indptr) > 0)
        core = _Core(sp.csr_matrix(sub[rows]), self.w[rows], self.cost[keep], self.site[keep], self.cap)
        found = keep[
            core.iterated_search(
                np.searchsorted(keep, start), min(k, len(keep)), budget, deadline=deadline, stop_at=stop_at
            )
        ]
        return self.local_search(found, budget, deadline=polish_deadline)

    def restricted_mip(
        self, keep: np.ndarray, k: int, budget: float | None, start: np.ndarray, *, time_limit: float, mip_gap: float
    ) -> np.ndarray | None:
        """The MIP over a subset of candidates (the LP's support plus the incumbent): a small model
        HiGHS solves fast, whose solution is feasible for the full problem (a RINS-like heuristic)."""
        keep = np.unique(np.concatenate([np.asarray(keep, dtype=np.int64), np.asarray(start, dtype=np.int64)]))
        sub = self.A[:, keep].tocsr()
        rows = np.flatnonzero(np.diff(sub.indptr) > 0)
        if len(rows) == 0:
            return None
        core = _Core(sp.csr_matrix(sub[rows]), self.w[rows], self.cost[keep], self.site[keep], self.cap)
        res = core.mip_max(
            min(k, len(keep)), budget, np.searchsorted(keep, start), time_limit=time_limit, mip_gap=mip_gap
        )
        return None if res is None else keep[res[0]]

    def mip_max(
        self,
        k: int,
        budget: float | None,
        start: np.ndarray,
        *,
        time_limit: float,
        mip_gap: float,
        quantum: float = 0.0,
    ) -> tuple[np.ndarray, float, float, bool] | None:
        h, highspy = self._highs(time_limit, mip_gap)
        if quantum > 0:  # weights multiples of quantum: an absolute gap below it proves optimality
            h.setOptionValue("mip_abs_gap", float(quantum) * (1 - 1e-6))
        lp = self._base_lp(highspy, np.zeros(self.m), self.w, True)
        h.passModel(lp)
        m = self.m
        allx = np.arange(m, dtype=np.int32)
        if budget is not None:
            h.addRow(-highspy.kHighsInf, float(budget), m, allx, self.cost.astype(np.float64))
        if k < m:
            h.addRow(-highspy.kHighsInf, float(k), m, allx, np.ones(m))
        if len(start):
            self._start(h, highspy, start)
        h.run()
        info = h.getInfo()
        st = h.getModelStatus()
        if info.primal_solution_status != 2:  # kSolutionStatusFeasible
            return None
        xv = np.asarray(h.getSolution().col_value[:m])
        sel = np.flatnonzero(xv > 0.5)
        val = self.value(sel)
        bound = float(info.mip_dual_bound)
        proved = st == highspy.HighsModelStatus.kOptimal
        return sel, val, bound if math.isfinite(bound) else math.inf, bool(proved)

    def mip_cover(self, need: float, start: np.ndarray, *, time_limit: float) -> tuple[np.ndarray, bool, float] | None:
        h, highspy = self._highs(time_limit, 1e-6)
        lp = self._base_lp(highspy, self.cost, np.zeros(self.n), False)
        h.passModel(lp)
        h.addRow(float(need), highspy.kHighsInf, self.n, (self.m + np.arange(self.n)).astype(np.int32), self.w)
        if len(start):
            self._start(h, highspy, start)
        h.run()
        info = h.getInfo()
        if info.primal_solution_status != 2:
            return None
        xv = np.asarray(h.getSolution().col_value[: self.m])
        sel = np.flatnonzero(xv > 0.5)
        if self.value(sel) < need - 1e-6 * max(1.0, need):
            return None
        return sel, h.getModelStatus() == highspy.HighsModelStatus.kOptimal, float(info.mip_dual_bound)
