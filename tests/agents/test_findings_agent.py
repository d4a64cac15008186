"""Closed-loop supervision through the worker's drains and timer: findings moved by inspectors'
events, by the alerts raised at their venue and by stream time; refusals dead-lettered."""

from __future__ import annotations

import base64
import time
from datetime import datetime, timedelta
from typing import Any

import orjson
import pytest

from streams.contract import topics
from streams.times import rfc3339
from streams.worker.app import HcsApp
from tests import factories as f
from tests.agents.conftest import RecordingSink, drive, make_app
from tests.schema_check import assert_valid

T0 = f.T0  # 2022-05-10 08:00 Shanghai
H, D = timedelta(hours=1), timedelta(days=1)
_n = iter(range(1_000_000))


def out(when: datetime) -> str:
    """A time as the worker writes it."""
    return rfc3339(when.timestamp())


def finding(action: str, at: datetime, finding_id: str = "F-1", venue_id: str = "venue-1",
            **fields: Any) -> dict[str, Any]:
    return {"schema": "hcs.finding-event.v1", "event_id": f"fe-{next(_n)}", "finding_id": finding_id,
            "venue_id": venue_id, "venue_type": fields.pop("venue_type", "mall"), "district": "330106",
            "action": action, "at": f.ts(at), **fields}


def events(app: HcsApp, *values: dict[str, Any]) -> None:
    drive(app, "supervise_findings", [(v["venue_id"].encode(), f.encode(v), 0, None) for v in values])


def scans(app: HcsApp, *values: dict[str, Any]) -> None:
    drive(app, "judge_scans", [(v["venue_id"].encode(), f.encode(v), 0,
                                datetime.fromisoformat(v["event_time"]).timestamp()) for v in values])


def tick(app: HcsApp) -> None:
    """One run of the window timer (windows, days, then findings)."""
    now = time.time()
    app.wiring.windows.close(now)
    app.wiring.isolation.close(now)
    app.wiring.supervision.tick(now)
    app.wiring.flush()


def statuses(sink: RecordingSink, finding_id: str = "F-1") -> list[dict[str, Any]]:
    return [s for s in sink.of(topics.FINDING_STATUS) if s["finding_id"] == finding_id]


def alerts(sink: RecordingSink, kind: str) -> list[dict[str, Any]]:
    return [a for a in sink.of(topics.ALERTS) if a["kind"] == kind]


def strip(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{k: v for k, v in r.items() if k != "_key"} for r in records]


def sample(app: HcsApp, name: str, **labels: str) -> float:
    return app.metrics.registry.get_sample_value(name, labels) or 0.0


def test_rectified_verified_and_looked_back_a_finding_closes_and_later_actions_are_refused() -> None:
    app, sink, _ = make_app()
    opened = finding("open", T0, problem="MASK", checkpoint_id="cp-1", note="no masks at the gate")
    events(app, opened, opened,  # redelivered: applied once
           finding("rectify", T0 + H), finding("verify", T0 + 2 * H))
    assert [s["status"] for s in statuses(sink)] == ["OPEN", "PENDING_VERIFICATION", "VERIFIED"]
    verified = statuses(sink)[-1]
    assert verified["look_back_at"] == out(T0 + 2 * H + 7 * D)
    assert verified["deadline"] == out(T0 + 48 * H)
    # Stream time past the look-back, but not past it plus the grace of the alerts that count.
    scans(app, f.scan(at=T0 + 2 * H + 7 * D + H))
    tick(app)
    assert statuses(sink)[-1]["status"] == "VERIFIED"
    scans(app, f.scan(at=T0 + 2 * H + 7 * D + 2 * H))
    tick(app)
    closed = statuses(sink)[-1]
    assert closed["status"] == "CLOSED"
    assert [(h["action"], h["at"]) for h in closed["history"]] == [
        ("open", out(T0)), ("rectify", out(T0 + H)), ("verify", out(T0 + 2 * H)),
        ("close", out(T0 + 2 * H + 7 * D))]
    assert "no masks" not in str(sink.sent)  # the note stays with the inspectors
    events(app, finding("rectify", T0 + 10 * D), finding("open", T0 + 10 * D, problem="OTHER", note="ask Mr Li"))
    dead = sink.of(topics.DLQ)
    kept = [orjson.loads(base64.b64decode(d["payload_b64"])) for d in dead]
    assert [k.get("note") for k in kept] == [None, "[redacted]"] and kept[1]["finding_id"] == "F-1"
    assert [d["payload_redacted"] for d in dead] == [None, "note"]
    assert [(d["reason"], d["detail"]) for d in dead] == [
        ("INVALID_TRANSITION", "action: rectify is not allowed on a finding that is CLOSED"),
        ("INVALID_TRANSITION", "action: open is not allowed on a finding that is CLOSED")]
    assert len(statuses(sink)) == 4  # a refusal changes nothing
    assert_valid("finding-status.v1", strip(statuses(sink)))
    assert_valid("deadletter.v1", strip(dead))
    assert [sample(app, "hcs_finding_transitions_total", district="330106", action=a)
            for a in ("open", "rectify", "verify", "close")] == [1, 1, 1, 1]
    assert sample(app, "hcs_findings", district="330106", status="CLOSED") == 1
    assert sample(app, "hcs_duplicates_total", topic="hcs.findings.v1") == 1


def test_a_violation_before_the_look_back_reopens_with_a_new_deadline_and_an_alert() -> None:
    app, sink, _ = make_app()
    events(app, finding("open", T0, problem="MASK"), finding("rectify", T0 + H), finding("verify", T0 + 2 * H))
    # A window at a checkpoint of the venue with a temperature miss: no recurrence of MASK.
    window = T0 + D
    scans(app, f.scan(at=window, temperature_c=None), f.scan(at=window + 12 * timedelta(minutes=1)))
    tick(app)
    assert len(alerts(sink, "THREE_100_VIOLATION")) == 1 and statuses(sink)[-1]["status"] == "VERIFIED"
    # One with a mask miss: the finding is reopened.
    scans(app, f.scan(at=window + 2 * H, mask=False), f.scan(at=window + 2 * H + 12 * timedelta(minutes=1)))
    tick(app)
    reopened = statuses(sink)[-1]
    end = window + 2 * H + timedelta(minutes=10)  # the violation's window end: the recurrence's time
    assert (reopened["status"], reopened["repeat_count"], reopened["deadline"], reopened["look_back_at"]) == (
        "REOPENED", 1, out(end + 48 * H), None)
    (alert,) = alerts(sink, "FINDING_REOPENED")
    assert (alert["severity"], alert["dedup_key"], alert["venue_id"], alert["person_ref"]) == (
        "warning", "FINDING_REOPENED|F-1|1", "venue-1", None)
    assert alert["details"] == {"finding_id": "F-1", "problem": "MASK", "source": "inspection", "repeat_count": 1,
                                "deadline": out(end + 48 * H)}
    assert_valid("alert.v1", strip([alert]))
    # Reopened counts as open: rectified again, it waits for verification.
    events(app, finding("rectify", end + H))
    assert statuses(sink)[-1]["status"] == "PENDING_VERIFICATION"


def test_nothing_rectified_by_the_deadline_raises_one_overdue_alert() -> None:
    app, sink, _ = make_app()
    events(app, finding("open", T0, problem="THREE_100", deadline=f.ts(T0 + H)))
    scans(app, f.scan(at=T0 + H))
    tick(app)
    assert not statuses(sink)[-1]["overdue"]  # at the deadline: in time
    scans(app, f.scan(at=T0 + 2 * H))
    tick(app)
    tick(app)
    late = statuses(sink)[-1]
    assert late["overdue"] and late["status"] == "OPEN" and late["history"][-1] == {"action": "overdue",
                                                                                     "at": out(T0 + H)}
    (alert,) = alerts(sink, "FINDING_OVERDUE")
    assert (alert["severity"], alert["dedup_key"]) == ("warning", "FINDING_OVERDUE|F-1|0")
    assert sample(app, "hcs_findings_overdue", district="330106") == 1
    events(app, finding("rectify", T0 + 3 * H))
    assert not statuses(sink)[-1]["overdue"] and sample(app, "hcs_findings_overdue", district="330106") == 0


def test_three_violation_windows_of_a_checkpoint_in_a_day_open_one_automatic_finding() -> None:
    app, sink, _ = make_app()
    for i in range(4):
        start = T0 + i * H
        scans(app, f.scan(at=start, mask=False), f.scan(at=start + timedelta(minutes=12)))
        tick(app)
    assert len(alerts(sink, "THREE_100_VIOLATION")) == 4
    (auto,) = statuses(sink, "auto|venue-1|2022-05-10")
    assert (auto["source"], auto["problem"], auto["status"], auto["venue_type"]) == (
        "auto", "THREE_100", "OPEN", "mall")
    assert auto["opened_at"] == out(T0 + 2 * H + timedelta(minutes=10))  # the third window's end
    # Its id is the worker's: inspectors rectify it, but cannot open one.
    events(app, finding("rectify", T0 + 5 * H, finding_id="auto|venue-1|2022-05-10"),
           finding("open", T0 + 5 * H, finding_id="auto|venue-1|2022-05-11", problem="THREE_100"))
    assert statuses(sink, "auto|venue-1|2022-05-10")[-1]["status"] == "PENDING_VERIFICATION"
    (dead,) = sink.of(topics.DLQ)
    assert (dead["reason"], dead["detail"]) == ("SCHEMA_INVALID", "finding_id: auto| is kept for automatic findings")


@pytest.mark.parametrize(("change", "reason", "field"), [
    ({"action": "open"}, "SCHEMA_INVALID", "problem"),
    ({"action": "close"}, "SCHEMA_INVALID", "action"),
    ({"action": "rectify", "deadline": f.ts(T0 + H)}, "SCHEMA_INVALID", "deadline"),
    ({"action": "open", "problem": "MASK", "deadline": f.ts(T0 - H)}, "SCHEMA_INVALID", "deadline"),
    ({"action": "open", "problem": "MASK", "note": "x" * 501}, "SCHEMA_INVALID", "note"),
    ({"action": "open", "problem": "MASK", "note": "see 11010519491231002X"}, "SCHEMA_INVALID", "note"),
    ({"action": "rectify", "finding_id": "F-9"}, "INVALID_TRANSITION", "action"),
])
def test_bad_finding_events_are_dead_lettered_with_the_field_at_fault(change: dict[str, Any], reason: str,
                                                                       field: str) -> None:
    app, sink, _ = make_app()
    events(app, {**finding("open", T0), **change})
    (dead,) = sink.of(topics.DLQ)
    assert (dead["reason"], dead["detail"].split(":")[0]) == (reason, field)
    assert "11010519491231002X" not in str(dead)
    assert sink.of(topics.FINDING_STATUS) == []


def test_an_event_naming_another_venue_is_refused() -> None:
    app, sink, _ = make_app()
    events(app, finding("open", T0, problem="OTHER"), finding("rectify", T0 + H, venue_id="venue-2"))
    (dead,) = sink.of(topics.DLQ)
    assert dead["reason"] == "INVALID_TRANSITION"
    assert [s["status"] for s in statuses(sink)] == ["OPEN"]


def test_a_residents_breach_elsewhere_travels_to_the_point_and_reopens_its_finding() -> None:
    app, sink, _ = make_app()
    app.wiring.register.apply(f.pseudonym(7).encode(), f.encode(f.plan(f.pseudonym(7))))
    events(app, *(finding(a, T0 + i * H, venue_id="iso-1", venue_type="isolation_point",
                          **({"problem": "ISOLATION_MANAGEMENT"} if a == "open" else {}))
                  for i, a in enumerate(("open", "rectify", "verify"))))
    scans(app, f.scan(at=T0 + D, person_ref=f.pseudonym(7)))  # at venue-1, a resident of iso-1
    (breach,) = alerts(sink, "ISOLATION_BREACH")
    (sent,) = sink.of(topics.RECURRENCES)
    assert sent == {"venue_id": "iso-1", "kind": "ISOLATION_BREACH", "at": (T0 + D).timestamp(), "_key": "iso-1"}
    assert statuses(sink)[-1]["status"] == "VERIFIED"
    drive(app, "follow_recurrences", [(b"iso-1", f.encode({k: v for k, v in sent.items() if k != "_key"}), 0, None)])
    reopened = statuses(sink)[-1]
    assert (reopened["finding_id"], reopened["status"], reopened["repeat_count"]) == ("F-1", "REOPENED", 1)
    assert breach["venue_id"] == "venue-1"


def test_a_cancelled_finding_is_not_reopened_and_refuses_what_follows() -> None:
    app, sink, _ = make_app()
    events(app, finding("open", T0, problem="THREE_100"), finding("rectify", T0 + H), finding("verify", T0 + 2 * H),
           finding("cancel", T0 + 3 * H))
    scans(app, f.scan(at=T0 + D, mask=False), f.scan(at=T0 + D + 12 * timedelta(minutes=1)))
    tick(app)
    assert len(alerts(sink, "THREE_100_VIOLATION")) == 1 and alerts(sink, "FINDING_REOPENED") == []
    assert [s["status"] for s in statuses(sink)] == ["OPEN", "PENDING_VERIFICATION", "VERIFIED", "CANCELLED"]
    events(app, finding("rectify", T0 + 2 * D))
    (dead,) = sink.of(topics.DLQ)
    assert dead["detail"] == "action: rectify is not allowed on a finding that is CANCELLED"
    assert sample(app, "hcs_findings", district="330106", status="CANCELLED") == 1
