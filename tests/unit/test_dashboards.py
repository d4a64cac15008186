"""Grafana dashboards: generated from deploy/grafana/generate.py, well-formed, uniform."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]


def generator() -> ModuleType:
    spec = importlib.util.spec_from_file_location("grafana_generate", ROOT / "deploy/grafana/generate.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def boards() -> dict[str, dict[str, Any]]:
    return {p.name: json.loads(p.read_text()) for p in sorted((ROOT / "deploy/grafana/dashboards").glob("*.json"))}


def test_the_committed_json_is_what_the_generator_writes() -> None:
    gen = generator()
    assert set(boards()) == set(gen.DASHBOARDS)
    for name, board in gen.DASHBOARDS.items():
        assert (ROOT / "deploy/grafana/dashboards" / name).read_text() == gen.render(board), (
            f"{name} is stale: run python deploy/grafana/generate.py")


@pytest.mark.parametrize("name", sorted(boards()))
def test_every_panel_has_a_unique_id_a_prometheus_query_and_a_place(name: str) -> None:
    board = boards()[name]
    ids = [p["id"] for p in board["panels"]]
    assert len(ids) == len(set(ids))
    for p in (p for p in board["panels"] if p["type"] != "row"):
        assert p["datasource"]["uid"] == "prometheus"
        assert p["targets"] and all(t["expr"].strip() for t in p["targets"])
        assert set(p["gridPos"]) == {"h", "w", "x", "y"}


def test_the_district_drill_down_has_a_district_variable_used_by_every_panel() -> None:
    board = boards()["hcs-district.json"]
    (variable,) = board["templating"]["list"]
    assert variable["name"] == "district" and variable["query"] == "label_values(hcs_scans_total, district)"
    # Every panel is the district's, but the one fact of all districts: the policy version in force.
    assert all('district="$district"' in t["expr"] or p["title"].endswith("(all districts)")
               for p in board["panels"] for t in p.get("targets", []))
    assert [p["title"] for p in board["panels"] if p["title"].endswith("(all districts)")] == [
        "Policy version in force (all districts)"]


def test_the_city_overview_covers_what_the_command_centre_asked_for() -> None:
    titles = " | ".join(p["title"] for p in boards()["hcs-city.json"]["panels"]).lower()
    for topic in ("scans per second", "deny rate", "alerts by kind", "compliance", "late", "dead letters", "lag"):
        assert topic in titles
