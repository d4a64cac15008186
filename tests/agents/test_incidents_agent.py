"""The on-call loop through the worker's drains and timer: alerts read back trigger incidents,
actions move them, processing time escalates them; refused actions are dead-lettered."""

from __future__ import annotations

import time
from datetime import datetime
from typing import Any

import orjson

from streams.contract import topics
from streams.times import rfc3339
from streams.worker.app import HcsApp
from tests import factories as f
from tests.agents.conftest import RecordingSink, drive, make_app
from tests.schema_check import assert_valid

MIN = 60.0


def red_alert(app: HcsApp, sink: RecordingSink) -> dict[str, Any]:
    """A red code scanned now: the KEY_PERSON_DETECTED alert the worker raised (critical)."""
    value = f.scan(at=datetime.now(f.SHANGHAI), health_code={"color": "red"})
    drive(app, "judge_scans", [(value["venue_id"].encode(), f.encode(value), 0, time.time())])
    return {k: v for k, v in sink.of(topics.ALERTS)[-1].items() if not k.startswith("_")}  # as written


def read_back(app: HcsApp, *alerts: dict[str, Any]) -> None:
    drive(app, "follow_alerts", [(a["dedup_key"].encode(), orjson.dumps(a), 0, None) for a in alerts])


def act(app: HcsApp, dedup_key: str, action: str, n: int = 1, key: str | None = None, **extra: Any) -> None:
    value = {"schema": "hcs.alert-action.v1", "event_id": f"act-{action}-{n}", "dedup_key": dedup_key,
             "action": action, "at": rfc3339(time.time()), "level": 1, **extra}
    drive(app, "follow_alert_actions", [((key or dedup_key).encode(), orjson.dumps(value), 0, None)])


def incidents(sink: RecordingSink) -> list[dict[str, Any]]:
    return sink.of(topics.INCIDENTS)


def tick(app: HcsApp, at: float) -> None:
    assert app.wiring.incidents is not None
    app.wiring.incidents.tick(at)
    app.wiring.flush()


def test_an_alert_read_back_triggers_an_incident_that_escalates_by_processing_time() -> None:
    app, sink, _ = make_app()
    alert = red_alert(app, sink)
    read_back(app, alert)
    [triggered] = incidents(sink)
    assert (triggered["status"], triggered["level"], triggered["alert_ids"]) == ("TRIGGERED", 1, [alert["alert_id"]])
    assert triggered["alert"] == alert
    assert_valid("incident.v1", incidents(sink))
    start = datetime.fromisoformat(triggered["triggered_at"]).timestamp()
    tick(app, start + 4 * MIN)
    assert len(incidents(sink)) == 1
    tick(app, start + 5 * MIN + 1)
    tick(app, start + 5 * MIN + 2)  # once
    tick(app, start + 15 * MIN + 1)
    tick(app, start + 60 * MIN)  # nothing after the last level
    assert [(i["status"], i["level"]) for i in incidents(sink)] == [("TRIGGERED", 1), ("TRIGGERED", 2),
                                                                      ("TRIGGERED", 3)]
    assert [e["level"] for e in incidents(sink)[-1]["escalations"]] == [1, 2, 3]
    exposition = app.metrics.exposition().decode()
    assert 'hcs_escalations_total{district="330106",level="2",severity="critical"} 1.0' in exposition
    assert 'hcs_incidents{district="330106",status="TRIGGERED"} 1.0' in exposition


def test_an_ack_stops_escalation_and_is_timed() -> None:
    app, sink, _ = make_app()
    alert = red_alert(app, sink)
    read_back(app, alert, alert)  # redelivered: appended once, no second record
    assert len(incidents(sink)) == 1
    act(app, alert["dedup_key"], "ack")
    acked = incidents(sink)[-1]
    assert (acked["status"], acked["history"][-1]["by_level"]) == ("ACKNOWLEDGED", 1)
    tick(app, time.time() + 10 * MIN)  # past level 2: acknowledged, no escalation
    assert incidents(sink)[-1]["status"] == "ACKNOWLEDGED" and len(incidents(sink)) == 2
    assert "hcs_incident_ack_seconds_count{district=\"330106\",severity=\"critical\"} 1.0" in (
        app.metrics.exposition().decode())
    tick(app, time.time() + 31 * MIN)  # the ack timed out: back to level 1
    assert (incidents(sink)[-1]["status"], incidents(sink)[-1]["level"]) == ("TRIGGERED", 1)


def test_refused_actions_are_dead_lettered_and_change_nothing() -> None:
    app, sink, _ = make_app()
    act(app, "KEY_PERSON_DETECTED|nobody|venue-1", "ack")  # no incident
    alert = red_alert(app, sink)
    read_back(app, alert)
    act(app, alert["dedup_key"], "resolve", 2)
    act(app, alert["dedup_key"], "ack", 3)  # resolved already
    act(app, alert["dedup_key"], "ack", 4, key="another-key")  # not co-partitioned
    act(app, alert["dedup_key"], "snooze", 5)  # not an action
    reasons = [(d["reason"], d["detail"].split(":")[0]) for d in sink.of(topics.DLQ)]
    assert reasons == [("INVALID_TRANSITION", "action"), ("INVALID_TRANSITION", "action"),
                       ("SCHEMA_INVALID", "dedup_key"), ("SCHEMA_INVALID", "action")], reasons
    assert [i["status"] for i in incidents(sink)] == ["TRIGGERED", "RESOLVED"]
    read_back(app, {**alert, "alert_id": "another"})  # a new alert after RESOLVED: a new incident
    assert incidents(sink)[-1]["incident_id"] != incidents(sink)[0]["incident_id"]
