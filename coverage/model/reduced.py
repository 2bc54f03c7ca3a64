"""The presolved problem the solvers work on: its matrix both ways, weights, costs and site capacities."""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from xueliang.coverage.model.instance import gather


class ReducedProblem:
    """A presolved matrix (rows unique, weights summed) with the candidates' costs, sites and capacities;
    the solver classes (:mod:`.search`, :mod:`.lagrangian`, :mod:`.highs`, :mod:`.lp`) extend it."""

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
        rows, _ = gather(self.C.indptr, self.C.indices, np.asarray(sel))
        cov = np.zeros(self.n, dtype=bool)
        cov[rows] = True
        return float(self.w[cov].sum())
