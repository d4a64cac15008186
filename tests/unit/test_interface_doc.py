"""docs/interface.md, the project's own reference, says what the code and schemas/ do."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from streams import settings as settings_module
from streams.contract import topics
from streams.dev import device, local
from streams.rules import codes as c
from streams.settings import security as kafka_security

ROOT = Path(__file__).resolve().parents[2]
DOC = (ROOT / "docs/interface.md").read_text()
RECORD_SCHEMAS = ["scan.v1.json", "scan-batch.v1.json", "entries.v1.json", "decision.v1.json", "alert.v1.json",
                  "district-stats.v1.json", "deadletter.v1.json", "policy.v1.json", "finding-event.v1.json",
                  "finding-status.v1.json", "policy-version.v1.json", "case.v1.json", "exposure.v1.json",
                  "trace.v1.json"]


def section(title: str, level: str = "## ") -> str:
    """The text under a heading, up to the next heading of the same level or higher."""
    start = DOC.index(f"\n{level}{title}")
    rest = DOC[start + 1:]
    stop = re.search(rf"\n#{{1,{len(level) - 1}}} ", rest)
    return rest[: stop.start()] if stop else rest


def table_rows(text: str) -> list[list[str]]:
    rows = [[cell.strip() for cell in line.strip().strip("|").split("|")]
            for line in text.splitlines() if line.startswith("|")]
    return [row for row in rows[2:]] if rows else []  # past the header and its rule


def names(cell: str) -> list[str]:
    return re.findall(r"`([^`]+)`", cell)


def schema(name: str) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads((ROOT / "schemas" / name).read_text())
    return loaded


def test_every_topic_is_listed_with_its_key_and_partitions() -> None:
    rows = {names(row[0])[0]: row for row in table_rows(section("Topics"))}
    assert set(rows) == {spec.name for spec in topics.ALL}
    for spec in topics.ALL:
        key, partitions = rows[spec.name][1], rows[spec.name][4]
        assert spec.key in key.strip("`") and int(partitions) == spec.partitions


def _nullable(prop: dict[str, Any]) -> bool:
    kinds = prop.get("type")
    return (isinstance(kinds, list) and "null" in kinds) or any(
        option.get("type") == "null" for option in prop.get("oneOf", []))


@pytest.mark.parametrize("schema_file", RECORD_SCHEMAS)
def test_every_field_of_every_record_schema_is_described_and_nothing_else(schema_file: str) -> None:
    doc_schema = schema(schema_file)
    shape = doc_schema["properties"]["schema"]["const"]
    text = section(f"`{shape}` (`{schema_file}`)", "### ")
    described: dict[str, str] = {}
    for row in table_rows(text.split("\n\n", 2)[1] if "\n\n" in text else text):
        for field in names(row[0]):
            described[field] = row[1]
    assert set(described) == set(doc_schema["properties"]), set(described) ^ set(doc_schema["properties"])
    required = set(doc_schema.get("required", []))
    for field, kind in described.items():
        if not kind:
            continue  # a row grouping fields "as in a scan"
        optional = field not in required or _nullable(doc_schema["properties"][field])
        assert kind.endswith("?") == optional, (field, kind)


def test_reason_codes_decisions_alert_kinds_and_dead_letter_reasons_are_the_codes_and_the_schemas() -> None:
    rules = section("Rules and decisions")
    reason_cells = " ".join(row[0] for row in table_rows(rules))
    listed = set(names(reason_cells)) | {f"HEALTH_CODE{suffix}" for suffix in ("_YELLOW", "_UNKNOWN")
                                         if f"`{suffix}`" in reason_cells}
    assert set(c.REASONS) <= listed
    for decision in c.DECISIONS:
        assert f"`{decision}`" in rules
    assert set(schema("decision.v1.json")["properties"]["decision"]["enum"]) == set(c.DECISIONS)
    kinds = {names(row[0])[0] for row in table_rows(section("Alerts"))}
    assert kinds == set(c.ALERT_KINDS) == set(schema("alert.v1.json")["properties"]["kind"]["enum"])
    reasons = set(schema("deadletter.v1.json")["properties"]["reason"]["enum"])
    assert all(f"`{reason}`" in section("Dead letters") for reason in reasons)


def test_every_policy_parameter_is_described() -> None:
    params = set(schema("policy.v1.json")["definitions"]["defaults_params"]["properties"])
    text = section("`hcs.policy.v1` (`policy.v1.json`)", "### ")
    described = {name for row in table_rows(text) for name in names(row[0])}
    assert params <= described and described - params <= {"schema", "versions"}


def test_every_metric_the_worker_exposes_is_described() -> None:
    from streams.metrics import Metrics
    from streams.settings import Settings
    from streams.worker.app import create_app

    metrics = Metrics()
    create_app(Settings(), metrics=metrics)
    exposed = set()
    for line in metrics.exposition().decode().splitlines():
        if line.startswith("# TYPE hcs_"):
            _, _, name, kind = line.split()
            exposed.add(name + ("_total" if kind == "counter" and not name.endswith("_total") else ""))
    text = section("Metrics")
    assert exposed and all(f"`{name}" in text for name in exposed), [n for n in exposed if f"`{n}" not in text]


def test_every_setting_read_is_described_and_every_one_described_is_read() -> None:
    read = {v for module in (settings_module, kafka_security, device, local) for k, v in vars(module).items()
            if k.startswith("ENV_") and v.startswith("HCS_")} | {"HCS_CACHE_DIR"}
    described = {name for row in table_rows(section("Settings")) for name in names(row[0]) if name.startswith("HCS_")}
    assert described == read, described ^ read


def test_the_readme_points_to_the_reference_and_nothing_points_to_a_file_outside_the_project() -> None:
    assert "docs/interface.md" in (ROOT / "README.md").read_text()
    for path in [ROOT / "README.md", *ROOT.glob("docs/*.md"), *ROOT.glob("schemas/*"), *ROOT.glob("streams/**/*.py")]:
        assert "CONTRACT.md" not in path.read_text(errors="replace"), path
