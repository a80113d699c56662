"""The JSON schema ``dg check defs`` validates a ``defs.yaml`` against, made to name the wrong
field. Dagster lets every attribute be a ``{{ template }}`` string (``X | None | str``), which
JSON schema writes as ``anyOf``; a typo inside a section then only says the section "is not
valid under any of the given schemas". Written as ``if object then X``, the section's own
errors come through: the unexpected field with its line, and the fields expected there."""

from __future__ import annotations

from functools import cache
from typing import Any

from pydantic import BaseModel


def _precise(node: Any) -> Any:
    if isinstance(node, list):
        return [_precise(n) for n in node]
    if not isinstance(node, dict):
        return node
    node = {k: _precise(v) for k, v in node.items()}
    if node.get("additionalProperties") is False and isinstance(node.get("properties"), dict):
        node["propertyNames"] = {"enum": list(node["properties"])}  # the error lists the fields
    options = node.get("anyOf")
    if isinstance(options, list):
        refs = [o for o in options if "$ref" in o]
        others = [o for o in options if "$ref" not in o]
        if len(refs) == 1 and all(set(o) == {"type"} and o["type"] in ("null", "string") for o in others):
            del node["anyOf"]
            node["if"] = {"type": "object"}
            node["then"] = refs[0]
            node["else"] = {"type": [o["type"] for o in others]} if others else False
    return node


@cache
def precise_schema_model(model: type[BaseModel]) -> type[BaseModel]:
    """``model`` whose ``model_json_schema`` reports errors inside nested sections."""

    class Precise(model):  # type: ignore[misc, valid-type]
        @classmethod
        def model_json_schema(cls, *args: Any, **kwargs: Any) -> dict[str, Any]:
            return _precise(model.model_json_schema(*args, **kwargs))

    Precise.__name__ = Precise.__qualname__ = model.__name__
    return Precise
