"""The problem's data: the sparse coverage matrix from coordinates, and its presolved (reduced) form."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
from scipy.spatial import cKDTree

EPS = 1e-9  # tolerance when comparing covered weights


def gather(indptr: np.ndarray, indices: np.ndarray, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Column indices of the given CSR rows, concatenated, and the row position each came from."""
    rows = np.asarray(rows, dtype=np.int64)
    starts = indptr[rows]
    lens = indptr[rows + 1] - starts
    total = int(lens.sum())
    if total == 0:
        return np.empty(0, dtype=indices.dtype), np.empty(0, dtype=np.int64)
    offs = np.repeat(starts - np.cumsum(lens) + lens, lens) + np.arange(total)
    return indices[offs], np.repeat(np.arange(len(rows)), lens)


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


@dataclass(frozen=True)
class Presolved:
    """The reduced problem: unique demand rows with summed weights, and the maps back."""

    A: sp.csr_matrix  # reduced rows x candidates
    weights: np.ndarray  # reduced row weights
    row_of: np.ndarray  # original demand row -> reduced row, -1 when dropped
    unseeable_weight: float  # weight no candidate can see
    fixed_weight: float  # weight already covered by existing cameras
    n_original: int


def presolve(A: sp.csr_matrix, w: np.ndarray, fixed: np.ndarray) -> Presolved:
    """Drop demand no candidate sees and demand ``fixed`` (already covered); merge rows with identical
    candidate sets, summing their weights."""
    n, m = A.shape
    deg = np.diff(A.indptr)
    unseeable = (deg == 0) & ~fixed
    keep = np.flatnonzero((deg > 0) & ~fixed)
    row_of = np.full(n, -1, dtype=np.int64)
    if len(keep) == 0:
        return Presolved(
            sp.csr_matrix((0, m)), np.zeros(0), row_of, float(w[unseeable].sum()), float(w[fixed].sum()), n
        )
    sub = A[keep]
    # two independent 64-bit hashes of each row's column set (wrap-around sums), plus its length
    rng = np.random.default_rng(12345)
    r1 = rng.integers(0, 2**63 - 1, size=m, dtype=np.int64).astype(np.uint64)
    r2 = rng.integers(0, 2**63 - 1, size=m, dtype=np.int64).astype(np.uint64)
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
    return Presolved(sp.csr_matrix(Ar), wr, row_of, float(w[unseeable].sum()), float(w[fixed].sum()), n)
