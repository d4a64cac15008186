"""``hcs finding`` and ``hcs findings``: inspectors and supervisors act on findings and list them.

An action is checked before anything is written: its record by the worker's own decoder, and
(for every action but ``open``) against the finding's latest state on ``hcs.finding-status.v1``
by the worker's own state machine, so that a mistake is one clear line at the desk rather than a
dead letter later. The worker judges every record again (the status topic may lag a moment
behind the actions).
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

import orjson

from streams.contract.codec import decode_finding_event
from streams.contract.models import FindingEvent, Rejected
from streams.errors import InspectionError
from streams.ops.console import columns, latest_values, send_records
from streams.rules import findings as rules
from streams.times import SHANGHAI, local_time_of, rfc3339

READ_TIMEOUT_S = 20.0


async def latest_statuses(client: Mapping[str, Any], topic: str,
                          timeout_s: float = READ_TIMEOUT_S) -> dict[str, dict[str, Any]]:
    """Every finding's latest FindingStatus on the compacted status ``topic``, read to its end."""
    return await latest_values(client, topic, "finding-status", timeout_s)


def as_finding(status: Mapping[str, Any]) -> rules.Finding:
    """A FindingStatus record as the state machine's Finding."""
    def ts(text: str) -> float:
        return datetime.fromisoformat(text).timestamp()

    return rules.Finding(
        status["finding_id"], status["venue_id"], status["venue_type"], status["district"], status["problem"],
        status["source"], status["status"], status["repeat_count"], ts(status["deadline"]), status["overdue"],
        None if status["look_back_at"] is None else ts(status["look_back_at"]), ts(status["opened_at"]),
        ts(status["updated_at"]), tuple((step["action"], ts(step["at"])) for step in status["history"]))


def new_finding_id(district: str, at: float) -> str:
    """A readable, unique id: the district, the local date, a random part."""
    day = datetime.fromtimestamp(at, SHANGHAI).strftime("%Y%m%d")
    return f"{district}-{day}-{uuid.uuid4().hex[:8]}"


def event_record(action: str, finding_id: str, venue_id: str, venue_type: str, district: str, at: float,
                 **optional: Any) -> dict[str, Any]:
    """A FindingEvent, checked by the worker's decoder; raises :class:`InspectionError` naming
    the field at fault."""
    value: dict[str, Any] = {"schema": "hcs.finding-event.v1", "event_id": f"cli-{uuid.uuid4()}",
                             "finding_id": finding_id, "venue_id": venue_id, "venue_type": venue_type,
                             "district": district, "action": action, "at": rfc3339(at)}
    value.update({k: v for k, v in optional.items() if v is not None})
    checked = decode_finding_event(orjson.dumps(value), time.time())
    if isinstance(checked, Rejected):
        raise InspectionError(f"not written: {checked.detail}")
    return value


def follow_up(action: str, finding_id: str, statuses: Mapping[str, Mapping[str, Any]], at: float) -> dict[str, Any]:
    """The event of ``action`` on an existing finding, if its latest state allows it."""
    status = statuses.get(finding_id)
    if status is None:
        raise InspectionError(f"finding {finding_id} is not on the status topic (opened moments ago? try again)")
    value = event_record(action, finding_id, status["venue_id"], status["venue_type"], status["district"], at)
    event = FindingEvent(finding_id, status["venue_id"], status["venue_type"], status["district"], action, at)
    refused = rules.apply(as_finding(status), event, 0.0, 0.0)  # the numbers matter to the worker alone
    if isinstance(refused, rules.Refused):
        raise InspectionError(f"not written: {refused.detail}")
    return value


COLUMNS = ("finding", "district", "venue", "problem", "source", "status", "repeats", "deadline", "overdue",
           "updated")


def table(statuses: Iterable[Mapping[str, Any]], district: str | None = None, status: str | None = None,
          overdue: bool = False) -> list[str]:
    """The findings as lines of a table, by deadline, filtered."""
    rows = [s for s in statuses if (district is None or s["district"] == district)
            and (status is None or s["status"] == status) and (not overdue or s["overdue"])]
    rows.sort(key=lambda s: (datetime.fromisoformat(s["deadline"]).timestamp(), s["finding_id"]))
    cells = [COLUMNS] + [(s["finding_id"], s["district"], s["venue_id"], s["problem"], s["source"], s["status"],
                          str(s["repeat_count"]), local_time_of(s["deadline"]), "yes" if s["overdue"] else "",
                          local_time_of(s["updated_at"])) for s in rows]
    return columns(cells) if rows else ["no findings match"]


async def publish(client: Mapping[str, Any], topic: str, value: Mapping[str, Any]) -> None:
    """Write one FindingEvent, keyed by its venue, acknowledged by every in-sync replica."""
    await send_records(client, topic, [(str(value["venue_id"]).encode(), orjson.dumps(value))])
