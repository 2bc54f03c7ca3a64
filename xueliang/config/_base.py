"""Shared pieces of the strict configuration tree."""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

Point = tuple[float, float]
Polygon = Annotated[list[Point], Field(min_length=3, description="image or map coordinates, [[x, y], ...]")]
ID_FIRST, ID_REST = "[A-Za-z0-9]", r"[A-Za-z0-9_.\-]"
ID_MAX_LEN = 64
ID_PATTERN = f"^{ID_FIRST}{ID_REST}*$"
"""An identifier (centre, camera, rule, zone, incident, map layer): a letter or digit, then letters,
digits, ``_``, ``.`` or ``-``; at most :data:`ID_MAX_LEN` characters."""
Identifier = Annotated[str, Field(min_length=1, max_length=ID_MAX_LEN, pattern=ID_PATTERN)]


class StrictModel(BaseModel):
    """Base of every config section: unknown keys are errors, never ignored."""

    model_config = ConfigDict(extra="forbid", validate_default=True)
