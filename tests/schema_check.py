"""Validate records against the JSON Schemas of ``schemas/`` with the reference validator."""

from __future__ import annotations

from typing import Any

import jsonschema

from streams.contract.validation import load_schema

FORMAT_CHECKER = jsonschema.Draft7Validator.FORMAT_CHECKER


def assert_valid(schema_name: str, records: list[dict[str, Any]]) -> None:
    validator = jsonschema.Draft7Validator(load_schema(schema_name), format_checker=FORMAT_CHECKER)
    for record in records:
        clean = {k: v for k, v in record.items() if not k.startswith("_")}
        errors = sorted(validator.iter_errors(clean), key=lambda e: list(e.path))
        assert not errors, f"{schema_name}: {[(list(e.path), e.message) for e in errors]} in {clean}"
