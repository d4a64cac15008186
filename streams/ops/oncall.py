"""``hcs ack``, ``hcs resolve`` and ``hcs incidents``: the on-call team acts on incidents and lists them.

An action is checked before anything is written: its record by the worker's own decoder, and
against the incident's latest state on ``hcs.incidents.v1`` by the worker's own state machine, so
that a mistake is one clear line at the desk rather than a dead letter later. An incident is
named by its dedup key or by the id of any of its alerts (the newest 100 of each incident). The
worker judges every action again (the incidents topic may lag a moment behind the actions).
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

import msgspec
import orjson

from streams.contract.codec import decode_alert_action
from streams.contract.models import AlertAction, Rejected
from streams.contract.records import Alert
from streams.errors import InspectionError
from streams.ops.console import columns, latest_values, send_records
from streams.rules import incidents as rules
from streams.times import local_time_of, rfc3339

READ_TIMEOUT_S = 20.0


async def latest_incidents(client: Mapping[str, Any], topic: str,
                           timeout_s: float = READ_TIMEOUT_S) -> dict[str, dict[str, Any]]:
    """Every dedup key's latest Incident on the compacted ``topic``, read to its end."""
    return await latest_values(client, topic, "incidents", timeout_s)


def find(incidents: Mapping[str, Mapping[str, Any]], name: str) -> Mapping[str, Any]:
    """The incident named by a dedup key or by one of its alerts' ids."""
    found = incidents.get(name)
    if found is not None:
        return found
    for incident in incidents.values():
        if name in incident["alert_ids"]:
            return incident
    raise InspectionError(f"no incident for {name!r}: give an alert_id or a dedup_key of hcs.incidents.v1 "
                          "(raised moments ago? try again)")


def action_record(action: str, incident: Mapping[str, Any], level: int, at: float) -> dict[str, Any]:
    """The AlertAction of ``action`` on ``incident``, if its latest state allows it; raises
    :class:`InspectionError` in one line otherwise."""
    value = {"schema": "hcs.alert-action.v1", "event_id": f"cli-{uuid.uuid4()}", "dedup_key": incident["dedup_key"],
             "action": action, "at": rfc3339(at), "level": level}
    checked = decode_alert_action(orjson.dumps(value), time.time())
    if isinstance(checked, Rejected):
        raise InspectionError(f"not written: {checked.detail}")
    status = incident["status"]
    if status not in rules.LIVE:
        raise InspectionError(f"not written: incident {incident['incident_id']} is {status} since "
                              f"{local_time_of(incident['resolved_at'] or incident['updated_at'])}")
    refused = rules.act(_shell(incident), AlertAction("", incident["dedup_key"], action, at, level), at)
    if isinstance(refused, rules.Refused):
        raise InspectionError(f"not written: {refused.detail}")
    return value


def _shell(incident: Mapping[str, Any]) -> rules.Incident:
    """Enough of the state machine's Incident to ask whether an action is allowed."""
    return rules.Incident(incident["incident_id"], incident["dedup_key"], incident["kind"], incident["severity"],
                          incident["district"], incident["status"], incident["level"], (), 0, 0.0, None, None,
                          ((1, 0.0),), (), (), msgspec.convert(incident["alert"], Alert))


async def publish(client: Mapping[str, Any], topic: str, value: Mapping[str, Any]) -> None:
    """Write one AlertAction, keyed by its dedup key (as the alerts), acknowledged by every in-sync replica."""
    await send_records(client, topic, [(str(value["dedup_key"]).encode(), orjson.dumps(value))])


COLUMNS = ("age", "status", "level", "severity", "kind", "district", "venue", "alerts", "acked", "incident")


def table(incidents: Iterable[Mapping[str, Any]], now: float, district: str | None = None,
          open_only: bool = False) -> list[str]:
    """The incidents as lines of a table, oldest first, filtered."""
    rows = [i for i in incidents if (district is None or i["district"] == district)
            and (not open_only or i["status"] in rules.LIVE)]
    rows.sort(key=lambda i: (_ts(i["triggered_at"]), i["incident_id"]))
    cells = [COLUMNS] + [(_age(now - _ts(i["triggered_at"])), i["status"], f"L{i['level']}", i["severity"], i["kind"],
                          i["district"], i["alert"]["venue_id"], str(i["alert_count"]),
                          _age(_ts(i["acknowledged_at"]) - _ts(i["triggered_at"])) if i["acknowledged_at"] else "-",
                          i["incident_id"][:8]) for i in rows]
    return columns(cells) if rows else ["no incidents match"]


def _ts(text: str) -> float:
    return datetime.fromisoformat(text).timestamp()


def _age(seconds: float) -> str:
    """A duration as people read it: 45s, 12m, 3h05m, 2d04h."""
    s = max(0, int(seconds))
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m"
    if s < 86400:
        return f"{s // 3600}h{s % 3600 // 60:02d}m"
    return f"{s // 86400}d{s % 86400 // 3600:02d}h"

