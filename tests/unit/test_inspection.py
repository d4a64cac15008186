"""``hcs finding``'s checks before writing, and ``hcs findings``' table (no broker)."""

from __future__ import annotations

from typing import Any

import msgspec
import orjson
import pytest

from streams.concepts.supervision import status_record
from streams.contract.models import FindingEvent
from streams.errors import InspectionError
from streams.ops import inspection
from streams.rules import findings as rules

T = 1_652_140_800.0  # 2022-05-10 08:00 +08:00
H = 3600.0


def status(finding_id: str = "F-1", **changes: Any) -> dict[str, Any]:
    opened = rules.apply(None, FindingEvent(finding_id, "mall-1", "mall", "330106", "open", T, "MASK"), 48, 7)
    assert isinstance(opened, rules.Finding)
    record: dict[str, Any] = orjson.loads(msgspec.json.encode(status_record(opened)))
    record.update(changes)
    return record


def test_a_status_read_back_is_the_finding_the_worker_wrote() -> None:
    finding = rules.apply(None, FindingEvent("F-1", "mall-1", "mall", "330106", "open", T, "MASK"), 48, 7)
    assert isinstance(finding, rules.Finding)
    moved = rules.apply(finding, FindingEvent("F-1", "mall-1", "mall", "330106", "rectify", T + H), 48, 7)
    assert isinstance(moved, rules.Finding)
    assert inspection.as_finding(orjson.loads(msgspec.json.encode(status_record(moved)))) == moved


def test_a_follow_up_takes_the_venue_from_the_status_and_is_refused_when_the_state_does_not_allow_it() -> None:
    statuses = {"F-1": status()}
    value = inspection.follow_up("rectify", "F-1", statuses, T + H)
    assert (value["venue_id"], value["venue_type"], value["district"], value["action"]) == (
        "mall-1", "mall", "330106", "rectify")
    with pytest.raises(InspectionError, match=r"^not written: action: verify is not allowed on a finding that is OPEN"):
        inspection.follow_up("verify", "F-1", statuses, T + H)
    with pytest.raises(InspectionError, match="finding F-2 is not on the status topic"):
        inspection.follow_up("rectify", "F-2", statuses, T + H)


def test_an_open_is_checked_by_the_workers_decoder() -> None:
    with pytest.raises(InspectionError, match=r"^not written: note: holds a resident ID number$"):
        inspection.event_record("open", "F-1", "mall-1", "mall", "330106", T, problem="MASK",
                                note="11010519491231002X")
    with pytest.raises(InspectionError, match=r"^not written: deadline: is not after at$"):
        inspection.event_record("open", "F-1", "mall-1", "mall", "330106", T, problem="MASK",
                                deadline="2022-05-10T07:00:00+08:00")
    assert inspection.new_finding_id("330106", T).startswith("330106-20220510-")


def test_the_table_lists_by_deadline_and_filters() -> None:
    rows = [status("F-late", deadline="2022-05-11T08:00:00.000+08:00", overdue=True),
            status("F-soon", deadline="2022-05-10T12:00:00.000+08:00", district="330105"),
            status("F-done", status="CLOSED")]
    lines = inspection.table(rows)
    assert [line.split()[0] for line in lines] == ["finding", "F-soon", "F-late", "F-done"]
    assert lines[2].split()[7:10] == ["2022-05-11", "08:00:00+08", "yes"]
    assert [line.split()[0] for line in inspection.table(rows, overdue=True)] == ["finding", "F-late"]
    assert [line.split()[0] for line in inspection.table(rows, district="330105")] == ["finding", "F-soon"]
    assert inspection.table(rows, status="REOPENED") == ["no findings match"]
