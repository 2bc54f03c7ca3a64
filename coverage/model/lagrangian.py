"""Upper bounds from the Lagrangian relaxation of the coverage rows (see :mod:`xueliang.coverage.model`)."""

from __future__ import annotations

import math
import time

import numpy as np

from xueliang.coverage.model.instance import gather
from xueliang.coverage.model.reduced import ReducedProblem


class LagrangianBounds(ReducedProblem):
    """``L(lambda)``, its inner maximisation over the relaxed feasible set, and subgradient descent on it."""

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
            rows, _ = gather(self.C.indptr, self.C.indices, np.asarray(sel))
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
            rows, _ = gather(self.C.indptr, self.C.indices, picked)
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
