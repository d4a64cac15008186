"""The JSON Schemas of ``schemas/``: loading, compiled validators, and readable error details."""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

import fastjsonschema

SCHEMA_DIR = Path(__file__).parents[1] / "schemas"  # streams/schemas: a symlink to the repo's schemas/ in a checkout


class SchemaViolation(Exception):
    """A value broke its schema; ``detail`` is ``field.path: what was wrong``."""

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


def load_schema(name: str) -> dict[str, Any]:
    """A JSON Schema of ``schemas/`` by file stem, e.g. ``scan.v1``."""
    schema: dict[str, Any] = json.loads((SCHEMA_DIR / f"{name}.json").read_text(encoding="utf-8"))
    return schema


@cache
def _validator(name: str) -> Any:
    return fastjsonschema.compile(load_schema(name))


def _bad_name(path: str, value: dict[str, Any], names: dict[str, Any]) -> tuple[str, str]:
    """(path of the first key of ``value`` its ``propertyNames`` schema refuses, what is wrong):
    ``versions.0.venue_types.scool: unknown venue type``, not the validator's generic words."""
    check = fastjsonschema.compile(names)
    for key in value:
        try:
            check(key)
        except fastjsonschema.JsonSchemaValueException:
            expected = names.get("x-expected")
            what = f"must be {expected}" if expected else names.get("x-unknown", "is not an allowed name")
            return f"{path}.{key}" if path else key, what
    return path, "has a name that is not allowed"


def validate(name: str, value: Any, where: str = "") -> None:
    """Raise :class:`SchemaViolation` naming the field (behind ``where``) if ``value`` breaks schema ``name``."""
    try:
        _validator(name)(value)
    except fastjsonschema.JsonSchemaValueException as exc:
        path = ".".join(str(p) for p in exc.path[1:]) if exc.path else ""
        message = exc.message.removeprefix(exc.name or "").strip() or exc.message
        definition = exc.definition if isinstance(exc.definition, dict) else {}
        if exc.rule == "pattern" and definition.get("x-expected"):
            message = f"must be {definition['x-expected']}, got {exc.value!r}"
        if exc.rule == "propertyNames" and isinstance(exc.value, dict):
            path, message = _bad_name(path, exc.value, definition.get("propertyNames", {}))
        raise SchemaViolation(f"{where}{path or '(record)'}: {message}") from None
