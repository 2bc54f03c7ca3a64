"""HiGHS models of the problem: the MIP for k cameras or a budget, the set-cover MIP, a restricted MIP."""

from __future__ import annotations

import math
import time
from typing import Any

import numpy as np
import scipy.sparse as sp

from xueliang.coverage.model.instance import gather
from xueliang.coverage.model.reduced import ReducedProblem


class HighsModels(ReducedProblem):
    """Builds the LP/MIP for HiGHS (columns ``x`` then ``y``) and solves the integer models."""

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
        rows, _ = gather(self.C.indptr, self.C.indices, sel)
        x[self.m + rows] = 1.0
        sol = highspy.HighsSolution()
        sol.col_value = list(x)
        sol.value_valid = True
        h.setSolution(sol)

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
        core = type(self)(sp.csr_matrix(sub[rows]), self.w[rows], self.cost[keep], self.site[keep], self.cap)
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
