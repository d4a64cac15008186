"""``hcs ack``, ``hcs resolve`` and ``hcs incidents``: checked against the incident's state, one-line refusals."""

from __future__ import annotations

from typing import Any

import pytest

from streams.errors import InspectionError
from streams.ops import oncall
from streams.ops.tail import format_incident
from tests.unit.test_bridge import PERSON, incident

NOW = 1652140800.0 + 3600


def incidents(*items: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {i["dedup_key"]: i for i in items}


def test_an_incident_is_found_by_its_dedup_key_or_an_alert_id() -> None:
    known = incidents(incident("TRIGGERED", 1, [("trigger", 1)]))
    assert oncall.find(known, str(PERSON["dedup_key"]))["incident_id"] == "inc-1"
    assert oncall.find(known, "a1")["incident_id"] == "inc-1"
    with pytest.raises(InspectionError, match="no incident for 'a2'"):
        oncall.find(known, "a2")


def test_an_action_is_written_only_when_the_incident_allows_it() -> None:
    live = incident("ACKNOWLEDGED", 2, [("trigger", 1), ("escalate", 2), ("ack", 2)])
    value = oncall.action_record("resolve", live, 2, NOW)
    assert (value["schema"], value["dedup_key"], value["action"], value["level"]) == (
        "hcs.alert-action.v1", PERSON["dedup_key"], "resolve", 2)
    assert oncall.action_record("ack", live, 1, NOW)["action"] == "ack"  # a renewed ack
    resolved = {**incident("RESOLVED", 1, [("trigger", 1), ("resolve", 1)]), "resolved_at": "2022-05-10T08:10:00+08:00"}
    with pytest.raises(InspectionError, match=r"^not written: incident inc-1 is RESOLVED since 2022-05-10 08:10"):
        oncall.action_record("ack", resolved, 1, NOW)


def test_incidents_are_listed_oldest_first_and_filtered() -> None:
    older = {**incident("ACKNOWLEDGED", 1, [("trigger", 1), ("ack", 1)]), "dedup_key": "k-older",
             "triggered_at": "2022-05-10T08:00:00+08:00", "acknowledged_at": "2022-05-10T08:02:30+08:00"}
    newer = {**incident("RESOLVED", 1, [("trigger", 1)]), "dedup_key": "k-newer", "incident_id": "inc-2",
             "triggered_at": "2022-05-10T08:30:00+08:00"}
    lines = oncall.table([newer, older], NOW)
    assert lines[0].split()[:3] == ["age", "status", "level"]
    assert lines[1].split()[:3] == ["1h00m", "ACKNOWLEDGED", "L1"] and "2m" in lines[1].split()
    assert lines[2].split()[:2] == ["30m", "RESOLVED"]
    assert oncall.table([newer, older], NOW, open_only=True)[1:] == [lines[1]]
    assert oncall.table([newer, older], NOW, district="330105") == ["no incidents match"]


def test_tail_shows_each_alert_with_its_incident_status_and_level() -> None:
    line = format_incident(incident("TRIGGERED", 2, [("trigger", 1), ("escalate", 2)]), colour=False)
    assert line.startswith("TRIGGERED    L2 escalated")
    assert "CRIT KEY_PERSON_DETECTED" in line and str(PERSON["person_ref"]) not in line
