"""The command-centre tree: city → county → township → village (市/区县/乡镇街道/村社区)."""

from __future__ import annotations

from collections.abc import Iterator

from pydantic import Field, model_validator

from xueliang.config._base import Identifier, StrictModel
from xueliang.ranked import RankedStrEnum


class Tier(RankedStrEnum):
    city = "city"
    county = "county"
    township = "township"
    village = "village"

    @property
    def depth(self) -> int:
        """Levels below the city: 0 for the city, 3 for a village."""
        return self.rank


class Centre(StrictModel):
    id: Identifier
    name: str = Field(description="display name, e.g. 柯桥区综治中心")
    tier: Tier
    division_code: str | None = Field(
        None,
        pattern=r"^\d{6}(\d{2}|\d{3}|\d{6})?$",
        description="administrative division code: 6 digits (county), 8 (GB/T 28181 grassroots unit), 9 (township) or 12 (village)",
    )
    children: list[Centre] = Field(default_factory=list)

    @model_validator(mode="after")
    def _children_one_tier_down(self) -> Centre:
        for child in self.children:
            if child.tier.depth != self.tier.depth + 1:
                raise ValueError(f"centre {child.id!r} ({child.tier}) cannot sit under {self.id!r} ({self.tier})")
        return self

    def walk(self, parent: Centre | None = None) -> Iterator[tuple[Centre, Centre | None]]:
        yield self, parent
        for child in self.children:
            yield from child.walk(self)
