"""Validate records against the JSON Schemas of ``schemas/`` with the reference validator."""

from __future__ import annotations

from typing import Any

import jsonschema
from referencing import Registry, Resource

from streams.contract.validation import SCHEMA_DIR, load_schema

FORMAT_CHECKER = jsonschema.Draft7Validator.FORMAT_CHECKER


def registry() -> Registry:
    """Every schema of ``schemas/`` by its ``$id``: one may refer to another (an incident's alert)."""
    schemas = [load_schema(path.stem) for path in sorted(SCHEMA_DIR.glob("*.json"))]
    return Registry().with_resources(
        (schema["$id"], Resource.from_contents(schema)) for schema in schemas)


def assert_valid(schema_name: str, records: list[dict[str, Any]]) -> None:
    validator = jsonschema.Draft7Validator(load_schema(schema_name), format_checker=FORMAT_CHECKER,
                                           registry=registry())
    for record in records:
        clean = {k: v for k, v in record.items() if not k.startswith("_")}
        errors = sorted(validator.iter_errors(clean), key=lambda e: list(e.path))
        assert not errors, f"{schema_name}: {[(list(e.path), e.message) for e in errors]} in {clean}"
