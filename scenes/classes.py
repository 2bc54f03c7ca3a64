"""The project's object classes, in the fixed order the shipped model was trained with.

Everyone (scene generator, training, detector, rules) takes class ids and names from here.
"""

from __future__ import annotations

CLASS_NAMES: tuple[str, ...] = ("person", "bicycle", "motorbike", "car", "truck", "fire", "smoke")
CLASS_IDS: dict[str, int] = {name: i for i, name in enumerate(CLASS_NAMES)}
VEHICLE_CLASSES: frozenset[str] = frozenset({"bicycle", "motorbike", "car", "truck"})
HAZARD_CLASSES: frozenset[str] = frozenset({"fire", "smoke"})


def class_id(name: str) -> int:
    """Class id of ``name``; a clear error for unknown names."""
    try:
        return CLASS_IDS[name]
    except KeyError:
        raise ValueError(f"unknown class {name!r}; known classes: {', '.join(CLASS_NAMES)}") from None
