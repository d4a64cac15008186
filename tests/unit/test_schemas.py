"""schemas/: valid JSON Schemas, an AsyncAPI document that covers every contract topic."""

from __future__ import annotations

from pathlib import Path

import jsonschema
import pytest
import yaml

from streams.contract import topics
from streams.contract.validation import SCHEMA_DIR, load_schema
from tests import factories as f
from tests.schema_check import assert_valid

SCHEMAS = sorted(p.stem for p in Path(SCHEMA_DIR).glob("*.json"))


def test_every_topic_value_and_the_policy_file_have_a_schema() -> None:
    assert SCHEMAS == ["alert-action.v1", "alert.v1", "case.v1", "deadletter.v1", "decision.v1", "district-stats.v1",
                       "entries.v1",
                       "exposure.v1", "finding-event.v1", "finding-status.v1", "incident.v1", "isolation-day.v1",
                       "management.v1",
                       "observation.v1", "policy-version.v1", "policy.v1", "scan-batch.v1", "scan.v1", "trace.v1"]


@pytest.mark.parametrize("name", SCHEMAS)
def test_each_schema_is_a_valid_draft7_schema(name: str) -> None:
    jsonschema.Draft7Validator.check_schema(load_schema(name))


def test_the_asyncapi_document_describes_every_contract_topic_with_existing_schemas() -> None:
    doc = yaml.safe_load((Path(SCHEMA_DIR) / "asyncapi.yaml").read_text())
    assert doc["asyncapi"].startswith("3.")
    addresses = {ch["address"] for ch in doc["channels"].values()}
    assert addresses == {spec.name for spec in topics.ALL}
    for message in doc["components"]["messages"].values():
        ref = message["payload"]["schema"]["$ref"]
        assert (Path(SCHEMA_DIR) / ref).is_file(), ref
    for channel in doc["channels"].values():
        spec = next(s for s in topics.ALL if s.name == channel["address"])
        assert f"{spec.partitions} partition{'s' if spec.partitions > 1 else ''}" in channel["description"]


def test_the_test_factories_make_schema_valid_scans() -> None:
    assert_valid("scan.v1", [f.scan()])
    assert_valid("scan-batch.v1", [f.batch([f.scan()])])


def test_the_packaged_policy_is_schema_valid() -> None:
    import json

    from streams.rules.policy import DEFAULT_POLICY_PATH

    assert_valid("policy.v1", [json.loads(DEFAULT_POLICY_PATH.read_text())])
