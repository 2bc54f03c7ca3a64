"""Errors raised by the coverage planner.

Every error that bad input can cause is a :class:`CoverageInputError` naming the file
(or request field) and the feature at fault, so the CLI and the API can report it
without a traceback. Optimisation problems that cannot be satisfied raise
:class:`InfeasibleError`.
"""

from __future__ import annotations


class CoverageError(Exception):
    """Base class of the coverage planner's errors."""


class CoverageInputError(CoverageError, ValueError):
    """Bad input: names the source (file or request field) and, where known, the feature."""

    def __init__(self, message: str, *, source: str | None = None, feature: str | int | None = None) -> None:
        self.source = source
        self.feature = feature
        where = ""
        if source is not None:
            where = f"{source}"
            if feature is not None:
                where += f", feature {feature}"
            where += ": "
        super().__init__(where + message)


class InfeasibleError(CoverageError):
    """The requested plan cannot be achieved (budget too small, target share unreachable...)."""
