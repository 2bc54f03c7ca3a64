"""The solvers over a presolved matrix, together: what :meth:`MaxCoverage.solve` and ``set_cover`` drive."""

from __future__ import annotations

from xueliang.coverage.model.lp import LpBounds
from xueliang.coverage.model.search import SearchHeuristics


class _Core(SearchHeuristics, LpBounds):
    """Solvers over a presolved matrix (rows unique, weights summed): search heuristics (:mod:`.search`),
    Lagrangian bounds (:mod:`.lagrangian`), HiGHS models (:mod:`.highs`) and LP bounds (:mod:`.lp`)."""
