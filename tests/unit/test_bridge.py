"""The Alertmanager bridge: labels without person data, endsAt for resolved, retries until accepted."""

from __future__ import annotations

import asyncio
from typing import Any

from aiohttp import web

from streams.ops.bridge import AlertmanagerClient, incident_posts, to_alertmanager

PERSON = {"alert_id": "a1", "dedup_key": "KEY_PERSON_DETECTED|pseudonym-0000000001|venue-1",
          "kind": "KEY_PERSON_DETECTED", "severity": "critical", "district": "330106", "venue_id": "venue-1",
          "checkpoint_id": "cp-1", "person_ref": "pseudonym-0000000001", "reasons": ["HEALTH_CODE_RED"],
          "event_ids": ["e1"], "first_event_time": "2022-05-10T08:00:00.000+08:00",
          "last_event_time": "2022-05-10T08:00:00.000+08:00", "count": 1, "status": "firing",
          "policy_version": "default-v1"}
NOW = 1652140800.0  # 2022-05-10T08:00:00+08:00


def test_labels_identify_the_alert_and_never_carry_the_person() -> None:
    posted = to_alertmanager(PERSON, NOW)
    labels = posted["labels"]
    assert {k: labels[k] for k in ("alertname", "kind", "severity", "district", "venue_id", "checkpoint_id",
                                   "scope")} == {
        "alertname": "KEY_PERSON_DETECTED", "kind": "KEY_PERSON_DETECTED", "severity": "critical",
        "district": "330106", "venue_id": "venue-1", "checkpoint_id": "cp-1", "scope": "person"}
    assert str(PERSON["person_ref"]) not in str(labels)
    assert posted["annotations"]["person_ref"] == PERSON["person_ref"]
    assert posted["startsAt"] == "2022-05-10T00:00:00.000+00:00"
    assert posted["endsAt"] == "2022-05-10T01:00:00.000+00:00"  # a finding stays up for an hour


def test_a_managed_persons_alert_names_the_managing_district_only_when_it_is_another() -> None:
    details = {"plan_id": "plan-1", "plan": "14+7+7", "phase": "home_isolation", "day": 16,
               "isolation_point_id": "iso-1", "managing_district": "330105"}
    breach = {**PERSON, "kind": "ISOLATION_BREACH", "severity": "critical", "reasons": ["ISOLATION_BREACH"],
              "dedup_key": "ISOLATION_BREACH|pseudonym-0000000001|venue-1", "details": details}
    posted = to_alertmanager(breach, NOW)
    assert posted["labels"]["managing_district"] == "330105" != posted["labels"]["district"]
    assert "plan-1" in posted["annotations"]["details"]
    at_home = to_alertmanager({**breach, "district": "330105"}, NOW)
    assert "managing_district" not in at_home["labels"]  # the venue's own district: told once


def test_two_people_at_one_venue_are_two_alerts_and_a_repeat_is_the_same_one() -> None:
    other = {**PERSON, "dedup_key": "KEY_PERSON_DETECTED|pseudonym-0000000002|venue-1"}
    assert to_alertmanager(PERSON, NOW)["labels"] != to_alertmanager(other, NOW)["labels"]
    assert to_alertmanager(PERSON, NOW)["labels"] == to_alertmanager({**PERSON, "count": 3}, NOW + 60)["labels"]


def test_a_resolved_alert_ends_now_and_a_silent_checkpoint_fires_until_resolved() -> None:
    silent = {**PERSON, "kind": "CHECKPOINT_SILENT", "severity": "warning", "person_ref": None, "reasons": [],
              "dedup_key": "CHECKPOINT_SILENT|cp-1", "event_ids": []}
    firing = to_alertmanager(silent, NOW)
    resolved = to_alertmanager({**silent, "status": "resolved"}, NOW + 600)
    assert firing["labels"] == resolved["labels"] and firing["labels"]["scope"] == "checkpoint"
    assert firing["endsAt"] == "2022-05-17T00:00:00.000+00:00"
    assert resolved["endsAt"] == "2022-05-10T00:10:00.000+00:00"
    assert "person_ref" not in firing["annotations"]


def test_an_alert_fires_for_its_useful_life_from_when_it_was_raised_not_from_when_it_is_read() -> None:
    silent = {**PERSON, "kind": "CHECKPOINT_SILENT", "severity": "warning", "person_ref": None, "reasons": [],
              "dedup_key": "CHECKPOINT_SILENT|cp-1", "event_ids": []}
    read_at = NOW + 3 * 86400  # a bridge on a new consumer group reads the topic from the start
    assert to_alertmanager(PERSON, read_at, NOW + 60)["endsAt"] == "2022-05-10T01:01:00.000+00:00"  # ended
    assert to_alertmanager(PERSON, read_at, read_at - 600)["endsAt"] == "2022-05-13T00:50:00.000+00:00"  # firing
    assert to_alertmanager(silent, read_at, NOW)["endsAt"] == "2022-05-17T00:00:00.000+00:00"  # still silent
    assert to_alertmanager(silent, NOW + 8 * 86400, NOW)["endsAt"] == "2022-05-17T00:00:00.000+00:00"  # ended
    resolved = to_alertmanager({**silent, "status": "resolved"}, read_at, NOW + 600)
    assert resolved["endsAt"] == "2022-05-10T00:10:00.000+00:00"  # when it was resolved
    # A record stamped ahead of the bridge's clock (a skewed producer) counts as raised now.
    assert to_alertmanager(PERSON, NOW, NOW + 86400)["endsAt"] == "2022-05-10T01:00:00.000+00:00"


def test_the_client_retries_until_alertmanager_accepts() -> None:
    received: list[Any] = []

    async def scenario() -> int:
        async def alerts(request: web.Request) -> web.Response:
            received.append(await request.json())
            return web.Response(status=503 if len(received) < 3 else 200)

        server = web.Application()
        server.router.add_post("/api/v2/alerts", alerts)
        runner = web.AppRunner(server)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        client = AlertmanagerClient(f"http://127.0.0.1:{port}")
        try:
            return await client.post([to_alertmanager(PERSON, NOW)])
        finally:
            await client.close()
            await runner.cleanup()

    assert asyncio.run(scenario()) == 3
    assert len(received) == 3 and received[0] == received[2]


def incident(status: str, level: int, steps: list[tuple[str, int]],
             alert: dict[str, Any] | None = None) -> dict[str, Any]:
    at = "2022-05-10T08:00:00.000+08:00"
    return {"schema": "hcs.incident.v1", "incident_id": "inc-1", "dedup_key": PERSON["dedup_key"],
            "kind": "KEY_PERSON_DETECTED", "severity": "critical", "district": "330106", "status": status,
            "level": level, "alert_ids": ["a1"], "alert_count": 1, "triggered_at": at, "acknowledged_at": None,
            "resolved_at": None, "escalations": [{"level": 1, "at": at}], "updated_at": at,
            "history": [{"action": a, "at": at, "level": lv, "by_level": None} for a, lv in steps],
            "alert": alert or PERSON}


def test_an_incident_is_posted_with_its_level_and_status() -> None:
    [posted] = incident_posts(incident("TRIGGERED", 1, [("trigger", 1)]), NOW)
    assert (posted["labels"]["level"], posted["labels"]["incident_status"]) == ("1", "TRIGGERED")
    assert posted["annotations"]["incident_id"] == "inc-1"
    assert posted["endsAt"] == "2022-05-10T01:00:00.000+00:00"  # firing for its useful life
    appended = incident_posts(incident("TRIGGERED", 1, [("trigger", 1), ("append", 1)]), NOW + 60)
    assert [p["labels"] for p in appended] == [posted["labels"]]  # no change of level: one alert, updated


def test_an_escalation_ends_the_alert_of_the_level_before() -> None:
    ended, now = incident_posts(incident("TRIGGERED", 2, [("trigger", 1), ("escalate", 2)]), NOW + 300)
    assert (ended["labels"]["level"], now["labels"]["level"]) == ("1", "2")
    assert ended["endsAt"] == "2022-05-10T00:05:00.000+00:00" and now["endsAt"] == "2022-05-10T01:05:00.000+00:00"
    assert {k: v for k, v in ended["labels"].items() if k != "level"} == {
        k: v for k, v in now["labels"].items() if k != "level"}


def test_an_acknowledged_incident_stays_shown_and_a_resolved_one_ends() -> None:
    ended, acked = incident_posts(incident("ACKNOWLEDGED", 2, [("trigger", 1), ("escalate", 2), ("ack", 2)]),
                                  NOW + 400)
    assert (ended["labels"]["incident_status"], ended["endsAt"]) == ("TRIGGERED", "2022-05-10T00:06:40.000+00:00")
    assert acked["labels"]["incident_status"] == "ACKNOWLEDGED" and acked["endsAt"] > acked["startsAt"]
    was, resolved = incident_posts(incident("RESOLVED", 2, [("trigger", 1), ("ack", 1), ("resolve", 1)]), NOW + 500)
    assert was["labels"]["incident_status"] == "ACKNOWLEDGED"
    assert resolved["labels"]["incident_status"] == "RESOLVED"
    assert resolved["endsAt"] == was["endsAt"] == "2022-05-10T00:08:20.000+00:00"
    back = incident_posts(incident("TRIGGERED", 1, [("trigger", 1), ("ack", 1), ("timeout", 1)]), NOW + 900)
    assert [(p["labels"]["incident_status"], p["endsAt"] > p["startsAt"]) for p in back] == [
        ("ACKNOWLEDGED", True), ("TRIGGERED", True)]
