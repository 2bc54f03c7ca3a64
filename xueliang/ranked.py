"""String enums whose members are ordered by declaration: incident severity, command-centre tier,
SLA flag. The order is the enum's definition, written once; comparisons go through :attr:`rank`."""

from __future__ import annotations

from enum import StrEnum


class RankedStrEnum(StrEnum):
    """A :class:`~enum.StrEnum` whose members rank by their position in the class body (0 first)."""

    @property
    def rank(self) -> int:
        return list(type(self)).index(self)
