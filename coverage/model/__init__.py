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

Layout: :mod:`.instance` (the matrix from coordinates, presolve), :mod:`.problem` (:class:`MaxCoverage`),
:mod:`.pipeline` (the stages of ``solve``), :mod:`.solution` (:class:`CoverageSolution`, the status words);
the solvers over the presolved matrix, one concern each and joined in :mod:`.core`: :mod:`.search`
(greedy, local search), :mod:`.lagrangian` (the Lagrangian bound), :mod:`.highs` (the MIPs), :mod:`.lp`
(the LP bound).
"""

from xueliang.coverage.model.core import _Core
from xueliang.coverage.model.instance import Presolved, coverage_from_points
from xueliang.coverage.model.lp import support_columns
from xueliang.coverage.model.problem import MaxCoverage
from xueliang.coverage.model.solution import (
    BOUND_KINDS,
    CoverageSolution,
    gap_words,
    proven_optimal,
    weight_quantum,
)

__all__ = [
    "BOUND_KINDS",
    "CoverageSolution",
    "MaxCoverage",
    "Presolved",
    "_Core",
    "coverage_from_points",
    "gap_words",
    "proven_optimal",
    "support_columns",
    "weight_quantum",
]
