"""Shared pieces of the strict configuration tree."""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

Point = tuple[float, float]
Polygon = Annotated[list[Point], Field(min_length=3, description="image or map coordinates, [[x, y], ...]")]
Identifier = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.\-]*$")]


class StrictModel(BaseModel):
    """Base of every config section: unknown keys are errors, never ignored."""

    model_config = ConfigDict(extra="forbid", validate_default=True)
