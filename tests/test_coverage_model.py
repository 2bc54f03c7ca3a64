"""MCLP / budget / set-cover solvers on small seeded instances, checked against brute force."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import scipy.sparse as sp

from xueliang.coverage.errors import CoverageInputError, InfeasibleError
from xueliang.coverage.model import MaxCoverage, coverage_from_points


def _instance(seed: int, n: int = 60, m: int = 10, density: float = 0.18):
    rng = np.random.default_rng(seed)
    A = sp.csr_matrix((rng.random((n, m)) < density).astype(float))
    w = rng.integers(1, 10, n).astype(float)
    return A, w


def _brute(A, w, k, cost=None, budget=None, site=None, cap=None):
    m = A.shape[1]
    best = 0.0
    Ad = A.toarray() > 0
    for r in range(1, k + 1):
        for combo in itertools.combinations(range(m), r):
            S = list(combo)
            if budget is not None and cost[S].sum() > budget + 1e-9:
                continue
            if site is not None and np.any(np.bincount(site[S], minlength=len(cap)) > cap):
                continue
            best = max(best, float(w[Ad[:, S].any(axis=1)].sum()))
    return best


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("k", [1, 3, 5])
def test_mclp_matches_brute_force_and_bound_holds(seed: int, k: int) -> None:
    A, w = _instance(seed)
    opt = _brute(A, w, k)
    sol = MaxCoverage(A, w).solve(k, time_limit=5)
    assert len(sol.selected) <= k
    assert sol.covered_weight == pytest.approx(opt)  # HiGHS proves it on these sizes
    assert sol.upper_bound >= opt - 1e-6
    assert sol.status == "optimal" and sol.gap <= 1e-3
    # the covered mask agrees with the objective
    assert float(w[sol.covered].sum()) == pytest.approx(sol.covered_weight)


@pytest.mark.parametrize("seed", range(3))
def test_heuristics_alone_are_near_and_bounds_valid(seed: int) -> None:
    A, w = _instance(seed, n=80, m=14)
    opt = _brute(A, w, 4)
    sol = MaxCoverage(A, w).solve(4, mip=False, time_limit=1)
    assert sol.covered_weight >= 0.95 * opt
    assert sol.upper_bound >= opt - 1e-6  # Lagrangian bound is a bound


def test_budget_and_site_capacity_are_respected() -> None:
    A, w = _instance(7, n=70, m=12)
    cost = np.array([1, 2, 3, 1, 2, 3, 1, 2, 3, 1, 2, 3], dtype=float)
    site = np.repeat(np.arange(6), 2)  # two headings per site
    cap = np.ones(6, dtype=np.int64)
    opt = _brute(A, w, 12, cost=cost, budget=5.0, site=site, cap=cap)
    sol = MaxCoverage(A, w, cost=cost, site=site, capacity=cap).solve(budget=5.0, time_limit=5)
    assert sol.cost <= 5.0 + 1e-9
    assert np.all(np.bincount(site[sol.selected], minlength=6) <= 1)
    assert sol.covered_weight == pytest.approx(opt)
    # greedy + swap alone must respect the same constraints
    h = MaxCoverage(A, w, cost=cost, site=site, capacity=cap).solve(budget=5.0, mip=False)
    assert h.cost <= 5.0 + 1e-9 and np.all(np.bincount(site[h.selected], minlength=6) <= 1)


def test_presolve_drops_unseeable_and_merges_identical_rows() -> None:
    A = sp.csr_matrix(np.array([[1, 0, 1], [1, 0, 1], [0, 0, 0], [0, 1, 0], [1, 0, 1]], dtype=float))
    w = np.array([1.0, 2.0, 5.0, 3.0, 4.0])
    fixed = np.array([False, False, False, True, False])
    pre = MaxCoverage(A, w, covered_by_existing=fixed).presolve()
    assert pre.A.shape[0] == 1  # rows 0, 1, 4 identical; row 3 already covered; row 2 unseeable
    assert pre.weights.tolist() == [7.0]
    assert pre.unseeable_weight == 5.0 and pre.fixed_weight == 3.0
    assert pre.row_of.tolist() == [0, 0, -1, -1, 0]


def test_set_cover_reaches_target_with_fewest_cameras() -> None:
    A, w = _instance(3, n=50, m=10, density=0.2)
    mc = MaxCoverage(A, w)
    reach = float(w[np.asarray(A.sum(axis=1)).ravel() > 0].sum()) / w.sum()
    sol = mc.set_cover(0.8 * reach)
    assert float(w[sol.covered].sum()) >= 0.8 * reach * w.sum() - 1e-9
    # nothing smaller works
    Ad = A.toarray() > 0
    r = len(sol.selected) - 1
    if r >= 1:
        for S in itertools.combinations(range(10), r):
            assert float(w[Ad[:, list(S)].any(axis=1)].sum()) < 0.8 * reach * w.sum() - 1e-9
    assert reach < 1.0  # this seed leaves demand nobody sees: full coverage is unreachable
    with pytest.raises(InfeasibleError, match="unreachable"):
        mc.set_cover(1.0)


def test_errors() -> None:
    A, w = _instance(0)
    with pytest.raises(InfeasibleError):
        MaxCoverage(A, w, cost=np.full(A.shape[1], 10.0)).solve(budget=5.0)
    with pytest.raises(CoverageInputError):
        MaxCoverage(A, w[:-1])
    with pytest.raises(CoverageInputError):
        MaxCoverage(sp.csr_matrix((0, 3)), np.zeros(0))
    with pytest.raises(CoverageInputError):
        MaxCoverage(A, w).solve()


def test_kdtree_coverage_equals_distance_rule() -> None:
    rng = np.random.default_rng(1)
    d, c = rng.uniform(0, 10, (300, 2)), rng.uniform(0, 10, (40, 2))
    c[0] = d[0]  # a coincident pair counts
    A = coverage_from_points(d, c, 1.5).toarray() > 0
    dist = np.hypot(*(d[:, None, :] - c[None, :, :]).transpose(2, 0, 1))
    assert np.array_equal(A, dist <= 1.5)
    cm = MaxCoverage.from_cost_matrix(dist, np.ones(300), 1.5)
    assert np.array_equal(cm.A.toarray() > 0, A)


def test_larger_instance_gap_is_small_and_fast() -> None:
    rng = np.random.default_rng(5)
    centres = rng.uniform(0, 100, (30, 2))
    d = centres[rng.integers(0, 30, 5000)] + rng.normal(0, 3, (5000, 2))
    c = centres[rng.integers(0, 30, 500)] + rng.normal(0, 4, (500, 2))
    w = rng.integers(1, 12, 5000).astype(float)
    sol = MaxCoverage.from_points(d, c, 4.0, w).solve(40, time_limit=3.0)
    assert sol.gap <= 0.02
    assert sol.timings["total"] <= 4.0


def test_status_words_say_only_what_the_bound_proves() -> None:
    from xueliang.coverage.model import gap_words, proven_optimal, weight_quantum

    # integer weights: optimal only when bound - objective < 1 (21189 against a bound of 21190 is not)
    assert proven_optimal(21189.0, 21189.9, 1.0)
    assert not proven_optimal(21189.0, 21190.0, 1.0)
    assert proven_optimal(10.5, 10.9, 0.5) and not proven_optimal(10.5, 11.0, 0.5)
    # weights with no common quantum: zero gap only
    assert not proven_optimal(1.0, 1.0 + 1e-6, 0.0) and proven_optimal(1.0, 1.0, 0.0)
    assert weight_quantum(np.array([1.0, 3.0, 11.0])) == 1.0
    assert weight_quantum(np.array([0.5, 8.0, 10.0])) == 0.5
    assert weight_quantum(np.array([0.5, 8.0, 1.3])) == 0.1
    assert weight_quantum(np.array([np.pi, 1.0])) == 0.0
    # "within X %" rounds up, never claims less than the gap
    assert gap_words(0.002841) == "within 0.285 %"
    assert gap_words(1e-9) == "within 0.001 %"


def test_heuristic_short_of_the_bound_is_within_not_optimal() -> None:
    # greedy takes column 0 (5 rows) and then gains 1; columns 1 and 2 together see all 7 rows
    cols = [[0, 1, 2, 3, 4], [0, 1, 2, 5], [3, 4, 6]]
    A = sp.csr_matrix(np.array([[float(i in c) for c in cols] for i in range(7)]))
    w = np.ones(7)
    sol = MaxCoverage(A, w).solve(2, mip=False, local_search=False, lagrangian_iters=0, search_share=0, time_limit=1)
    assert sol.covered_weight == 6.0 and sol.upper_bound == 7.0 and sol.bound_kind == "total"
    assert sol.status == "feasible" and sol.status_text == "within 14.286 %"
    assert sol.summary()["status_text"] == "within 14.286 %"
    full = MaxCoverage(A, w).solve(2, time_limit=2)
    assert full.covered_weight == 7.0 and full.status == "optimal" and full.status_text == "optimal"
    assert full.upper_bound - full.covered_weight < 1
    s = full.summary()
    assert s["status_text"] == "optimal" and s["k_requested"] == 2 and s["k_used"] == 2 and s["bound_kind"]


def test_k_used_when_everything_coverable_is_covered() -> None:
    A = sp.csr_matrix(np.array([[1, 0], [1, 0], [0, 1], [0, 0]], dtype=float))  # row 3: nobody sees it
    sol = MaxCoverage(A, np.array([1.0, 2.0, 3.0, 4.0])).solve(5, time_limit=1)
    assert sol.k_requested == 5 and sol.k_used == 2
    assert sol.everything_coverable_covered and sol.coverable_weight == 6.0
    assert sol.k_text == "k requested 5, 2 used: everything coverable covered"
    assert sol.status == "optimal"
    # k binding: all used, not everything covered
    sol1 = MaxCoverage(A, np.array([1.0, 2.0, 3.0, 4.0])).solve(1, time_limit=1)
    assert sol1.k_text == "k requested 1, 1 used" and not sol1.everything_coverable_covered


@pytest.mark.parametrize("seed", range(3))
def test_lp_bound_certified_by_its_duals_is_valid(seed: int) -> None:
    A, w = _instance(seed, n=80, m=14)
    opt = _brute(A, w, 4)
    mc = MaxCoverage(A, w)
    sol = mc.solve(4, small_nnz=0, time_limit=5)
    assert sol.bound_kind in ("lp", "mip", "best-singles", "total")
    assert sol.upper_bound >= opt - 1e-9
    from xueliang.coverage.model import _Core

    pre = mc.presolve()
    core = _Core(pre.A, pre.weights, mc.cost, mc.site, mc.capacity)
    lpb, x = core.lp_bound(4, None, time_limit=5, interior=True)
    assert x is not None and opt - 1e-9 <= lpb
    # any multipliers give a bound; the LP's duals give (almost) the LP value
    assert core.lagrangian_value(np.zeros(core.n), 4, None) >= opt
    assert core.lagrangian_value(core.w / 2, 4, None) >= opt


def test_lp_bound_over_a_growing_candidate_support_reaches_the_full_lp() -> None:
    from xueliang.coverage.model import _Core

    rng = np.random.default_rng(11)
    A = sp.random(400, 300, density=0.02, random_state=rng, format="csr")
    A.data[:] = 1.0
    w = rng.integers(1, 10, 400).astype(float)
    pre = MaxCoverage(A, w).presolve()
    core = _Core(pre.A, pre.weights, np.ones(300), np.arange(300), np.ones(300, dtype=np.int64))
    sel, _ = core.greedy(6, None)
    full, _ = core.lp_bound(6, None, time_limit=10, interior=True)
    b, x, rounds = core.support_lp_bound(6, sel, time_limit=10, first=12)  # starts from 12 of 300 candidates
    assert rounds >= 2 and x is not None and x.shape == (300,)
    assert b == pytest.approx(full, rel=1e-6)
    res = core.mip_max(6, None, sel, time_limit=10, mip_gap=0.0, quantum=1.0)
    assert res is not None and b >= res[1] - 1e-9  # a bound on the integer optimum
