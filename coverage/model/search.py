"""Primal heuristics: incremental greedy, 1-swap local search, iterated local search (also on the LP's support)."""

from __future__ import annotations

import math
import time

import numpy as np
import scipy.sparse as sp

from xueliang.coverage.model.instance import EPS, gather
from xueliang.coverage.model.reduced import ReducedProblem


class SearchHeuristics(ReducedProblem):
    """Plans found by search; every plan they return is feasible (k or budget, site capacities)."""

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
        tol = EPS * max(1.0, float(self.w.sum()))

        def take(j: int) -> float:
            """Add column j: mark its rows covered, update every column's marginal gain and the site caps."""
            chosen.append(j)
            rows = self.col_rows(j)
            new = rows[~covered[rows]]
            covered[new] = True
            cols, pos = gather(self.A.indptr, self.A.indices, new)
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
        rows, _ = gather(self.C.indptr, self.C.indices, np.array(S))
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
                cols, pos = gather(self.A.indptr, self.A.indices, U)
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
        while time.perf_counter() < deadline and len(cur) > 1 and best_v < stop_at - EPS and stale < max_stale:
            stale += 1
            # remove the chosen cameras in the 2-hop neighbourhood of one chosen camera (shared demand)
            s0 = int(cur[rng.integers(len(cur))])
            rows1 = self.col_rows(s0)
            cols1 = np.unique(gather(self.A.indptr, self.A.indices, rows1)[0])
            rows2 = np.unique(gather(At.indptr, At.indices, cols1)[0])
            near = np.zeros(self.m, dtype=bool)
            near[gather(self.A.indptr, self.A.indices, rows2)[0]] = True
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
        core = type(self)(sp.csr_matrix(sub[rows]), self.w[rows], self.cost[keep], self.site[keep], self.cap)
        found = keep[
            core.iterated_search(
                np.searchsorted(keep, start), min(k, len(keep)), budget, deadline=deadline, stop_at=stop_at
            )
        ]
        return self.local_search(found, budget, deadline=polish_deadline)
