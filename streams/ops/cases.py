"""``hcs case report`` and ``hcs trace``: disease control reports a case; anyone allowed looks at
how its trace went.

A report is checked by the worker's own decoder before it is written, so a mistake is one line at
the desk rather than a dead letter later. ``hcs trace`` shows a case's Trace and its contacts
*counted* per venue (and per venue type): a terminal never lists people.
"""

from __future__ import annotations

import time
import uuid
from collections import Counter
from collections.abc import Mapping, Sequence
from typing import Any

import orjson

from streams.contract.codec import decode_case
from streams.contract.models import Rejected
from streams.errors import CaseError
from streams.ops.console import columns, send_records
from streams.times import local_time_of, rfc3339

READ_TIMEOUT_S = 20.0


def case_record(person_ref: str, district: str, sampled_at: float, reported_at: float, onset_at: float | None = None,
                classification: str = "confirmed", case_id: str | None = None) -> dict[str, Any]:
    """A CaseReport as the worker reads it; :class:`CaseError` with the decoder's reason if refused."""
    case_id = case_id or f"{district}-{time.strftime('%Y%m%d', time.gmtime(reported_at))}-{uuid.uuid4().hex[:8]}"
    value = {"schema": "hcs.case.v1", "event_id": f"report-{uuid.uuid4().hex}", "case_id": case_id,
             "person_ref": person_ref, "district": district, "classification": classification,
             "sampled_at": rfc3339(sampled_at), "onset_at": None if onset_at is None else rfc3339(onset_at),
             "reported_at": rfc3339(reported_at)}
    decoded = decode_case(orjson.dumps(value), now=time.time())
    if isinstance(decoded, Rejected):
        raise CaseError(f"the case would be refused: {decoded.detail}")
    return value


async def publish(client: Mapping[str, Any], topic: str, value: Mapping[str, Any]) -> None:
    """Write one CaseReport, keyed by its person, acknowledged by every in-sync replica."""
    await send_records(client, topic, [(str(value["person_ref"]).encode(), orjson.dumps(value))])


async def read_trace(client: Mapping[str, Any], traces_topic: str, exposures_topic: str, case_id: str,
                     timeout_s: float = READ_TIMEOUT_S) -> tuple[dict[str, Any] | None, list[dict[str, Any]]]:
    """The case's latest Trace (None if none yet) and its exposures, each topic read to its end."""
    from streams.kafka.views import ReplicatedView

    def by_case(key: bytes | None, value: bytes | None) -> tuple[str, dict[str, Any] | None]:
        record = None if value is None else orjson.loads(value)
        return (key or b"").decode(), record

    def by_exposure(key: bytes | None, value: bytes | None) -> tuple[str, dict[str, Any] | None]:
        record = orjson.loads(value or b"{}")
        return str(record.get("exposure_id", "")), record if record.get("case_id") == case_id else None

    traces: ReplicatedView[str, dict[str, Any]] = ReplicatedView.of("traces", traces_topic, client, by_case)
    exposures: ReplicatedView[str, dict[str, Any]] = ReplicatedView.of("exposures", exposures_topic, client,
                                                                      by_exposure)
    await traces.read_once(timeout_s)
    await exposures.read_once(timeout_s)
    return traces.data.get(case_id), list(exposures.data.values())


def summary(case_id: str, trace: Mapping[str, Any] | None, exposures: Sequence[Mapping[str, Any]]) -> list[str]:
    """What ``hcs trace`` prints: the trace, then contacts counted per venue and per venue type."""
    if trace is None:
        return [f"case {case_id}: no trace yet (is the report on hcs.cases.v1, and a worker running?)"]
    done = local_time_of(trace["completed_at"])
    lines = [f"case {case_id} ({trace['district']}): {trace['status']}; {trace['visits']} visits at "
             f"{trace['venues']} venues, {trace['contacts']} contacts; started {local_time_of(trace['started_at'])}, "
             f"completed {done}"]
    if not exposures:
        return [*lines, "no exposures"]
    per_venue = Counter((e["venue_id"], e["venue_type"], e["district"]) for e in exposures)
    rows = [["venue", "type", "district", "contacts"]]
    rows += [[venue, kind, district, str(n)] for (venue, kind, district), n in sorted(per_venue.items())]
    per_type = Counter(e["venue_type"] for e in exposures)
    lines += ["", *columns(rows), "",
              "by venue type: " + ", ".join(f"{kind} {n}" for kind, n in sorted(per_type.items())),
              f"{len({e['person_ref'] for e in exposures})} distinct contacts in {len(exposures)} exposures"]
    return lines
