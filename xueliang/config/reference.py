"""Render the configuration reference (docs/configuration.md) from the pydantic models themselves,
so the documentation cannot drift from what the loader accepts.

    python -m xueliang.config.reference > docs/configuration.md
"""

from __future__ import annotations

import types
import typing
from enum import Enum

from pydantic import BaseModel
from pydantic.fields import FieldInfo
from pydantic_core import PydanticUndefined

from xueliang.config import Settings


def _type_name(tp: object) -> str:
    origin = typing.get_origin(tp)
    if origin is typing.Annotated:
        return _type_name(typing.get_args(tp)[0])
    if origin in (typing.Union, types.UnionType):
        return " | ".join(_type_name(a) for a in typing.get_args(tp))
    if origin is typing.Literal:
        return " | ".join(repr(a) for a in typing.get_args(tp))
    if origin in (list, tuple, dict):
        args = ", ".join(_type_name(a) for a in typing.get_args(tp) if a is not Ellipsis)
        return f"{origin.__name__}[{args}]"
    if isinstance(tp, type):
        if issubclass(tp, Enum):
            return " | ".join(repr(m.value) for m in tp)
        return tp.__name__
    return str(tp).replace("typing.", "")


def _default(field: FieldInfo) -> str:
    if field.default_factory is not None:
        try:
            value = field.default_factory()  # type: ignore[call-arg]  # pydantic allows a factory of the data; ours take none
        except TypeError:
            return "(computed)"
    elif field.default is PydanticUndefined:
        return "**required**"
    else:
        value = field.default
    if isinstance(value, BaseModel):
        return "(section defaults)"
    if isinstance(value, list) and value and isinstance(value[0], BaseModel):
        return f"({len(value)} entries)"
    if isinstance(value, dict) and value and isinstance(next(iter(value.values())), BaseModel):
        return "(per key, see below)"
    if isinstance(value, Enum):
        value = value.value
    return f"`{value!r}`"


def _models(tp: object) -> list[type[BaseModel]]:
    out: list[type[BaseModel]] = []
    if isinstance(tp, type) and issubclass(tp, BaseModel):
        return [tp]
    for arg in typing.get_args(tp):
        out += _models(arg)
    return out


def render() -> str:
    lines = [
        "# Configuration reference",
        "",
        "Generated from the models by `python -m xueliang.config.reference`; unknown keys are errors. "
        "`${VAR}` and `${VAR:-default}` are expanded from the environment (keep secrets there). "
        "Check a file with `xueliang validate-config FILE`: errors name the field path and the line.",
        "",
    ]
    seen: set[type[BaseModel]] = set()
    queue: list[tuple[str, type[BaseModel]]] = [("(top level)", Settings)]
    while queue:
        path, model = queue.pop(0)
        if model in seen:
            continue
        seen.add(model)
        title = model.__name__ + ("" if path == "(top level)" else f" — `{path}`")
        lines += [f"## {title}", ""]
        doc = (model.__doc__ or "").strip().split("\n\n")[0].replace("\n", " ")
        if doc and not doc.startswith(("Usage docs", "!!! abstract")):
            lines += [doc, ""]
        lines += ["| key | type | default | meaning |", "|---|---|---|---|"]
        for name, field in model.model_fields.items():
            if name == "default_severity":
                continue
            key = field.alias or name
            desc = (field.description or "").replace("|", "\\|").replace("\n", " ")
            lines.append(
                f"| `{key}` | {_type_name(field.annotation).replace('|', chr(92) + '|')} | {_default(field)} | {desc} |"
            )
            for sub in _models(field.annotation):
                queue.append((f"{path}.{key}" if path != "(top level)" else key, sub))
        lines.append("")
    return "\n".join(lines)


if __name__ == "__main__":  # pragma: no cover
    print(render())
