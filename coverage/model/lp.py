"""LP-relaxation bounds by interior point, certified by the Lagrangian at the LP's row duals."""

from __future__ import annotations

import math
import time

import numpy as np
import scipy.sparse as sp

from xueliang.coverage.model.highs import HighsModels
from xueliang.coverage.model.instance import gather
from xueliang.coverage.model.lagrangian import LagrangianBounds


def support_columns(k: int) -> int:
    """How many candidates the first LP support holds for ``k`` cameras."""
    return max(2000, 8 * k)


class LpBounds(HighsModels, LagrangianBounds):
    """The LP relaxation's bound and solution, over all candidates or over a growing candidate support."""

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
        rows, _ = gather(self.C.indptr, self.C.indices, np.asarray(incumbent, dtype=np.int64))
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
            core = type(self)(sp.csr_matrix(sub.tocsr()[rws]), w[rws], self.cost[cols], self.site[cols], self.cap)
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
